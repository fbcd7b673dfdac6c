package optim

import (
	"os"
	"testing"

	"github.com/edema/edema/torch"
)

// The tests' tensors are small: one libtorch thread runs them fastest, and
// spares the cores of a busy CI machine.
func TestMain(m *testing.M) {
	torch.SetNumThreads(1)
	os.Exit(m.Run())
}
