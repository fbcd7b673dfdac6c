package optim

import (
	"errors"
	"fmt"
	"math"

	"github.com/edema/edema/torch"
)

// GradScaler scales a loss up before its backward pass and the gradients
// down before the optimizer's step, as torch.amp.GradScaler does, so that
// the small gradients of a float16 network do not round to zero. A step
// whose gradients overflowed (an infinity or NaN in any of them) is
// skipped, and the scale shrinks; after GrowthInterval steps in a row
// without one, the scale grows. The scale is a float32, as PyTorch's is,
// and each update is PyTorch's to the bit.
//
// A training step with a scaler reads:
//
//	s.Scale(loss).Backward()
//	stepped, err := s.Step(opt, params)
//	s.Update()
type GradScaler struct {
	opts    GradScalerOptions
	scale   float32
	tracker int64 // steps in a row without an overflow
	found   *bool // whether the last Step found one; nil until a Step
}

// GradScalerOptions are torch.amp.GradScaler's arguments.
type GradScalerOptions struct {
	InitScale      float64 // the first scale (2^16)
	GrowthFactor   float64 // the scale's factor after GrowthInterval clean steps (2)
	BackoffFactor  float64 // its factor after an overflow (0.5)
	GrowthInterval int64   // clean steps in a row before it grows (2000)
}

// DefaultGradScalerOptions are PyTorch's defaults.
func DefaultGradScalerOptions() GradScalerOptions {
	return GradScalerOptions{InitScale: 65536, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000}
}

// NewGradScaler makes a scaler.
func NewGradScaler(o GradScalerOptions) (*GradScaler, error) {
	switch {
	case !(o.InitScale > 0) || math.IsInf(float64(float32(o.InitScale)), 0) || float32(o.InitScale) == 0:
		return nil, fmt.Errorf("grad scaler: initial scale %v: want a positive float32", o.InitScale)
	case !(o.GrowthFactor > 1):
		return nil, fmt.Errorf("grad scaler: growth factor %v: want more than 1", o.GrowthFactor)
	case !(o.BackoffFactor > 0 && o.BackoffFactor < 1):
		return nil, fmt.Errorf("grad scaler: backoff factor %v: want between 0 and 1", o.BackoffFactor)
	case o.GrowthInterval < 1:
		return nil, fmt.Errorf("grad scaler: growth interval %d: want at least 1", o.GrowthInterval)
	}
	return &GradScaler{opts: o, scale: float32(o.InitScale)}, nil
}

// Scale returns loss times the scale.
func (s *GradScaler) Scale(loss *torch.Tensor) *torch.Tensor {
	return loss.MulScalar(float64(s.scale))
}

// Step divides the gradients of params by the scale (in place), then
// takes the optimizer's step unless one of them holds an infinity or a
// NaN, and reports whether it stepped. Update must follow before the
// next Step.
func (s *GradScaler) Step(opt Optimizer, params []*torch.Tensor) (stepped bool, err error) {
	if s.found != nil {
		return false, errors.New("grad scaler: Step twice without Update")
	}
	found, err := s.unscale(params)
	if err != nil {
		return false, err
	}
	s.found = &found
	if found {
		return false, nil
	}
	return true, opt.Step()
}

// unscale says whether any gradient holds an infinity or a NaN (the
// largest magnitude of all of them, which a NaN anywhere makes NaN, in
// float64, which holds every gradient's value, brought to the host in one
// transfer) and multiplies each gradient by the float32 reciprocal of the
// scale (computed in float64, as PyTorch does). The check comes first, so
// that a failure leaves every gradient as it was.
func (s *GradScaler) unscale(params []*torch.Tensor) (found bool, err error) {
	defer torch.Recover(&err)
	inv := float64(float32(1 / float64(s.scale)))
	var grads, peaks []*torch.Tensor
	torch.NoGrad(func() {
		torch.Scoped(func(*torch.Scope) {
			for _, p := range params {
				if g := p.Grad(); g != nil && g.Numel() > 0 {
					grads = append(grads, g)
					peaks = append(peaks, g.Abs().Max().To(torch.Float64))
				}
			}
			if len(peaks) > 0 {
				peak := torch.Stack(peaks, 0).Max().ToDevice(torch.CPU).Item()
				found = math.IsNaN(peak) || math.IsInf(peak, 0)
			}
			for _, g := range grads {
				g.MulScalarInPlace(inv)
			}
		})
	})
	return found, nil
}

// Update sets the scale for the next step from what the last Step found,
// as torch._amp_update_scale_ does: after an overflow it shrinks by
// BackoffFactor; after GrowthInterval clean steps in a row it grows by
// GrowthFactor, unless that would overflow float32.
func (s *GradScaler) Update() {
	if s.found == nil {
		return
	}
	if *s.found {
		s.scale = float32(float64(s.scale) * s.opts.BackoffFactor)
		s.tracker = 0
	} else if s.tracker+1 == s.opts.GrowthInterval {
		if grown := float32(float64(s.scale) * s.opts.GrowthFactor); !math.IsInf(float64(grown), 0) {
			s.scale = grown
		}
		s.tracker = 0
	} else {
		s.tracker++
	}
	s.found = nil
}

// ScaleValue returns the current scale.
func (s *GradScaler) ScaleValue() float64 { return float64(s.scale) }

// GradScalerState is the scaler's state between steps, as PyTorch's
// GradScaler.state_dict() holds it ("scale", "_growth_tracker").
type GradScalerState struct {
	Scale         float64
	GrowthTracker int64
}

// State returns the state to save with a checkpoint.
func (s *GradScaler) State() GradScalerState {
	return GradScalerState{Scale: float64(s.scale), GrowthTracker: s.tracker}
}

// SetState restores a saved state.
func (s *GradScaler) SetState(st GradScalerState) error {
	if !(st.Scale > 0) || math.IsInf(st.Scale, 0) || float64(float32(st.Scale)) != st.Scale {
		return fmt.Errorf("grad scaler: scale %v is not a positive float32", st.Scale)
	}
	if st.GrowthTracker < 0 || st.GrowthTracker >= s.opts.GrowthInterval {
		return fmt.Errorf("grad scaler: growth tracker %d: want 0 to %d", st.GrowthTracker, s.opts.GrowthInterval-1)
	}
	s.scale, s.tracker, s.found = float32(st.Scale), st.GrowthTracker, nil
	return nil
}
