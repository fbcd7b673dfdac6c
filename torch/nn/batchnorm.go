package nn

import (
	"fmt"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/distributed"
)

// BatchNorm2d is torch.nn.BatchNorm2d with its defaults: affine, tracking
// running statistics, momentum 0.1 and eps 1e-5.
//
// In training mode it normalises with the statistics of the batch, updates
// the running statistics in place (running = 0.9·running + 0.1·batch, with
// the unbiased batch variance) and counts the batch in NumBatchesTracked;
// in evaluation mode it normalises with the running statistics.
type BatchNorm2d struct {
	Weight, Bias            *torch.Tensor
	RunningMean, RunningVar *torch.Tensor
	NumBatchesTracked       *torch.Tensor // int64 scalar
	Momentum, Eps           float64
	path                    Path
	// sync, when set, makes training-mode statistics those of the whole
	// job's batch (ConvertSyncBatchNorm).
	sync *distributed.Group
	// foldedInto is the convolution this batch norm is folded into for
	// evaluation (Sequential.FoldBatchNorm): while that one holds the
	// folded tensors, this one passes its input through.
	foldedInto *Conv2d
}

// NewBatchNorm2d creates batch normalisation of features channels at p:
// parameters "weight" (ones) and "bias" (zeros), buffers "running_mean"
// (zeros), "running_var" (ones) and "num_batches_tracked" (0).
func NewBatchNorm2d(p Path, features int64) *BatchNorm2d {
	if features <= 0 {
		panic(&torch.Error{Op: "batch_norm", Msg: fmt.Sprintf("number of features must be positive, got %d", features)})
	}
	shape := []int64{features}
	m := &BatchNorm2d{Momentum: 0.1, Eps: 1e-5, path: p}
	m.Weight, m.Bias = affine(p, shape)
	m.RunningMean = p.Buffer("running_mean", torch.Zeros(shape, torch.Float32CPU))
	m.RunningVar = p.Buffer("running_var", torch.Ones(shape, torch.Float32CPU))
	m.NumBatchesTracked = torch.Zeros(nil, torch.Options{DType: torch.Int64, Device: torch.CPU})
	p.add("num_batches_tracked", m.NumBatchesTracked, false, true)
	p.register(m)
	return m
}

// Forward normalises x (N×C×H×W) per channel.
func (m *BatchNorm2d) Forward(x *torch.Tensor) *torch.Tensor {
	if d := x.Dim(); d != 4 {
		panic(&torch.Error{Op: "batch_norm", Msg: fmt.Sprintf("expected 4D input (got %dD input)", d)})
	}
	training := m.path.Training()
	if m.foldedInto != nil && m.foldedInto.folding() {
		return x
	}
	synced := training && m.sync != nil && m.sync.Size() > 1
	if shape := x.Shape(); training && !synced && shape[0]*shape[2]*shape[3] == 1 {
		// PyTorch checks this in Python (F.batch_norm), not in libtorch:
		// the batch variance of a single value is undefined.
		panic(&torch.Error{Op: "batch_norm", Msg: fmt.Sprintf("expected more than 1 value per channel when training, got input size %v", shape)})
	}
	var y *torch.Tensor
	if synced {
		y = m.syncForward(x)
	} else {
		y = torch.BatchNorm(x, m.Weight, m.Bias, m.RunningMean, m.RunningVar, training, m.Momentum, m.Eps)
	}
	if training {
		m.NumBatchesTracked.AddScalarInPlace(1)
	}
	return y
}

// ConvertSyncBatchNorm makes every BatchNorm2d of s normalise, in training
// mode, with the statistics of the batches of all the ranks of g together,
// as torch.nn.SyncBatchNorm.convert_sync_batchnorm does: the running
// statistics then follow the whole job's batch, identical on every rank,
// and the gradients flow across ranks through the statistics. Evaluation
// mode, and a group of one, normalise as before. It returns how many
// layers it converted. The keys and the checkpoints stay the same.
func ConvertSyncBatchNorm(s *Store, g *distributed.Group) int {
	n := 0
	for _, m := range s.Modules() {
		if bn, ok := m.(*BatchNorm2d); ok {
			bn.sync = g
			n++
		}
	}
	return n
}

// syncForward is the training-mode pass of a synchronised batch norm: the
// per-channel sums of x and x², and the count, summed over the ranks with
// their gradients (distributed.Group.SumWithGradient) in float64, give the
// job's mean and biased variance, which normalise x; the running
// statistics take the unbiased variance, as PyTorch's SyncBatchNorm does.
// Every rank checks the job's count, so that all refuse a batch of one
// value per channel together.
func (m *BatchNorm2d) syncForward(x *torch.Tensor) *torch.Tensor {
	shape := x.Shape()
	c := shape[1]
	dims := []int64{0, 2, 3}
	x64 := x.To(torch.Float64)
	count := torch.Full([]int64{1}, float64(shape[0]*shape[2]*shape[3]), torch.Options{DType: torch.Float64, Device: x.Device()})
	local := torch.Cat([]*torch.Tensor{x64.SumDims(dims, false), x64.Mul(x64).SumDims(dims, false), count}, 0)
	total, err := m.sync.SumWithGradient(local)
	if err != nil {
		panic(&torch.Error{Op: "sync_batch_norm", Msg: err.Error()})
	}
	n := total.Narrow(0, 2*c, 1).Detach()
	if all := n.Item(); all <= 1 {
		panic(&torch.Error{Op: "sync_batch_norm", Msg: fmt.Sprintf("expected more than 1 value per channel when training, got %g over the job's batches", all)})
	}
	mean := total.Narrow(0, 0, c).Div(n)
	// E[x²] − E[x]² in float64; rounding may still take it a hair below
	// zero for a constant channel.
	variance := total.Narrow(0, c, c).Div(n).Sub(mean.Mul(mean)).ClampMin(0)
	torch.NoGrad(func() {
		unbiased := variance.Detach().Mul(n.Div(n.SubScalar(1)))
		m.RunningMean.LerpInPlace(mean.Detach().To(m.RunningMean.DType()), m.Momentum)
		m.RunningVar.LerpInPlace(unbiased.To(m.RunningVar.DType()), m.Momentum)
	})
	perChannel := func(t *torch.Tensor) *torch.Tensor { return t.To(x.DType()).Reshape(1, c, 1, 1) }
	scale := perChannel(variance.AddScalar(m.Eps).Sqrt())
	y := x.Sub(perChannel(mean)).Div(scale)
	if m.Weight != nil {
		y = y.Mul(perChannel(m.Weight))
	}
	if m.Bias != nil {
		y = y.Add(perChannel(m.Bias))
	}
	return y
}
