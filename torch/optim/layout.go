package optim

import (
	"fmt"
	"strconv"
	"strings"
)

// Layout is the PyTorch release whose optimizer.state_dict() layout
// StateDictFor writes. The values are the same; what differs is a
// hyperparameter entry and which parameters get a state entry. Both
// releases load either layout, and so does LoadStateDict, so the choice
// only matters to someone comparing files or loading them into code that
// checks the keys.
type Layout int

const (
	// PyTorch113 is the layout of PyTorch 1.13: Adam's "fused" is False,
	// SGD has no "fused", and every SGD parameter that had a gradient gets
	// an entry, "momentum_buffer": None without momentum.
	PyTorch113 Layout = iota
	// PyTorch2 is the layout of PyTorch 2.x, as 2.6 writes it: "fused" is
	// None in Adam's and SGD's groups, and SGD without momentum keeps no
	// per-parameter state.
	PyTorch2
)

// DefaultLayout is what StateDict writes: 1.13's, the release Debian
// bookworm ships and this project's reference, which 2.x loads as well.
const DefaultLayout = PyTorch113

func (l Layout) String() string {
	switch l {
	case PyTorch113:
		return "PyTorch 1.13"
	case PyTorch2:
		return "PyTorch 2"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// LayoutOf returns the layout of a PyTorch release named as
// torch.__version__ names it ("1.13.0a0", "2.6.0+debian", "2.11.0+cu128").
func LayoutOf(version string) (Layout, error) {
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	switch {
	case err != nil:
		return 0, fmt.Errorf("PyTorch version %q: want MAJOR.MINOR…", version)
	case n < 1 || n == 1 && !strings.HasPrefix(version, "1.13"):
		return 0, fmt.Errorf("PyTorch %s: layouts are known from 1.13 on", version)
	case n == 1:
		return PyTorch113, nil
	}
	return PyTorch2, nil
}
