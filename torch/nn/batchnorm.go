package nn

import (
	"fmt"

	"github.com/edema/edema/torch"
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
	m.Weight = p.Param("weight", torch.Ones(shape, torch.Float32CPU))
	m.Bias = p.Param("bias", torch.Zeros(shape, torch.Float32CPU))
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
	if shape := x.Shape(); training && shape[0]*shape[2]*shape[3] == 1 {
		// PyTorch checks this in Python (F.batch_norm), not in libtorch:
		// the batch variance of a single value is undefined.
		panic(&torch.Error{Op: "batch_norm", Msg: fmt.Sprintf("expected more than 1 value per channel when training, got input size %v", shape)})
	}
	y := torch.BatchNorm(x, m.Weight, m.Bias, m.RunningMean, m.RunningVar, training, m.Momentum, m.Eps)
	if training {
		m.NumBatchesTracked.AddScalarInPlace(1)
	}
	return y
}
