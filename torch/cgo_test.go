package torch

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShimFunctionsAnnotated checks that the cgo preamble of each package
// over the shim declares every function of its header noescape and
// nocallback, so that no call allocates its out-parameters on the heap: a
// function added to edema_torch.h needs its two lines in cgo.go, one added
// to edema_c10d.h its two in distributed/cgo.go, one added to edema_jit.h
// its two in jit/cgo.go.
func TestShimFunctionsAnnotated(t *testing.T) {
	decl := regexp.MustCompile(`(?m)^\s*(?:et_error|et_tensor|void|int)\s+\**(et_\w+)\s*\(`)
	for _, c := range []struct{ header, cgo string }{
		{"edema_torch.h", "cgo.go"},
		{"edema_c10d.h", "distributed/cgo.go"},
		{"edema_jit.h", "jit/cgo.go"},
	} {
		header, err := os.ReadFile(c.header)
		require.NoError(t, err)
		cgo, err := os.ReadFile(c.cgo)
		require.NoError(t, err)
		funcs := decl.FindAllSubmatch(header, -1)
		require.NotEmpty(t, funcs)
		for _, f := range funcs {
			name := string(f[1])
			for _, directive := range []string{"noescape", "nocallback"} {
				assert.Regexp(t, `(?m)^#cgo `+directive+` `+name+`$`, string(cgo),
					"%s lacks `#cgo %s %s`", c.cgo, directive, name)
			}
		}
	}
}
