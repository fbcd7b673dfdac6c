package models

import (
	"fmt"
	"strings"

	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
)

// Network is a network's forward pass: segmentation log-probabilities
// N×4×H×W and detection probabilities N×3 of an input N×3×H×W, seg nil
// for a network that only detects. It panics with a *torch.Error on bad
// input; Model.Forward checks the input first and returns errors.
type Network interface {
	Forward(x *torch.Tensor) (seg, det *torch.Tensor)
}

// The names of the networks, as the original's --name flag spells them.
const (
	NameUNet              = "unet"
	NameUNetNested        = "unet_nested"
	NameUNetNestedDilated = "unet_nested_dilated"
)

var builders = []struct {
	name    string
	outputs oct.Tasks
	build   func(p nn.Path) Network
}{
	{NameUNet, oct.BothTasks, func(p nn.Path) Network { return NewUNet(p) }},
	{NameUNetNested, oct.BothTasks, func(p nn.Path) Network { return NewUNetNested(p, false) }},
	{NameUNetNestedDilated, oct.BothTasks, func(p nn.Path) Network { return NewUNetNested(p, true) }},
	{NameResNet18, oct.Detection, func(p nn.Path) Network { return NewResNet18(p) }},
}

// Outputs returns the tasks whose outputs the network called name has:
// both for the segmentation networks, detection for ResNet-18; 0 for an
// unknown name.
func Outputs(name string) oct.Tasks {
	for _, b := range builders {
		if b.name == name {
			return b.outputs
		}
	}
	return 0
}

// Names returns the names of the networks New builds.
func Names() []string {
	names := make([]string, len(builders))
	for i, b := range builders {
		names[i] = b.name
	}
	return names
}

// DivisibleBy is what the height and width of an input must be multiples
// of: the networks halve them four times and double them back.
const DivisibleBy = 16

// Model is one of the networks with the store that owns its weights. It is
// in training mode when built, like a PyTorch module.
type Model struct {
	name  string
	store *nn.Store
	net   Network
	tasks oct.Tasks
	// format is the memory format of the weights and of each pass's input
	// (SetMemoryFormat).
	format torch.MemoryFormat
}

// New builds the network called name (see Names) on the CPU in float32,
// initialised as the original initialises it (docs/ORIGINAL.md, "Networks"). Seed libtorch with
// torch.ManualSeed first for reproducible weights.
func New(name string) (m *Model, err error) {
	for _, b := range builders {
		if b.name != name {
			continue
		}
		store := nn.NewStore()
		defer func() {
			if err != nil {
				store.Free()
			}
		}()
		defer torch.Recover(&err)
		net := b.build(store.Root())
		// Evaluation folds each batch norm into the convolution before it
		// (nn.Sequential.FoldBatchNorm): the inference fast path.
		for _, m := range store.Modules() {
			if seq, ok := m.(*nn.Sequential); ok {
				seq.FoldBatchNorm()
			}
		}
		return &Model{name: name, store: store, net: net, tasks: b.outputs}, nil
	}
	return nil, fmt.Errorf("unknown network %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Name returns the network's name.
func (m *Model) Name() string { return m.name }

// Tasks returns the tasks the network does: those of its outputs (see
// Outputs) that it was trained for. A segmentation network trained without
// the detection loss has a detection output that means nothing; its
// checkpoint says so (see CheckpointTasks) and prediction leaves it out.
func (m *Model) Tasks() oct.Tasks { return m.tasks }

// SetTasks restricts the network to tasks, which must be some of its
// outputs.
func (m *Model) SetTasks(tasks oct.Tasks) error {
	outputs := Outputs(m.name)
	if tasks == 0 || !outputs.Has(tasks) {
		return fmt.Errorf("%s cannot do %s: its outputs are for %s", m.name, tasks, outputs)
	}
	m.tasks = tasks
	return nil
}

// Network returns the network itself, whose layers are exported fields.
func (m *Model) Network() Network { return m.net }

// Store returns the store that owns the network's parameters and buffers.
func (m *Model) Store() *nn.Store { return m.store }

// Forward runs the network on x (N×3×H×W, H and W multiples of 16, on the
// network's device and dtype) and returns the segmentation
// log-probabilities N×4×H×W (nil for ResNet-18, which only detects) and
// the detection probabilities N×3. The caller owns both results. In
// training mode batch normalisation updates
// its running statistics and autograd records the pass.
func (m *Model) Forward(x *torch.Tensor) (seg, det *torch.Tensor, err error) {
	defer torch.Recover(&err)
	if err := m.CheckInput(x); err != nil {
		return nil, nil, err
	}
	// The intermediate activations' handles go when the pass ends; autograd
	// keeps what the backward pass needs.
	s := torch.NewScope()
	defer s.Close()
	if m.format != torch.ContiguousFormat {
		x = x.ContiguousAs(m.format)
	}
	seg, det = m.net.Forward(x)
	if seg != nil {
		s.Keep(seg)
	}
	s.Keep(det)
	return seg, det, nil
}

// CheckInput returns an error that names the problem when x is not a
// valid input: N×3×H×W with N ≥ 1 and H, W positive multiples of 16, on
// the network's device and of its dtype.
func (m *Model) CheckInput(x *torch.Tensor) (err error) {
	defer torch.Recover(&err)
	if x == nil || x.IsFreed() {
		return fmt.Errorf("%s: no input tensor (nil or freed)", m.name)
	}
	shape := x.Shape()
	if len(shape) != 4 {
		return fmt.Errorf("%s: input has shape %v, want N×%d×H×W", m.name, shape, inChannels)
	}
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	switch {
	case n < 1:
		return fmt.Errorf("%s: input batch is empty", m.name)
	case c != inChannels:
		return fmt.Errorf("%s: input has %d channels, want %d (the slice and its two neighbours)", m.name, c, inChannels)
	case h <= 0 || w <= 0 || h%DivisibleBy != 0 || w%DivisibleBy != 0:
		return fmt.Errorf("%s: input height %d and width %d must be positive multiples of %d", m.name, h, w, DivisibleBy)
	}
	if got, want := x.DType(), m.store.DType(); got != want {
		return fmt.Errorf("%s: input is %s, the network %s", m.name, got, want)
	}
	if got, want := x.Device(), m.store.Device(); got != want {
		return fmt.Errorf("%s: input is on %s, the network on %s", m.name, got, want)
	}
	return nil
}

// Train puts the network in training mode.
func (m *Model) Train() { m.store.Train() }

// Eval puts the network in evaluation mode.
func (m *Model) Eval() { m.store.Eval() }

// Training reports whether the network is in training mode.
func (m *Model) Training() bool { return m.store.Training() }

// StateDict returns the parameters and buffers in PyTorch's order (see
// nn.Store.StateDict); the tensors are the network's own.
func (m *Model) StateDict() []nn.Named { return m.store.StateDict() }

// LoadStateDict copies sd into the network (see nn.Store.LoadStateDict).
func (m *Model) LoadStateDict(sd []nn.Named, strict bool) error {
	if err := m.store.LoadStateDict(sd, strict); err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	return nil
}

// Parameters returns the trainable tensors, for an optimizer.
func (m *Model) Parameters() []*torch.Tensor { return m.store.Parameters() }

// NumParameters returns the number of trainable numbers.
func (m *Model) NumParameters() int64 { return m.store.NumParameters() }

// To moves the network to device d, keeping its tensors' identities.
func (m *Model) To(d torch.Device) error { return m.store.To(d) }

// ToDType converts the network's floating-point tensors to dtype, keeping
// their identities; inputs must then have that dtype.
func (m *Model) ToDType(dtype torch.DType) error { return m.store.ToDType(dtype) }

// SetMemoryFormat lays the network's weights out in format f and runs
// every later pass on its input laid out so (torch.ChannelsLast: N×H×W×C
// in memory, which oneDNN's and cuDNN's convolutions read directly; see
// docs/BENCHMARKS.md for when it pays). Outputs keep their shapes; the
// state dict and checkpoints are unchanged.
func (m *Model) SetMemoryFormat(f torch.MemoryFormat) error {
	if err := m.store.SetMemoryFormat(f); err != nil {
		return err
	}
	m.format = f
	return nil
}

// MemoryFormat returns the format SetMemoryFormat set.
func (m *Model) MemoryFormat() torch.MemoryFormat { return m.format }

// Device returns the device the network is on.
func (m *Model) Device() torch.Device { return m.store.Device() }

// Free releases the network's tensors. Freeing twice is harmless.
func (m *Model) Free() { m.store.Free() }
