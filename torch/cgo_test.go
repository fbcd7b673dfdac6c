package torch

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShimFunctionsAnnotated checks that cgo.go declares every function of
// the shim's header noescape and nocallback, so that no call allocates its
// out-parameters on the heap. A function added to edema_torch.h needs its
// two lines in cgo.go.
func TestShimFunctionsAnnotated(t *testing.T) {
	header, err := os.ReadFile("edema_torch.h")
	require.NoError(t, err)
	cgo, err := os.ReadFile("cgo.go")
	require.NoError(t, err)
	decl := regexp.MustCompile(`(?m)^\s*(?:et_error|et_tensor|void)\s+\**(et_\w+)\s*\(`)
	funcs := decl.FindAllSubmatch(header, -1)
	require.NotEmpty(t, funcs)
	for _, f := range funcs {
		name := string(f[1])
		for _, directive := range []string{"noescape", "nocallback"} {
			assert.Regexp(t, `(?m)^#cgo `+directive+` `+name+`$`, string(cgo),
				"cgo.go lacks `#cgo %s %s`", directive, name)
		}
	}
}
