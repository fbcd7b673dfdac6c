package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/demo"
	"github.com/edema/edema/inference"
	"github.com/edema/edema/torch"
)

// demoDiceFloor is the validation Dice that the quick demo's UNet++ and
// fusion must exceed. An untrained UNet scores under 0.01, a network that
// predicts background everywhere 0; the quick demo's UNet++ ends between
// 0.4 and 0.6.
const demoDiceFloor = 0.25

// TestQuickDemo runs the reduced demo end to end and checks that training
// did its job: the trained networks score far above an untrained one,
// measured in the same run.
func TestQuickDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick demo trains two networks for minutes")
	}
	out := filepath.Join(t.TempDir(), "demo")
	// As users run it: through the whole application, so with the host
	// cache serving every large tensor.
	defer torch.DisableHostCache()
	got, err := runApp(t, "demo", "--quick", "--out", out, "-j", "2")
	require.NoError(t, err)
	t.Log(got)
	cache := torch.HostCacheStatistics()
	assert.Positive(t, cache.Limit, "the edema command enables the host cache")
	assert.Greater(t, cache.Hits, 10*cache.Misses, "the training and evaluation passes reuse cached blocks")
	for _, want := range []string{"untrained UNet", "UNet++ (mix_33)", "UNet (mix_3)", "fusion 0.5/0.5", "fusion + flip TTA", "test submission (fusion): Dice", "demo finished in"} {
		assert.Contains(t, got, want)
	}

	dice := func(name string) float64 {
		rows := readTSV(t, filepath.Join(out, "eval", name, inference.LogName))
		require.Len(t, rows, 2)
		return parseFigure(t, rows[1][1])
	}
	untrained := dice("untrained_unet")
	assert.Less(t, untrained, demoDiceFloor/5, "an untrained network")
	assert.Greater(t, dice("unet_nested"), demoDiceFloor, "UNet++")
	assert.Greater(t, dice("fusion"), demoDiceFloor, "fusion")
	// UNet learns more slowly; the quick demo asks only that it learned.
	assert.Greater(t, dice("unet"), untrained, "UNet")

	assert.FileExists(t, filepath.Join(out, "test", "fusion", "submission.zip"))
	pictures, err := os.ReadDir(filepath.Join(out, "eval", "fusion", "vis", "0000"))
	require.NoError(t, err)
	assert.Len(t, pictures, demo.QuickOptions().Data.Slices)
	summary, err := os.ReadFile(filepath.Join(out, demo.SummaryName))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(summary), "model "), string(summary))

	// A second run refuses to mix with the first.
	_, err = runCommand(t, demoCommand(), "--quick", "--out", out)
	assert.ErrorContains(t, err, "demo: "+out+" is not empty")
}

func TestDemoFlagErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--width", "50"}, "demo: --width 50: must be a multiple of 16"},
		{[]string{"--epochs", "0"}, "demo: epochs must be at least 1, got 0"},
		{[]string{"--lr", "-1"}, "demo: learning rate must be positive"},
		{[]string{"--device", "cuda:9"}, "demo: device cuda:9"},
		{[]string{"extra"}, `demo: unexpected argument "extra"`},
		{[]string{"--threads", "-1"}, "demo: threads must not be negative, got -1"},
	}
	for _, tc := range tests {
		_, err := runCommand(t, demoCommand(), append([]string{"--quick", "--out", filepath.Join(dir, "d")}, tc.args...)...)
		assert.ErrorContains(t, err, tc.want)
	}
	assert.NoDirExists(t, filepath.Join(dir, "d"))
}
