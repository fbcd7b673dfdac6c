package models

import (
	"fmt"

	"github.com/edema/edema/torch"

	"github.com/edema/edema/oct"
)

// DefaultBatchSize is the number of slices per forward pass of a
// prediction unless told otherwise: the original's inference batch.
const DefaultBatchSize = 8

// Prediction is what a network says about S slices of H×W, in plain Go
// slices laid out like the original's outputs.
type Prediction struct {
	Slices, H, W int
	// Labels holds S×H×W classes 0..3: the most probable class per pixel.
	Labels []uint8
	// Detections holds S×3 probabilities that the slice shows REA, SRF, PED.
	Detections []float32
	// Probabilities holds S×4×H×W class probabilities (the exp of the
	// log-probabilities), for fusing networks; nil unless asked for.
	Probabilities []float32
	// Absent holds the tasks the network (or fusion) does not do: their
	// outputs stay zero and mean nothing (see Model.Tasks).
	Absent oct.Tasks
}

// NewPrediction allocates the outputs for slices slices of h×w, with room
// for class probabilities when probabilities is set.
func NewPrediction(slices, h, w int, probabilities bool) *Prediction {
	p := &Prediction{
		Slices: slices, H: h, W: w,
		Labels:     make([]uint8, slices*h*w),
		Detections: make([]float32, slices*oct.NumLesions),
	}
	if probabilities {
		p.Probabilities = make([]float32, slices*oct.NumClasses*h*w)
	}
	return p
}

// PredictInto runs the n slices of images (n×3×H×W with dst's H and W)
// through the network in one forward pass, in inference mode, and writes
// the outputs of its tasks at slices [at, at+n) of dst, adding the others
// to dst.Absent: one batch of a prediction.
// Whole cubes, fusions and test-time augmentation are package inference's.
// The network must be in evaluation mode (Eval): prediction never changes
// the network's mode or its batch statistics.
func (m *Model) PredictInto(dst *Prediction, at int, images []float32, n int) (err error) {
	if m.store.Training() {
		return fmt.Errorf("%s: prediction needs the network in evaluation mode (call Eval first)", m.name)
	}
	if err := checkImages(m.name, images, n, dst.H, dst.W); err != nil {
		return err
	}
	if at < 0 || at+n > dst.Slices {
		return fmt.Errorf("%s: slices %d..%d do not fit a prediction of %d slices", m.name, at, at+n-1, dst.Slices)
	}
	torch.InferenceMode(func() { err = m.predictBatch(dst, at, images, n) })
	return err
}

func checkImages(name string, images []float32, n, h, w int) error {
	if n < 1 || h <= 0 || w <= 0 {
		return fmt.Errorf("%s: cannot predict %d slices of %d×%d", name, n, h, w)
	}
	if h%DivisibleBy != 0 || w%DivisibleBy != 0 {
		return fmt.Errorf("%s: slice height %d and width %d must be multiples of %d", name, h, w, DivisibleBy)
	}
	if want := n * 3 * h * w; len(images) != want {
		return fmt.Errorf("%s: %d values for %d slices of 3×%d×%d, want %d", name, len(images), n, h, w, want)
	}
	return nil
}

// predictBatch runs one forward pass, in inference mode already, and
// releases all its tensors before returning.
func (m *Model) predictBatch(dst *Prediction, at int, images []float32, n int) (err error) {
	defer torch.Recover(&err)
	s := torch.NewScope()
	defer s.Close()
	h, w := dst.H, dst.W
	x := torch.FromSlice(images, int64(n), 3, int64(h), int64(w)).ToOptions(torch.Options{DType: m.store.DType(), Device: m.store.Device()})
	seg, det, err := m.Forward(x)
	if err != nil {
		return err
	}
	area := h * w
	dst.Absent |= oct.BothTasks &^ m.tasks
	if m.tasks.Has(oct.Segmentation) {
		torch.CopyInto(dst.Labels[at*area:(at+n)*area], ArgmaxLabels(seg))
		if dst.Probabilities != nil {
			torch.CopyInto(dst.Probabilities[at*oct.NumClasses*area:(at+n)*oct.NumClasses*area], seg.Exp().To(torch.Float32))
		}
	}
	if m.tasks.Has(oct.Detection) {
		torch.CopyInto(dst.Detections[at*oct.NumLesions:(at+n)*oct.NumLesions], det.To(torch.Float32))
	}
	return nil
}

// ArgmaxLabels turns segmentation scores N×4×H×W (log-probabilities or
// probabilities) into uint8 class labels N×H×W: the class with the highest
// score, the lowest one on a tie, as torch.argmax gives.
func ArgmaxLabels(seg *torch.Tensor) *torch.Tensor {
	return seg.Argmax(1, false).To(torch.Uint8)
}
