package models

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/oct"
)

// specKeys is one list of testdata/keys-NAME.txt: the state dict of the
// original network as PyTorch writes it.
type specKeys struct {
	entries    int
	parameters int64
	lines      []string // "key<TAB>dtype<TAB>[shape]"
}

var specHeader = regexp.MustCompile(`^# state_dict of (\S+): (\d+) entries, (\d+) trainable parameters$`)

func readSpecKeys(t *testing.T, name string) specKeys {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "keys-"+name+".txt"))
	require.NoError(t, err)
	defer f.Close()
	var k specKeys
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := specHeader.FindStringSubmatch(line); m != nil {
			require.Equal(t, name, m[1])
			k.entries, _ = strconv.Atoi(m[2])
			k.parameters, _ = strconv.ParseInt(m[3], 10, 64)
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k.lines = append(k.lines, line)
	}
	require.NoError(t, sc.Err())
	require.NotZero(t, k.entries, "no header in keys-%s.txt", name)
	require.Len(t, k.lines, k.entries)
	return k
}

func shapeString(shape []int64) string {
	s := make([]string, len(shape))
	for i, d := range shape {
		s[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func TestStateDictMatchesOriginal(t *testing.T) {
	sizes := map[string][2]int64{ // docs/ORIGINAL.md, "Networks"
		NameUNet:              {2466151, 98},
		NameUNetNested:        {2953027, 140},
		NameUNetNestedDilated: {5315395, 168},
	}
	require.Equal(t, []string{NameUNet, NameUNetNested, NameUNetNestedDilated, NameResNet18}, Names())
	for _, name := range segmenters() {
		t.Run(name, func(t *testing.T) {
			spec := readSpecKeys(t, name)
			m, err := New(name)
			require.NoError(t, err)
			defer m.Free()

			var got []string
			for _, n := range m.StateDict() {
				got = append(got, fmt.Sprintf("%s\t%s\t%s", n.Name, n.Tensor.DType(), shapeString(n.Tensor.Shape())))
			}
			assert.Equal(t, spec.lines, got)
			assert.Equal(t, spec.parameters, m.NumParameters())
			assert.Equal(t, sizes[name][0], m.NumParameters())
			assert.Len(t, m.StateDict(), int(sizes[name][1]))
			assert.Len(t, m.Parameters(), len(m.Store().NamedParameters()))
		})
	}
}

func TestNewUnknownName(t *testing.T) {
	_, err := New("resnet50")
	require.ErrorContains(t, err, `unknown network "resnet50"`)
	require.ErrorContains(t, err, "unet_nested_dilated, resnet18")
}

// segmenters are the networks that segment, whose keys, shapes and
// outputs the tests compare with the original's.
func segmenters() []string {
	var names []string
	for _, name := range Names() {
		if Outputs(name).Has(oct.Segmentation) {
			names = append(names, name)
		}
	}
	return names
}
