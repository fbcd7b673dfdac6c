package inference

import (
	"errors"
	"fmt"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

// LoadFusionDeployment loads the fusion of specs on device with one
// normalisation: info when given, else the one their checkpoints record,
// which must be the same in each that records one.
func LoadFusionDeployment(specs []Spec, info *oct.Info, device torch.Device, opts Options) (*Deployment, error) {
	if len(specs) == 0 {
		return nil, errors.New("no network to run")
	}
	if info == nil {
		var from string
		for _, s := range specs {
			if err := checkCheckpoint(s.Checkpoint); err != nil {
				return nil, err
			}
			c, err := models.ReadCheckpoint(s.Checkpoint)
			if err != nil {
				return nil, err
			}
			recorded, ok, err := models.Normalization(c)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.Checkpoint, err)
			}
			switch {
			case !ok:
				continue
			case info == nil:
				info, from = &recorded, s.Checkpoint
			case recorded != *info:
				return nil, fmt.Errorf("%s and %s record different normalisations (mean %v std %v, mean %v std %v): give the info.json to use",
					from, s.Checkpoint, info.Mean, info.Std, recorded.Mean, recorded.Std)
			}
		}
		if info == nil {
			return nil, errors.New("no checkpoint of the fusion records its normalisation (the original's do not): give the info.json they were trained with")
		}
	}
	norm, err := oct.NewNormalizer(*info)
	if err != nil {
		return nil, err
	}
	p, err := Load(specs, device, opts)
	if err != nil {
		return nil, err
	}
	return &Deployment{Predictor: p, Info: *info, Normalizer: norm}, nil
}
