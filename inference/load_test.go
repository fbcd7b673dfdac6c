package inference

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/pth"
)

func TestParseSpec(t *testing.T) {
	good := []struct {
		in   string
		want Spec
	}{
		{"unet=a.pth:0.5", Spec{"unet", "a.pth", 0.5}},
		{"unet_nested=result/x/model_best.pth.tar:1", Spec{"unet_nested", "result/x/model_best.pth.tar", 1}},
		{"unet_nested_dilated=C:/w/m.pth:.25", Spec{"unet_nested_dilated", "C:/w/m.pth", 0.25}},
	}
	for _, tc := range good {
		got, err := ParseSpec(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
		again, err := ParseSpec(got.String())
		require.NoError(t, err)
		assert.Equal(t, got, again)
	}
	bad := []struct{ in, want string }{
		{"unet", `fusion model "unet": want NAME=PATH:WEIGHT`},
		{"unet=a.pth", `fusion model "unet=a.pth": want NAME=PATH:WEIGHT`},
		{"unet=a.pth:", "want NAME=PATH:WEIGHT"},
		{"unet=:0.5", "want NAME=PATH:WEIGHT"},
		{"=a.pth:0.5", "want NAME=PATH:WEIGHT"},
		{"resnet=a.pth:0.5", `unknown network "resnet" (known: unet, unet_nested, unet_nested_dilated, resnet18)`},
		{"unet=a.pth:half", `weight "half" is not a number`},
	}
	for _, tc := range bad {
		_, err := ParseSpec(tc.in)
		assert.ErrorContains(t, err, tc.want, tc.in)
	}
}

func TestDefaultFusion(t *testing.T) {
	assert.Equal(t, []Spec{
		{"unet_nested", filepath.Join("result", "unet_nested", "checkpoint", "model_best.pth.tar"), 0.5},
		{"unet", filepath.Join("result", "unet", "checkpoint", "model_best.pth.tar"), 0.5},
	}, DefaultFusion(""))
	assert.Equal(t, filepath.Join("runs", "unet", "checkpoint", "model_best.pth.tar"), DefaultFusion("runs")[1].Checkpoint)
}

// saveModel writes the weights of a new network called name, seeded with
// seed, to dir/file in the given format, and returns the path and network.
func saveModel(t *testing.T, dir, file, name string, seed uint64, format pth.Format) (string, *models.Model) {
	t.Helper()
	torch.ManualSeed(seed)
	m, err := models.New(name)
	require.NoError(t, err)
	t.Cleanup(m.Free)
	path := filepath.Join(dir, file)
	require.NoError(t, models.SaveCheckpoint(path, m, &models.CheckpointMeta{Epoch: 1}, nil, models.SaveOptions{Format: format}))
	return path, m
}

func TestLoadRunsTheSavedNetworks(t *testing.T) {
	dir := t.TempDir()
	zipPath, unet := saveModel(t, dir, "unet.pth.tar", models.NameUNet, 5, pth.FormatZip)
	legacyPath, _ := saveModel(t, dir, "unet_legacy.pth.tar", models.NameUNet, 5, pth.FormatLegacy)
	const n, h, w = 3, 32, 16
	x := testSlices(n, h, w)
	// In the layout that Load gives its networks.
	require.NoError(t, DefaultLayout.Apply(unet))
	want := modelPredict(t, unet, x, n, h, w, 2)
	for _, path := range []string{zipPath, legacyPath} {
		p, err := Load([]Spec{{models.NameUNet, path, 1}}, torch.CPU, Options{BatchSize: 2})
		require.NoError(t, err, path)
		got, err := p.Predict(x, n, h, w)
		require.NoError(t, err)
		assert.Equal(t, want.Labels, got.Labels, path)
		assert.Equal(t, want.Detections, got.Detections, path)
		p.Free()
		p.Free()
	}

	nested, _ := saveModel(t, dir, "nested.pth.tar", models.NameUNetNested, 6, pth.FormatZip)
	p, err := Load([]Spec{{models.NameUNetNested, nested, 0.5}, {models.NameUNet, zipPath, 0.5}}, torch.CPU, Options{TTA: FlipTTA})
	require.NoError(t, err)
	defer p.Free()
	assert.Equal(t, "unet_nested 0.5 + unet 0.5, tta flip", p.String())
	assert.Len(t, p.Members(), 2)
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	unet, _ := saveModel(t, dir, "unet.pth.tar", models.NameUNet, 1, pth.FormatZip)
	corrupt := filepath.Join(dir, "corrupt.pth.tar")
	data, err := os.ReadFile(unet)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(corrupt, data[:len(data)/2], 0o644))
	missing := filepath.Join(dir, "missing.pth.tar")
	tests := []struct {
		specs []Spec
		want  string
	}{
		{nil, "no network to load"},
		{[]Spec{{models.NameUNet, missing, 1}}, "checkpoint " + missing + " does not exist"},
		// The second checkpoint is checked before the first is read.
		{[]Spec{{models.NameUNet, unet, 0.5}, {models.NameUNetNested, missing, 0.5}}, "checkpoint " + missing + " does not exist"},
		{[]Spec{{models.NameUNet, dir, 1}}, "checkpoint " + dir + " is a folder, not a file"},
		{[]Spec{{models.NameUNet, "", 1}}, "no checkpoint path given"},
		{[]Spec{{models.NameUNetNested, unet, 1}}, unet + " holds the weights of unet, not of unet_nested"},
		{[]Spec{{models.NameUNet, corrupt, 1}}, corrupt},
		{[]Spec{{models.NameUNet, unet, 0.5}, {models.NameUNet, unet, 0.6}}, "fusion weights unet:0.5, unet:0.6 sum to 1.1, not 1"},
	}
	for _, tc := range tests {
		_, err := Load(tc.specs, torch.CPU, Options{})
		assert.ErrorContains(t, err, tc.want)
	}
	if !torch.CUDAIsAvailable() {
		_, err := Load([]Spec{{models.NameUNet, unet, 1}}, torch.CUDA(0), Options{})
		assert.ErrorContains(t, err, "cuda")
	}
}

// A checkpoint that records its normalisation deploys alone; an original
// one needs its info.json.
func TestLoadDeployment(t *testing.T) {
	dir := t.TempDir()
	torch.ManualSeed(8)
	m, err := models.New(models.NameUNetNested)
	require.NoError(t, err)
	defer m.Free()
	info := oct.Info{Mean: [3]float64{0.14, 0.15, 0.16}, Std: [3]float64{0.09, 0.1, 0.11}}
	c, err := models.NewCheckpoint(m, &models.CheckpointMeta{Epoch: 3}, nil)
	require.NoError(t, err)
	models.SetNormalization(c, info)
	deployable := filepath.Join(dir, "model_best.pth.tar")
	require.NoError(t, c.Save(deployable, models.SaveOptions{}))
	original := filepath.Join(dir, "original.pth.tar")
	require.NoError(t, models.SaveCheckpoint(original, m, &models.CheckpointMeta{Epoch: 3}, nil, models.SaveOptions{Format: pth.FormatLegacy}))

	d, err := LoadDeployment(deployable, nil, torch.CPU, Options{})
	require.NoError(t, err)
	defer d.Free()
	assert.Equal(t, info, d.Info)
	assert.Equal(t, "unet_nested", d.String(), "identified by its weights")
	const n, h, w = 2, 32, 16
	x := testSlices(n, h, w)
	got, err := d.Predict(x, n, h, w)
	require.NoError(t, err)
	want := modelPredict(t, m, x, n, h, w, 8)
	assert.Equal(t, want.Labels, got.Labels)

	_, err = LoadDeployment(original, nil, torch.CPU, Options{})
	assert.ErrorContains(t, err, original+" records no normalisation (a checkpoint of the original's training): give the info.json")
	withInfo, err := LoadDeployment(original, &info, torch.CPU, Options{})
	require.NoError(t, err)
	defer withInfo.Free()
	assert.Equal(t, d.Normalizer.Value(1, 200), withInfo.Normalizer.Value(1, 200))

	notAModel := filepath.Join(dir, "x.pth")
	sd := pth.NewStateDict()
	sd.Set("w", &pth.Tensor{DType: pth.Float32, Shape: []int64{1}, Data: make([]byte, 4)})
	require.NoError(t, (&models.Checkpoint{StateDict: sd, Bare: true}).Save(notAModel, models.SaveOptions{PlainKeys: true}))
	_, err = LoadDeployment(notAModel, &info, torch.CPU, Options{})
	assert.ErrorContains(t, err, "holds the weights of none of the networks")
}
