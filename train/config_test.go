package train

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/losses"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

func TestDefaultConfigIsTheOriginals(t *testing.T) {
	c := DefaultConfig()
	assert.Equal(t, 64, c.BatchSize)
	assert.Equal(t, 8, c.Workers)
	assert.Equal(t, 10, c.Epochs)
	assert.Equal(t, Adam, c.Optimizer)
	assert.Equal(t, 0.01, c.LR)
	assert.Equal(t, StepLR, c.LRMode)
	assert.Equal(t, 200, c.Step)
	assert.Equal(t, 0.9, c.Momentum)
	assert.Equal(t, 1e-4, c.WeightDecay)
	assert.Equal(t, "mix_3", c.Loss)
	assert.Equal(t, uint64(1234), c.Seed)
	assert.Equal(t, torch.CPU, c.Device)
	c.Name = "unet_nested"
	assert.Equal(t, filepath.Join("result", "unet_nested"), c.Out())
}

func TestRunRejects(t *testing.T) {
	// A finished one-epoch run gives a checkpoint to resume wrongly.
	done := tinyConfig(t)
	done.Epochs = 1
	_, err := Run(context.Background(), done, nil)
	require.NoError(t, err)
	latest := filepath.Join(done.Out(), CheckpointDir, LatestName)

	dir := t.TempDir()
	nestedPath := filepath.Join(dir, "unet_nested.pth.tar")
	barePath := filepath.Join(dir, "unet.pth")
	nested, err := models.New(models.NameUNetNested)
	require.NoError(t, err)
	require.NoError(t, models.SaveCheckpoint(nestedPath, nested, &models.CheckpointMeta{Epoch: 1}, nil, models.SaveOptions{}))
	nested.Free()
	unet, err := models.New(models.NameUNet)
	require.NoError(t, err)
	require.NoError(t, models.SaveCheckpoint(barePath, unet, nil, nil, models.SaveOptions{}))
	unet.Free()

	// A list folder whose first training slice is missing.
	brokenLists := t.TempDir()
	for _, name := range []string{oct.TrainImagesList, oct.TrainLabelsList, oct.ValImagesList, oct.ValLabelsList, oct.InfoFile} {
		data, err := os.ReadFile(filepath.Join(done.ListDir, name))
		require.NoError(t, err)
		if name == oct.TrainImagesList {
			data = []byte("Edema_trainingset/trans3channel_images/gone.img/000.png\n" + strings.SplitN(string(data), "\n", 2)[1])
		}
		require.NoError(t, os.WriteFile(filepath.Join(brokenLists, name), data, 0o644))
	}
	noVal := t.TempDir()
	for _, name := range []string{oct.TrainImagesList, oct.TrainLabelsList, oct.InfoFile} {
		data, err := os.ReadFile(filepath.Join(done.ListDir, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(noVal, name), data, 0o644))
	}

	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no network", func(c *Config) { c.Name = "" }, "Name is required (one of unet, unet_nested, unet_nested_dilated, resnet18)"},
		{"unknown network", func(c *Config) { c.Name = "resnet" }, `unknown Name "resnet"`},
		{"unknown loss", func(c *Config) { c.Loss = "wce" }, `Loss: unknown loss "wce"`},
		{"a detector with a segmentation loss", func(c *Config) { c.Name = models.NameResNet18 }, "Loss mix_3 (WCE + Dice + BCE) trains segmentation and detection, but resnet18 has outputs for detection only: use Loss bce"},
		{"ImageNet weights for UNet", func(c *Config) { c.Pretrained = barePath }, "Pretrained is for resnet18 (torchvision's ImageNet weights), not unet"},
		{"ImageNet weights and a resumed run", func(c *Config) {
			c.Name, c.Loss, c.Pretrained, c.Resume = models.NameResNet18, losses.BCEOnly, barePath, latest
		}, "Pretrained starts a run from ImageNet weights: it excludes Resume and ModelPath"},
		{"missing ImageNet weights", func(c *Config) {
			c.Name, c.Loss, c.Pretrained = models.NameResNet18, losses.BCEOnly, filepath.Join(dir, "resnet18.pth")
		}, "Pretrained: open " + filepath.Join(dir, "resnet18.pth")},
		{"unknown optimizer", func(c *Config) { c.Optimizer = "RMSprop" }, `unknown Optimizer "RMSprop": want Adam or SGD`},
		{"unknown optimizer layout", func(c *Config) { c.OptimizerLayout = 7 }, "unknown OptimizerLayout Layout(7)"},
		{"no epochs", func(c *Config) { c.Epochs = 0 }, "Epochs must be at least 1"},
		{"no batch", func(c *Config) { c.BatchSize = 0 }, "BatchSize must be at least 1"},
		{"unknown schedule", func(c *Config) { c.LRMode = "cosine" }, `unknown LRMode "cosine"`},
		{"zero learning rate", func(c *Config) { c.LR = 0 }, "LR must be positive"},
		{"negative weight decay", func(c *Config) { c.WeightDecay = -1 }, "WeightDecay must not be negative"},
		{"missing data folder", func(c *Config) { c.DataDir = filepath.Join(dir, "nothing") }, "DataDir: stat " + filepath.Join(dir, "nothing")},
		{"data folder is a file", func(c *Config) { c.DataDir = barePath }, "is not a folder"},
		{"no list files", func(c *Config) { c.ListDir = t.TempDir() }, oct.TrainImagesList + ": no such file"},
		{"no validation lists", func(c *Config) { c.ListDir = noVal }, oct.ValImagesList + ": no such file"},
		{"missing slice", func(c *Config) { c.ListDir = brokenLists }, "gone.img/000.png"},
		{"batch larger than the training set", func(c *Config) { c.BatchSize = 9 }, "BatchSize 9 is larger than the training set: " + filepath.Join(done.ListDir, oct.TrainImagesList) + " lists 8 slices"},
		{"scale without crop", func(c *Config) { c.Augment.Scale = 1.5 }, "Augment.Scale and Augment.Crop: a random scale without a crop gives slices of different sizes"},
		{"bad rotation", func(c *Config) { c.Augment.Rotate = -5 }, "Augment.Rotate: rotation -5 must be 0 to 180 degrees"},
		{"crop not a multiple of 16", func(c *Config) { c.Augment.Crop = 24 }, "augmented slices are 24×24 (width×height); the networks need multiples of 16"},
		{"resume and initial weights", func(c *Config) { c.Resume, c.ModelPath = latest, barePath }, "Resume and ModelPath exclude each other"},
		{"missing checkpoint", func(c *Config) { c.Resume = filepath.Join(dir, "nothing.pth") }, "Resume: open " + filepath.Join(dir, "nothing.pth")},
		{"resume another network", func(c *Config) { c.Resume = nestedPath }, "holds the weights of unet_nested, not of unet"},
		{"initial weights of another network", func(c *Config) { c.ModelPath = nestedPath }, "ModelPath " + nestedPath + ": checkpoint holds the weights of unet_nested, not of unet"},
		{"resume bare weights", func(c *Config) { c.Resume = barePath }, "not a training checkpoint (it has no epoch); start from its weights with ModelPath"},
		{"resume with another seed", func(c *Config) { c.Resume, c.Seed = latest, 43 }, "the run was trained with Seed 42, not 43"},
		{"resume a finished run", func(c *Config) { c.Resume, c.Epochs = latest, 1 }, "all 1 epochs are done; raise Epochs"},
		{"resume Adam with SGD", func(c *Config) { c.Resume, c.Optimizer = latest, SGD }, "its optimizer state does not fit Optimizer SGD"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := tinyConfig(t)
			c.edit(&cfg)
			_, err := Run(context.Background(), cfg, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), "\n", "one line")
			if dataErrors[c.name] {
				return // about files, not settings
			}
			var fe *FieldError
			require.ErrorAs(t, err, &fe, "the error names the settings at fault")
			assert.NotEqual(t, fe.Named(func(string) string { return "«field»" }), err.Error(), "the caller can name them its own way")
			entries, _ := os.ReadDir(filepath.Join(cfg.Out(), CheckpointDir))
			for _, e := range entries {
				assert.NotEqual(t, LatestName, e.Name(), "a rejected run writes no checkpoint")
			}
		})
	}

	t.Run("CUDA without CUDA", func(t *testing.T) {
		if torch.CUDAIsAvailable() {
			t.Skip("CUDA is available here")
		}
		cfg := tinyConfig(t)
		cfg.Device = torch.CUDA(0)
		_, err := Run(context.Background(), cfg, nil)
		require.ErrorContains(t, err, "Device: device cuda:0: CUDA is not available")
	})
}

// dataErrors are the cases of TestRunRejects about the data, not the
// settings.
var dataErrors = map[string]bool{"no list files": true, "no validation lists": true, "missing slice": true, "crop not a multiple of 16": true}

func TestFieldErrorNames(t *testing.T) {
	err := fieldErrorf("{Resume} and {ModelPath} exclude each other; {Augment.Crop} %d; {notAField} {}", 3)
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "Resume and ModelPath exclude each other; Augment.Crop 3; {notAField} {}", err.Error())
	flags := map[string]string{"Resume": "--resume", "Augment.Crop": "-s"}
	assert.Equal(t, "--resume and ModelPath exclude each other; -s 3; {notAField} {}", fe.Named(func(f string) string { return flags[f] }))

	wrapped := fieldErrorf("{DataDir}: %w", os.ErrNotExist)
	assert.ErrorIs(t, wrapped, os.ErrNotExist)
}
