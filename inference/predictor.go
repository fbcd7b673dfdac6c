// Package inference runs the edema networks over whole OCT cubes (docs/ORIGINAL.md, "Evaluation and fusion"):
// one network, or a weighted fusion of several whose class probabilities
// (the exp of their log-probabilities) and detection probabilities are
// averaged, optionally with a horizontally mirrored second pass as
// test-time augmentation; the predicted class of a pixel is the argmax.
//
// A [Predictor] does the work batch by batch into preallocated outputs, as
// a pipeline: the next batch's input is made while the current batch runs
// (on a GPU it goes up from pinned memory without the host waiting, and
// only labels and detections come back), so memory beyond a cube's own
// data stays bounded by the batch.
// On top of it, [Evaluate] scores the validation cubes as the original
// evaluation script does (and as the challenge's official scoring does),
// and [WriteSubmission] writes a test submission.
//
// # Goroutines
//
// A Predictor is safe for concurrent use: [Load] and [New] put its
// networks in evaluation mode once, and prediction never changes a
// network's mode, weights or statistics, so any number of goroutines may
// call Predict, PredictInto and PredictCube on one Predictor at once, each
// getting what a lone call would get, bit for bit. Not safe while
// predictions run: Free, and anything that changes a member network
// (Train, Eval, LoadCheckpoint, To). [Evaluate] and [WriteSubmission] use
// their Predictor from one goroutine and may run beside other callers.
package inference

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

// Network is a network a Predictor runs: *models.Model, or any stand-in
// with its forward pass.
type Network interface {
	// Name is the network's name, for messages.
	Name() string
	// Device is where the network's weights live; inputs go there.
	Device() torch.Device
	// Eval puts the network in evaluation mode.
	Eval()
	// Tasks are the tasks whose outputs the predictor uses (see
	// models.Model.Tasks).
	Tasks() oct.Tasks
	// Forward returns the segmentation log-probabilities N×4×H×W (nil
	// for a network that only detects) and the detection probabilities
	// N×3 of an input N×3×H×W.
	Forward(x *torch.Tensor) (seg, det *torch.Tensor, err error)
}

// Member is one network of a fusion and its weight. A member that does
// one task only joins the fusion of that task: each task's output is the
// weighted mean over the members that do it.
type Member struct {
	Network Network
	Weight  float64
}

// TTA is a test-time augmentation.
type TTA string

const (
	// NoTTA runs each slice once.
	NoTTA TTA = "none"
	// FlipTTA also runs each slice mirrored left to right, mirrors the
	// class probabilities back and averages them, and the detection
	// probabilities, with those of the slice itself.
	FlipTTA TTA = "flip"
)

// ParseTTA reads a --tta value: none (or empty) or flip.
func ParseTTA(s string) (TTA, error) {
	switch TTA(s) {
	case "", NoTTA:
		return NoTTA, nil
	case FlipTTA:
		return FlipTTA, nil
	}
	return "", fmt.Errorf("unknown test-time augmentation %q (want %s or %s)", s, NoTTA, FlipTTA)
}

// Options tune a Predictor.
type Options struct {
	// BatchSize is the number of slices per forward pass; 0 means
	// models.DefaultBatchSize, the original's 8.
	BatchSize int
	// TTA is the test-time augmentation; empty means none.
	TTA TTA
	// InFlight is the number of batches of a cube predicted at once, each
	// on its own goroutine; 0 means 1. With libtorch's threads set to
	// one, two batches in flight keep two cores busy through the parts of
	// a pass that do not parallelise (see docs/BENCHMARKS.md, "Threads").
	// Each batch in flight holds its own input and activations.
	InFlight int
	// Precision is the forward passes' arithmetic (models.Precision); the
	// zero value is float32.
	Precision models.Precision
	// Layout is the memory layout the networks run in; the zero value is
	// DefaultLayout.
	Layout Layout
}

// Layout is the memory layout of a predictor's networks: their weights
// and the inputs of their passes (models.Model.SetMemoryFormat).
type Layout string

const (
	// DefaultLayout is channels last on the CPU, where the evaluation fast
	// path (nn.Store.SetFastPath) runs faster so (docs/BENCHMARKS.md,
	// "Channels last"), and the networks' own elsewhere. It lays out only
	// the networks of package models.
	DefaultLayout Layout = ""
	// Contiguous is PyTorch's default layout, N×C×H×W.
	Contiguous Layout = "contiguous"
	// ChannelsLast is N×H×W×C; the networks must be package models'.
	ChannelsLast Layout = "channels-last"
)

// check returns an error for a layout that is none of the above.
func (l Layout) check() error {
	switch l {
	case DefaultLayout, Contiguous, ChannelsLast:
		return nil
	}
	return fmt.Errorf("unknown layout %q (want %s or %s)", string(l), Contiguous, ChannelsLast)
}

// Apply lays m out as l says, for m's device.
func (l Layout) Apply(m *models.Model) error {
	if err := l.check(); err != nil {
		return err
	}
	format := torch.ChannelsLast
	switch {
	case l == Contiguous:
		format = torch.ContiguousFormat
	case l == DefaultLayout && m.Device() != torch.CPU:
		return nil
	}
	if err := m.SetMemoryFormat(format); err != nil {
		return fmt.Errorf("%s: memory layout: %w", m.Name(), err)
	}
	return nil
}

// weightTolerance is how far from 1 the sum of fusion weights may be: room
// for decimal weights such as 0.3 + 0.3 + 0.4, not for a forgotten model.
const weightTolerance = 1e-6

// Predictor runs a network or a fusion of networks over slices.
type Predictor struct {
	members []Member
	opts    Options
	device  torch.Device
	// owned are the networks Load built, freed by Free.
	owned []*models.Model
	tasks oct.Tasks
}

// New returns a predictor of members, whose weights must be positive and
// sum to 1, all on one device. It puts every network in evaluation mode.
func New(members []Member, opts Options) (*Predictor, error) {
	if len(members) == 0 {
		return nil, errors.New("no network to run")
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("batch size %d is negative", opts.BatchSize)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = models.DefaultBatchSize
	}
	if opts.InFlight < 0 {
		return nil, fmt.Errorf("batches in flight %d is negative", opts.InFlight)
	}
	if opts.InFlight == 0 {
		opts.InFlight = 1
	}
	tta, err := ParseTTA(string(opts.TTA))
	if err != nil {
		return nil, err
	}
	opts.TTA = tta
	var total float64
	for _, m := range members {
		if m.Network == nil {
			return nil, errors.New("a fusion member has no network")
		}
		if !(m.Weight > 0) || math.IsInf(m.Weight, 0) {
			return nil, fmt.Errorf("%s: fusion weight %g must be a positive number", m.Network.Name(), m.Weight)
		}
		total += m.Weight
	}
	if math.Abs(total-1) > weightTolerance {
		return nil, fmt.Errorf("fusion weights %s sum to %g, not 1", weightList(members), total)
	}
	device := members[0].Network.Device()
	for _, m := range members[1:] {
		if d := m.Network.Device(); d != device {
			return nil, fmt.Errorf("%s is on %s but %s on %s: fused networks share a device", members[0].Network.Name(), device, m.Network.Name(), d)
		}
	}
	if opts.Precision, err = models.ParsePrecision(string(opts.Precision)); err != nil {
		return nil, err
	}
	if err := opts.Precision.Check(device); err != nil {
		return nil, err
	}
	if err := opts.Layout.check(); err != nil {
		return nil, err
	}
	if opts.Layout == ChannelsLast {
		// Every member is checked before any changes.
		for _, m := range members {
			if _, ok := m.Network.(*models.Model); !ok {
				return nil, fmt.Errorf("%s cannot run channels last: only the networks of package models can", m.Network.Name())
			}
		}
	}
	for _, m := range members {
		if mm, ok := m.Network.(*models.Model); ok {
			if err := opts.Layout.Apply(mm); err != nil {
				return nil, err
			}
		}
	}
	for _, m := range members {
		m.Network.Eval()
	}
	p := &Predictor{members: append([]Member(nil), members...), opts: opts, device: device}
	for _, m := range members {
		p.tasks |= m.Network.Tasks()
	}
	return p, nil
}

// Tasks returns the tasks the predictor does: those that any member does.
// The outputs of the others are absent from its predictions.
func (p *Predictor) Tasks() oct.Tasks { return p.tasks }

func weightList(members []Member) string {
	parts := make([]string, len(members))
	for i, m := range members {
		parts[i] = fmt.Sprintf("%s:%g", m.Network.Name(), m.Weight)
	}
	return strings.Join(parts, ", ")
}

// Free releases the networks that Load built. Freeing twice is harmless.
func (p *Predictor) Free() {
	for _, m := range p.owned {
		m.Free()
	}
	p.owned = nil
}

// Members returns the networks and their weights.
func (p *Predictor) Members() []Member { return append([]Member(nil), p.members...) }

// Options returns the predictor's settings, defaults filled in.
func (p *Predictor) Options() Options { return p.opts }

// Device returns the device the networks run on.
func (p *Predictor) Device() torch.Device { return p.device }

// String names what the predictor runs, such as
// "unet_nested 0.5 + unet 0.5, tta flip".
func (p *Predictor) String() string {
	var s string
	if len(p.members) == 1 {
		s = p.members[0].Network.Name()
	} else {
		parts := make([]string, len(p.members))
		for i, m := range p.members {
			parts[i] = fmt.Sprintf("%s %g", m.Network.Name(), m.Weight)
		}
		s = strings.Join(parts, " + ")
	}
	if p.opts.TTA != NoTTA {
		s += ", tta " + string(p.opts.TTA)
	}
	return s
}

// PredictCube predicts every slice of a cube, normalised by norm, and
// returns its labels and detection probabilities. The next batch is
// normalised while the current one runs; one batch of input more than
// Options.InFlight is allocated and refilled, whatever the cube's size.
// ctx is checked between batches, so a long cube stops soon after it is
// cancelled.
func (p *Predictor) PredictCube(ctx context.Context, c *oct.Cube, norm *oct.Normalizer) (*models.Prediction, error) {
	if c.Slices() == 0 {
		return nil, fmt.Errorf("cube %s has no slice", c.Name)
	}
	size := 3 * c.H * c.W
	pred, err := p.predict(ctx, c.Slices(), c.H, c.W, func(buf *[]float32, at, n int) []float32 {
		if *buf == nil {
			*buf = make([]float32, min(p.opts.BatchSize, c.Slices())*size)
		}
		batch := *buf
		for k := range n {
			norm.Fill(batch[k*size:(k+1)*size], c.Stacks[at+k], false)
		}
		return batch[:n*size]
	})
	if err != nil {
		return nil, fmt.Errorf("cube %s: %w", c.Name, err)
	}
	return pred, nil
}

// Predict runs slices slices of images (slices×3×h×w normalised values,
// row-major), BatchSize at a time, and returns their labels and detection
// probabilities.
func (p *Predictor) Predict(images []float32, slices, h, w int) (*models.Prediction, error) {
	if slices < 1 || h < 1 || w < 1 {
		return nil, fmt.Errorf("cannot predict %d slices of %d×%d", slices, h, w)
	}
	if want := slices * 3 * h * w; len(images) != want {
		return nil, fmt.Errorf("%d values for %d slices of 3×%d×%d, want %d", len(images), slices, h, w, want)
	}
	size := 3 * h * w
	return p.predict(context.Background(), slices, h, w, func(_ *[]float32, at, n int) []float32 {
		return images[at*size : (at+n)*size]
	})
}

// batchInput is the input of one batch of a prediction: slices
// [at, at+n) in images, held in buf when the input was made there.
type batchInput struct {
	at, n  int
	images []float32
	buf    []float32
}

// predict is the one loop over the batches of a prediction, a pipeline:
// one goroutine makes each batch's input while InFlight others run the
// batches before it. input returns the normalised input of slices
// [at, at+n), n×3×h×w values, in *buf (which it allocates, room for a
// batch, when nil) or elsewhere; InFlight+1 such buffers go round, so
// that the next batch is ready when a pass ends and the memory stays
// bounded by the batch. Each batch writes its own slices of the
// prediction.
func (p *Predictor) predict(ctx context.Context, slices, h, w int, input func(buf *[]float32, at, n int) []float32) (*models.Prediction, error) {
	dst := models.NewPrediction(slices, h, w, false)
	dst.Absent = oct.BothTasks &^ p.tasks
	batch := p.opts.BatchSize
	batches := (slices + batch - 1) / batch
	inFlight := min(p.opts.InFlight, batches)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	free := make(chan []float32, inFlight+1)
	for range inFlight + 1 {
		free <- nil
	}
	ready := make(chan batchInput)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ready)
		for b := range batches {
			var buf []float32
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			if ctx.Err() != nil {
				return // both were ready, and select chose the buffer
			}
			at := b * batch
			n := min(batch, slices-at)
			in := batchInput{at: at, n: n, images: input(&buf, at, n), buf: buf}
			select {
			case ready <- in:
			case <-ctx.Done():
				return
			}
		}
	})
	for range inFlight {
		wg.Go(func() {
			for in := range ready {
				if ctx.Err() != nil {
					continue // drain: the producer stops at the cancellation
				}
				if err := p.predictInto(dst, in.at, in.images, in.n); err != nil {
					cancel(err)
				}
				free <- in.buf
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return dst, nil
}

// PredictInto runs the n slices of images (n×3×H×W with dst's H and W) in
// one pass per network (two with FlipTTA) and writes their labels and
// detection probabilities at slices [at, at+n) of dst, marking in
// dst.Absent the tasks the predictor does not do. Every tensor of the
// pass is released before it returns.
func (p *Predictor) PredictInto(dst *models.Prediction, at int, images []float32, n int) error {
	if err := p.predictInto(dst, at, images, n); err != nil {
		return err
	}
	dst.Absent |= oct.BothTasks &^ p.tasks
	return nil
}

// predictInto is PredictInto without marking dst's absent tasks: the
// batches of one prediction run it concurrently, and predict marks them
// once before.
func (p *Predictor) predictInto(dst *models.Prediction, at int, images []float32, n int) (err error) {
	h, w := dst.H, dst.W
	if n < 1 || at < 0 || at+n > dst.Slices {
		return fmt.Errorf("slices %d..%d do not fit a prediction of %d slices", at, at+n-1, dst.Slices)
	}
	if want := n * 3 * h * w; len(images) != want {
		return fmt.Errorf("%d values for %d slices of 3×%d×%d, want %d", len(images), n, h, w, want)
	}
	defer torch.Recover(&err)
	torch.InferenceMode(func() {
		s := torch.NewScope()
		defer s.Close()
		x := torch.FromSlice(images, int64(n), 3, int64(h), int64(w))
		if p.device.IsCUDA() {
			// From pinned memory the copy is queued without waiting, ahead
			// of the pass, and the host goes on to queue the pass itself.
			x = x.PinMemory().ToDeviceAsync(p.device)
		}
		var scores, det *torch.Tensor
		if scores, det, err = p.forward(x); err != nil {
			return
		}
		area := h * w
		if scores != nil {
			torch.CopyInto(dst.Labels[at*area:(at+n)*area], models.ArgmaxLabels(scores))
		}
		if det != nil {
			torch.CopyInto(dst.Detections[at*oct.NumLesions:(at+n)*oct.NumLesions], det.To(torch.Float32))
		}
	})
	return err
}

// forward returns the class scores whose argmax is the prediction and the
// detection probabilities of x, nil for a task no member does. One network
// without augmentation gives its log-probabilities, as the original's
// single-model scripts take the argmax of; otherwise the scores are the
// fused probabilities Σ_k w_k·exp(seg_k), summed in member order as the
// original's fusion does, with the mirrored pass averaged in first under
// FlipTTA. Members that do one task only add to that task's sum, and the
// detection probabilities are divided by the weight of the members that
// detect when that is not all of them.
func (p *Predictor) forward(x *torch.Tensor) (scores, det *torch.Tensor, err error) {
	if len(p.members) == 1 && p.opts.TTA == NoTTA {
		m := p.members[0].Network
		seg, d, err := p.run(m, x)
		if err != nil {
			return nil, nil, err
		}
		if !m.Tasks().Has(oct.Segmentation) {
			seg.Free()
			seg = nil
		}
		if !m.Tasks().Has(oct.Detection) {
			d.Free()
			d = nil
		}
		return seg, d, nil
	}
	var mirrored *torch.Tensor
	if p.opts.TTA == FlipTTA {
		mirrored = x.Flip(3)
	}
	var total, detecting float64
	for _, m := range p.members {
		tasks := m.Network.Tasks()
		seg, d, err := p.run(m.Network, x)
		if err != nil {
			return nil, nil, err
		}
		var segM, dM *torch.Tensor
		if mirrored != nil {
			if segM, dM, err = p.run(m.Network, mirrored); err != nil {
				return nil, nil, err
			}
		}
		if tasks.Has(oct.Segmentation) {
			prob := seg.Exp()
			if segM != nil {
				prob = average(prob, segM.Exp().Flip(3))
			}
			scores = accumulate(scores, prob, m.Weight)
			prob.Free()
		}
		if tasks.Has(oct.Detection) {
			if dM != nil {
				d = average(d, dM)
				dM = nil
			}
			det = accumulate(det, d, m.Weight)
			detecting += m.Weight
		}
		total += m.Weight
		seg.Free() // nil-safe: a detector has none
		segM.Free()
		d.Free()
		dM.Free()
	}
	if det != nil && detecting != total {
		sum := det
		det = sum.DivScalar(detecting)
		sum.Free()
	}
	return scores, det, nil
}

// run is net's forward pass of x in the predictor's precision.
func (p *Predictor) run(net Network, x *torch.Tensor) (seg, det *torch.Tensor, err error) {
	return p.opts.Precision.Forward(p.device, func() (*torch.Tensor, *torch.Tensor, error) { return net.Forward(x) })
}

// average returns (a + b) / 2 and frees a and b.
func average(a, b *torch.Tensor) *torch.Tensor {
	sum := a.Add(b)
	a.Free()
	b.Free()
	avg := sum.MulScalar(0.5)
	sum.Free()
	return avg
}

// accumulate returns acc + w·v and frees acc; a nil acc starts the sum.
func accumulate(acc, v *torch.Tensor, w float64) *torch.Tensor {
	if acc == nil {
		return v.MulScalar(w)
	}
	term := v.MulScalar(w)
	sum := acc.Add(term)
	acc.Free()
	term.Free()
	return sum
}
