package demo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/losses"
	"github.com/edema/edema/models"
)

func TestOptionsValidate(t *testing.T) {
	require.NoError(t, DefaultOptions().Validate())
	require.NoError(t, QuickOptions().Validate())
	tests := []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Out = "" }, "no output folder"},
		{func(o *Options) { o.Epochs = 0 }, "epochs must be at least 1, got 0"},
		{func(o *Options) { o.BatchSize = 0 }, "batch size must be at least 1, got 0"},
		{func(o *Options) { o.LR = 0 }, "learning rate must be positive, got 0"},
		{func(o *Options) { o.MaxStepsPerEpoch = -1 }, "max steps per epoch must not be negative"},
		{func(o *Options) { o.Data.Val = 0 }, "at least one validation cube"},
		{func(o *Options) { o.Data.Test = 0 }, "at least one test cube"},
		{func(o *Options) { o.Data.Train, o.Data.Slices, o.BatchSize = 1, 4, 8 }, "4 training slices do not fill one batch of 8"},
		{func(o *Options) { o.Data.Width = 100 }, "--width 100: must be a multiple of 16"},
	}
	for _, tc := range tests {
		o := QuickOptions()
		tc.change(&o)
		assert.ErrorContains(t, o.Validate(), tc.want)
	}
}

func TestRunRefusesAnOutputFolderInUse(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "earlier.txt"), nil, 0o644))
	o := QuickOptions()
	o.Out = dir
	_, err := Run(context.Background(), o)
	assert.ErrorContains(t, err, dir+" is not empty: remove it or choose another output folder")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing written")
}

func TestRecipes(t *testing.T) {
	r := Recipes(3, 0.002)
	require.Len(t, r, 2)
	assert.Equal(t, Recipe{Name: models.NameUNetNested, Loss: losses.Mix33, Epochs: 3, LR: 0.002, LRMode: "poly"}, r[0])
	assert.Equal(t, Recipe{Name: models.NameUNet, Loss: losses.Mix3, Epochs: 6, LR: 0.002, LRMode: "step", Step: 20}, r[1])
	assert.Equal(t, "UNet++ (mix_33)", label(r[0]))
}
