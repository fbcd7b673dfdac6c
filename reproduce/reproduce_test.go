package reproduce

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/losses"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
)

// TestRows: the original's seven rows, each network able to do its
// loss's tasks, the published figures present exactly where the original
// gives them, and the fusion's members among the rows.
func TestRows(t *testing.T) {
	rows := Rows()
	require.Len(t, rows, 7)
	keys := map[string]bool{}
	for _, r := range rows {
		keys[r.Key] = true
		if r.Key == fusionKey {
			continue
		}
		l, err := losses.New(r.Loss)
		require.NoError(t, err, r.Key)
		assert.True(t, models.Outputs(r.Name).Has(l.Tasks()), r.Key)
		// A published figure of a task the row does not do would be a
		// typing error.
		if !l.Tasks().Has(oct.Segmentation) {
			assert.True(t, math.IsNaN(r.Published.ValDice) && math.IsNaN(r.Published.TestDice), r.Key)
		}
		if !l.Tasks().Has(oct.Detection) {
			assert.True(t, math.IsNaN(r.Published.ValAUC) && math.IsNaN(r.Published.TestAUC), r.Key)
		}
		assert.Equal(t, r.Recipe.Published, r.Key == "unet_mix_3" || r.Key == "unet_nested_mix_33", r.Key)
	}
	for _, k := range fusionMembers {
		assert.True(t, keys[k], k)
	}
	assert.Len(t, keys, 7)
}

func TestWriteTable(t *testing.T) {
	nan := math.NaN()
	rows := Rows()
	results := []Result{
		{Row: rows[0], Got: Figures{nan, 0.81234, nan, 0.7}, ValScore: nan},
		{Row: rows[2], Got: Figures{0.5, 0.9, nan, nan}, ValScore: 0.7},
	}
	var b bytes.Buffer
	require.NoError(t, WriteTable(&b, results))
	lines := strings.Split(b.String(), "\n")
	assert.Equal(t, []string{"ResNet18", "(*pre)", "no", "BCE", "–", "(–)", "0.8123", "(0.9710)", "–", "(–)", "0.7000", "(0.9040)", "–"}, strings.Fields(lines[1]))
	assert.Equal(t, []string{"UNet", "yes", "WCE+Dice+BCE", "0.5000", "(0.7850)", "0.9000", "(0.9850)", "–", "(0.7010)", "–", "(–)", "0.7000"}, strings.Fields(lines[2]))
}
