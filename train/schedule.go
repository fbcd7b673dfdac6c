package train

import (
	"math"
)

// LRMode is a learning-rate schedule, as the original's --lr-mode spells
// it.
type LRMode string

// The schedules: step, lr·0.1^(epoch // step); poly, lr·(1 − epoch/epochs)^0.9.
const (
	StepLR LRMode = "step"
	PolyLR LRMode = "poly"
)

// Schedule gives the learning rate of an epoch (counted from 0), as the
// original adjust_learning_rate does at the start of every epoch.
type Schedule struct {
	Mode   LRMode
	Base   float64 // the initial learning rate
	Step   int     // step mode: divide by 10 every Step epochs
	Epochs int     // poly mode: the total number of epochs
}

// Validate checks the schedule's settings.
func (s Schedule) Validate() error {
	switch s.Mode {
	case StepLR:
		if s.Step <= 0 {
			return fieldErrorf("{Step} must be positive for {LRMode} step, got %d", s.Step)
		}
	case PolyLR:
		if s.Epochs <= 0 {
			return fieldErrorf("{Epochs} must be positive for {LRMode} poly, got %d", s.Epochs)
		}
	default:
		return fieldErrorf("unknown {LRMode} %q: want step or poly", s.Mode)
	}
	if !(s.Base > 0) {
		return fieldErrorf("{LR} must be positive, got %g", s.Base)
	}
	return nil
}

// LR returns the learning rate of epoch: Base·0.1^(epoch // Step) in step
// mode, Base·(1 − epoch/Epochs)^0.9 in poly mode.
func (s Schedule) LR(epoch int) float64 {
	if s.Mode == PolyLR {
		return s.Base * math.Pow(1-float64(epoch)/float64(s.Epochs), 0.9)
	}
	return s.Base * math.Pow(0.1, float64(epoch/s.Step))
}
