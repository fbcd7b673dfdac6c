package train

import (
	"fmt"
	"math"
)

// Schedule gives the learning rate of an epoch (counted from 0), as the
// original adjust_learning_rate does at the start of every epoch.
type Schedule struct {
	Mode   string  // "step" or "poly"
	Base   float64 // the initial learning rate
	Step   int     // step mode: divide by 10 every Step epochs
	Epochs int     // poly mode: the total number of epochs
}

// Validate checks the schedule's settings.
func (s Schedule) Validate() error {
	switch s.Mode {
	case "step":
		if s.Step <= 0 {
			return fmt.Errorf("--step must be positive for --lr-mode step, got %d", s.Step)
		}
	case "poly":
		if s.Epochs <= 0 {
			return fmt.Errorf("--epochs must be positive for --lr-mode poly, got %d", s.Epochs)
		}
	default:
		return fmt.Errorf("unknown --lr-mode %q: want step or poly", s.Mode)
	}
	if !(s.Base > 0) {
		return fmt.Errorf("--lr must be positive, got %g", s.Base)
	}
	return nil
}

// LR returns the learning rate of epoch: Base·0.1^(epoch // Step) in step
// mode, Base·(1 − epoch/Epochs)^0.9 in poly mode.
func (s Schedule) LR(epoch int) float64 {
	if s.Mode == "poly" {
		return s.Base * math.Pow(1-float64(epoch)/float64(s.Epochs), 0.9)
	}
	return s.Base * math.Pow(0.1, float64(epoch/s.Step))
}
