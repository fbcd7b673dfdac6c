package train

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogRoundTripAndFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogName)
	rows := []Row{
		{Epoch: 0, TrainDice: 0.5, ValDice: 0.25, AUC: 0.75, TrainClassDice: [3]float64{0.1, 0.2, 0.3},
			ValClassDice: [3]float64{0.4, 0.5, 0.6}, ClassAUC: [3]float64{0.7, 0.8, 0.9}, TrainLoss: 1.5, LR: 1e-3, TrainPooledDice: 0.125},
		{Epoch: 1, ValDice: math.NaN(), LR: 5e-4},
	}
	require.NoError(t, WriteLog(path, rows))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	assert.Equal(t, "Epoch\tDice_Train\tDice_Val\tAUC\tDice_1\tDice_11\tDice_2\tDice_22\tDice_3\tDice_33\tAUC_1\tAUC_2\tAUC_3\tLoss_Train\tLR\tDice_Train_Pooled\t", lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "000\t0.500000\t0.250000\t0.750000\t0.100000\t0.400000\t"), lines[1])

	got, err := ReadLog(path)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, rows[0], got[0])
	assert.True(t, math.IsNaN(got[1].ValDice))
	assert.Equal(t, 1, got[1].Epoch)
}

// Logs written before Dice_Train_Pooled still read, without it.
func TestReadOlderLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), LogName)
	older := "Epoch\tDice_Train\tDice_Val\tAUC\tDice_1\tDice_11\tDice_2\tDice_22\tDice_3\tDice_33\tAUC_1\tAUC_2\tAUC_3\tLoss_Train\tLR\t\n" +
		"000\t0.500000\t0.250000\t0.750000\t0.100000\t0.400000\t0.200000\t0.500000\t0.300000\t0.600000\t0.700000\t0.800000\t0.900000\t1.500000\t0.001000\t\n"
	require.NoError(t, os.WriteFile(path, []byte(older), 0o644))
	got, err := ReadLog(path)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, 0.25, got[0].ValDice)
	assert.Equal(t, [3]float64{0.1, 0.2, 0.3}, got[0].TrainClassDice)
	assert.Equal(t, 0.001, got[0].LR)
	assert.True(t, math.IsNaN(got[0].TrainPooledDice))
}

func TestReadLogErrors(t *testing.T) {
	dir := t.TempDir()
	rows, err := ReadLog(filepath.Join(dir, "missing.txt"))
	require.NoError(t, err)
	assert.Empty(t, rows)

	bad := filepath.Join(dir, "bad.txt")
	require.NoError(t, os.WriteFile(bad, []byte("hello\n"), 0o644))
	_, err = ReadLog(bad)
	assert.ErrorContains(t, err, "not a training log")
}
