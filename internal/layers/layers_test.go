// Package layers holds the test that keeps the tree a layer diagram (see
// docs/ARCHITECTURE.md): every import of a project package points to a
// lower layer or into internal/.
package layers

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/edema/edema/"

// layer is each package's layer, as docs/ARCHITECTURE.md draws it.
var layer = map[string]int{
	"torch":             0,
	"torch/pth":         1,
	"oct":               1,
	"torch/nn":          2,
	"torch/optim":       2,
	"torch/distributed": 1,
	"torch/jit":         3,
	"oct/synth":         2,
	"losses":            2,
	"metrics":           2,
	"models":            3,
	"submission":        3,
	"picture":           3,
	"inference":         4,
	"train":             5,
	"serve":             5,
	"demo":              6,
	"reproduce":         6,
	"cmd/edema":         7,
}

func TestImportsPointDown(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", module+"...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	require.NoError(t, err)
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		if isHelper(name) {
			for _, imp := range p.Imports {
				dep := strings.TrimPrefix(imp, module)
				if dep != imp && !strings.HasPrefix(dep, "internal/") && dep != "torch" {
					t.Errorf("%s, a helper, imports %s", name, dep)
				}
			}
			continue
		}
		l, ok := layer[name]
		if !ok {
			t.Errorf("package %s has no layer: add it to docs/ARCHITECTURE.md and to this test", name)
			continue
		}
		seen++
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok || isHelper(dep) {
				continue
			}
			if dl, known := layer[dep]; known && dl >= l {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point down", name, l, dep, dl)
			}
		}
	}
	require.Equal(t, len(layer), seen, "every package of the table exists")
}

// isHelper says whether a package is an internal one (internal/... or
// torch/internal/...), which serves the layers without being one.
func isHelper(name string) bool {
	return strings.HasPrefix(name, "internal/") || strings.Contains(name, "/internal/")
}
