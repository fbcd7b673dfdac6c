package inference

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

// Spec names a network to load: its name (see models.Names), its checkpoint
// and its weight in a fusion.
type Spec struct {
	Name       string
	Checkpoint string
	Weight     float64
}

// String writes the spec as ParseSpec reads it.
func (s Spec) String() string {
	return s.Name + "=" + s.Checkpoint + ":" + strconv.FormatFloat(s.Weight, 'g', -1, 64)
}

// ParseSpec reads a fusion member written NAME=PATH:WEIGHT, such as
// unet_nested=result/unet_nested/checkpoint/model_best.pth.tar:0.5. The
// weight follows the last colon, so PATH may hold colons of its own.
func ParseSpec(s string) (Spec, error) {
	name, rest, ok := strings.Cut(s, "=")
	i := strings.LastIndexByte(rest, ':')
	if !ok || name == "" || i <= 0 || i == len(rest)-1 {
		return Spec{}, fmt.Errorf("fusion model %q: want NAME=PATH:WEIGHT, such as unet=model_best.pth.tar:0.5", s)
	}
	if !slices.Contains(models.Names(), name) {
		return Spec{}, fmt.Errorf("fusion model %q: unknown network %q (known: %s)", s, name, strings.Join(models.Names(), ", "))
	}
	weight, err := strconv.ParseFloat(rest[i+1:], 64)
	if err != nil {
		return Spec{}, fmt.Errorf("fusion model %q: weight %q is not a number", s, rest[i+1:])
	}
	return Spec{Name: name, Checkpoint: rest[:i], Weight: weight}, nil
}

// DefaultFusion is the original's fusion: UNet++ and UNet, 0.5 each, from
// the best checkpoints that `edema train` writes by default under
// resultDir/<name> (resultDir is "result" when empty).
func DefaultFusion(resultDir string) []Spec {
	if resultDir == "" {
		resultDir = "result"
	}
	best := func(name string) string {
		return filepath.Join(resultDir, name, "checkpoint", "model_best.pth.tar")
	}
	return []Spec{
		{Name: models.NameUNetNested, Checkpoint: best(models.NameUNetNested), Weight: 0.5},
		{Name: models.NameUNet, Checkpoint: best(models.NameUNet), Weight: 0.5},
	}
}

// Load builds the networks of specs on device from their checkpoints (any
// format models.Load reads, strictly) and returns a predictor of their
// fusion; a single spec's weight must be 1. The predictor owns the
// networks: Free releases them.
func Load(specs []Spec, device torch.Device, opts Options) (*Predictor, error) {
	if len(specs) == 0 {
		return nil, errors.New("no network to load")
	}
	if err := torch.CheckDevice(device); err != nil {
		return nil, err
	}
	// Every file is checked before any is read, so that a missing second
	// checkpoint is reported at once and not after loading the first.
	for _, s := range specs {
		if err := checkCheckpoint(s.Checkpoint); err != nil {
			return nil, err
		}
	}
	var loaded []*models.Model
	free := func() {
		for _, m := range loaded {
			m.Free()
		}
	}
	members := make([]Member, len(specs))
	for i, s := range specs {
		m, err := LoadNetwork(s.Name, s.Checkpoint, device)
		if err != nil {
			free()
			return nil, err
		}
		loaded = append(loaded, m)
		members[i] = Member{Network: m, Weight: s.Weight}
	}
	p, err := New(members, opts)
	if err != nil {
		free()
		return nil, err
	}
	p.owned = loaded
	return p, nil
}

// LoadNetwork builds the network called name on device from the checkpoint
// at path, strictly (see models.Load), in evaluation mode, ready to
// predict, with errors that say when the file is missing or holds another
// network's weights.
func LoadNetwork(name, path string, device torch.Device) (*models.Model, error) {
	if err := checkCheckpoint(path); err != nil {
		return nil, err
	}
	m, _, err := models.Load(path, name, device)
	if err != nil {
		var ce *models.CheckpointError
		if errors.As(err, &ce) && len(ce.Fits) > 0 {
			return nil, fmt.Errorf("%s holds the weights of %s, not of %s", path, strings.Join(ce.Fits, " or "), name)
		}
		return nil, err
	}
	m.Eval()
	return m, nil
}

// checkCheckpoint says clearly when a checkpoint file is not there.
func checkCheckpoint(path string) error {
	if path == "" {
		return errors.New("no checkpoint path given")
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checkpoint %s does not exist", path)
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("checkpoint %s is a folder, not a file", path)
	}
	return nil
}

// Deployment is a network loaded from its checkpoint alone, ready to
// serve: the predictor and the normalisation its inputs need.
type Deployment struct {
	*Predictor
	Info       oct.Info
	Normalizer *oct.Normalizer
}

// LoadDeployment loads the network of the checkpoint at path, identified
// by its weights, on device, with the normalisation that edema records in
// the checkpoints it writes. The original's checkpoints record none: info
// (nil otherwise) then gives it, as info.json does; given for a checkpoint
// that records its own, info wins.
func LoadDeployment(path string, info *oct.Info, device torch.Device, opts Options) (*Deployment, error) {
	if err := checkCheckpoint(path); err != nil {
		return nil, err
	}
	c, err := models.ReadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	name, err := networkOf(path, c)
	if err != nil {
		return nil, err
	}
	recorded, ok, err := models.Normalization(c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case info != nil:
		recorded = *info
	case !ok:
		return nil, fmt.Errorf("%s records no normalisation (a checkpoint of the original's training): give the info.json it was trained with", path)
	}
	norm, err := oct.NewNormalizer(recorded)
	if err != nil {
		return nil, err
	}
	p, err := Load([]Spec{{Name: name, Checkpoint: path, Weight: 1}}, device, opts)
	if err != nil {
		return nil, err
	}
	return &Deployment{Predictor: p, Info: recorded, Normalizer: norm}, nil
}

// networkOf names the network whose weights a checkpoint holds: the only
// one they fit, or, should several fit, the one the checkpoint records.
func networkOf(path string, c *models.Checkpoint) (string, error) {
	fits := models.Identify(c.StateDict)
	if len(fits) == 1 {
		return fits[0], nil
	}
	if v, ok := c.Extra.Get(models.CheckpointArch); ok {
		if name, ok := v.(string); ok && slices.Contains(fits, name) {
			return name, nil
		}
	}
	if len(fits) == 0 {
		return "", fmt.Errorf("%s holds the weights of none of the networks (%s)", path, strings.Join(models.Names(), ", "))
	}
	return "", fmt.Errorf("%s fits %s: name the network", path, strings.Join(fits, " and "))
}
