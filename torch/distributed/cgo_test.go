package distributed

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShimFunctionsAnnotated(t *testing.T) {
	header, err := os.ReadFile("../edema_c10d.h")
	require.NoError(t, err)
	cgo, err := os.ReadFile("cgo.go")
	require.NoError(t, err)
	decl := regexp.MustCompile(`(?m)^\s*(?:et_error|int|void)\s+\**(et_\w+)\s*\(`)
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
