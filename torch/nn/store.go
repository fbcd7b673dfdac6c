package nn

import (
	"fmt"
	"strings"

	"github.com/edema/edema/torch"
)

// Named is a tensor with its dotted state-dict key.
type Named struct {
	Name   string
	Tensor *torch.Tensor
}

// Module is anything with a forward pass from one tensor to another: a
// layer or a block of layers. Forward panics with a *torch.Error on bad
// input, as tensor operations do.
type Module interface {
	Forward(x *torch.Tensor) *torch.Tensor
}

// entry is a parameter or buffer that a module owns.
type entry struct {
	Named
	// zeroIfMissing marks a buffer that checkpoints of old PyTorch versions
	// lack (num_batches_tracked, added in PyTorch 0.4.1): a load that does
	// not provide it resets it to zero instead of failing, as PyTorch does.
	zeroIfMissing bool
}

// node is one module of the tree: the tensors it owns directly and its
// children, each in creation order.
type node struct {
	prefix   string // the dotted key prefix of the module, "" for the root
	params   []*entry
	buffers  []*entry
	children []*node
	names    map[string]*node // children by name
	local    map[string]bool  // names of the module's own tensors
	modules  []Module         // layers created at this path
}

func newNode(prefix string) *node {
	return &node{prefix: prefix, names: map[string]*node{}, local: map[string]bool{}}
}

func (n *node) key(name string) string {
	if n.prefix == "" {
		return name
	}
	return n.prefix + "." + name
}

// walk visits n and its descendants depth first, parents before children,
// children in creation order: the order of torch.nn.Module.modules().
func (n *node) walk(visit func(*node)) {
	visit(n)
	for _, c := range n.children {
		c.walk(visit)
	}
}

// Store owns the parameters and buffers of a network, and its train/eval
// mode. The zero value is not usable; call NewStore.
//
// A store is not safe for concurrent use while it changes (building,
// loading, moving, switching modes); forward passes of a network in a fixed
// mode may run from several goroutines.
type Store struct {
	root     *node
	training bool
	freed    bool
	// The layers of the evaluation fast path (fastpath.go): convolutions
	// with a batch norm folded in, transposed convolutions by phases.
	folds      []*Conv2d
	phased     []*ConvTranspose2d
	noFastPath bool
	// phasedTraining runs the transposed convolutions by phases with
	// autograd on as well (SetPhasedTraining).
	phasedTraining bool
}

// NewStore returns an empty store in training mode, the mode of a freshly
// built torch.nn.Module.
func NewStore() *Store {
	return &Store{root: newNode(""), training: true}
}

// Root is the path of the top-level module, whose keys have no prefix.
func (s *Store) Root() Path { return Path{store: s, node: s.root} }

// Path names a module inside a store. Layers are created at a path; their
// parameters and buffers get the path's name as key prefix.
type Path struct {
	store *Store
	node  *node
}

// Sub returns the path of the child module name, creating it on first use.
// The order in which children are first created is their state-dict order.
func (p Path) Sub(name string) Path {
	p.check("sub-module", name)
	if c, ok := p.node.names[name]; ok {
		return Path{store: p.store, node: c}
	}
	if p.node.local[name] {
		panic(&torch.Error{Op: "nn", Msg: fmt.Sprintf("%q is already a parameter or buffer", p.node.key(name))})
	}
	c := newNode(p.node.key(name))
	p.node.children = append(p.node.children, c)
	p.node.names[name] = c
	return Path{store: p.store, node: c}
}

// Name returns the dotted key prefix of the path ("" for the root).
func (p Path) Name() string { return p.node.prefix }

// Store returns the store the path belongs to.
func (p Path) Store() *Store { return p.store }

// Training reports the mode of the store: layers consult it on every
// forward pass, so Train and Eval on the store reach all of them.
func (p Path) Training() bool { return p.store.training }

// Param makes t a trainable parameter of the module at p: the store owns
// it from now on (no scope frees it) and autograd tracks it. It returns t.
func (p Path) Param(name string, t *torch.Tensor) *torch.Tensor {
	p.add(name, t, true, false)
	return t.SetRequiresGrad(true)
}

// Buffer makes t a buffer of the module at p: state that the state dict
// holds but optimizers do not train, such as running statistics. The store
// owns it from now on. It returns t.
func (p Path) Buffer(name string, t *torch.Tensor) *torch.Tensor {
	p.add(name, t, false, false)
	return t
}

func (p Path) add(name string, t *torch.Tensor, param, zeroIfMissing bool) {
	p.check("tensor", name)
	if _, ok := p.node.names[name]; ok || p.node.local[name] {
		panic(&torch.Error{Op: "nn", Msg: fmt.Sprintf("%q is already registered", p.node.key(name))})
	}
	t.Unscope()
	e := &entry{Named: Named{Name: p.node.key(name), Tensor: t}, zeroIfMissing: zeroIfMissing}
	if param {
		p.node.params = append(p.node.params, e)
	} else {
		p.node.buffers = append(p.node.buffers, e)
	}
	p.node.local[name] = true
}

func (p Path) check(what, name string) {
	if p.store.freed {
		panic(&torch.Error{Op: "nn", Msg: "use of a freed store"})
	}
	if name == "" || strings.Contains(name, ".") {
		panic(&torch.Error{Op: "nn", Msg: fmt.Sprintf("bad %s name %q under %q: names are non-empty and have no dots", what, name, p.node.prefix)})
	}
}

// register records a layer created at p, for Modules.
func (p Path) register(m Module) { p.node.modules = append(p.node.modules, m) }

// Modules returns the layers created at p and below it, parents before
// children, in creation order: the order of torch.nn.Module.modules(),
// which initialisation loops of PyTorch models follow.
func (p Path) Modules() []Module {
	var ms []Module
	p.node.walk(func(n *node) { ms = append(ms, n.modules...) })
	return ms
}

// Modules returns every layer of the store in the order of Path.Modules.
func (s *Store) Modules() []Module { return s.Root().Modules() }

// entries returns the store's tensors in state-dict order.
func (s *Store) entries(params, buffers bool) []*entry {
	var es []*entry
	s.root.walk(func(n *node) {
		if params {
			es = append(es, n.params...)
		}
		if buffers {
			es = append(es, n.buffers...)
		}
	})
	return es
}

func named(es []*entry) []Named {
	out := make([]Named, len(es))
	for i, e := range es {
		out[i] = e.Named
	}
	return out
}

// StateDict returns every parameter and buffer with its key, in PyTorch's
// state-dict order: for each module its own parameters, then its own
// buffers, then its children's entries, depth first in creation order.
// The tensors are the store's own, not copies: do not free them.
func (s *Store) StateDict() []Named { return named(s.entries(true, true)) }

// NamedParameters returns the parameters with their keys, in the order of
// torch.nn.Module.named_parameters.
func (s *Store) NamedParameters() []Named { return named(s.entries(true, false)) }

// Parameters returns the parameters, for an optimizer, in the order of
// torch.nn.Module.parameters.
func (s *Store) Parameters() []*torch.Tensor {
	es := s.entries(true, false)
	out := make([]*torch.Tensor, len(es))
	for i, e := range es {
		out[i] = e.Tensor
	}
	return out
}

// Lookup returns the parameter or buffer with the given key.
func (s *Store) Lookup(key string) (*torch.Tensor, bool) {
	for _, e := range s.entries(true, true) {
		if e.Name == key {
			return e.Tensor, true
		}
	}
	return nil, false
}

// NumParameters returns the number of trainable numbers: the elements of
// every parameter that requires grad.
func (s *Store) NumParameters() int64 {
	var n int64
	for _, e := range s.entries(true, false) {
		if e.Tensor.RequiresGrad() {
			n += e.Tensor.Numel()
		}
	}
	return n
}

// Train puts every layer in training mode (batch statistics, dropout).
func (s *Store) Train() { s.SetTraining(true) }

// Eval puts every layer in evaluation mode (running statistics, no
// dropout), with the evaluation fast path's tensors (fastpath.go).
func (s *Store) Eval() { s.SetTraining(false) }

// SetTraining switches to training mode (true) or evaluation mode (false).
func (s *Store) SetTraining(on bool) {
	if s.training == on {
		// Repeating a mode changes nothing: in particular, predictions
		// running in evaluation mode keep the fast path's tensors.
		return
	}
	s.training = on
	s.refreshFastPath()
}

// Training reports whether the store is in training mode.
func (s *Store) Training() bool { return s.training }

// Device returns the device of the store's tensors (the CPU when empty).
func (s *Store) Device() torch.Device {
	if es := s.entries(true, true); len(es) > 0 {
		return es[0].Tensor.Device()
	}
	return torch.CPU
}

// DType returns the dtype of the store's floating-point tensors (float32
// when there are none).
func (s *Store) DType() torch.DType {
	for _, e := range s.entries(true, true) {
		if d := e.Tensor.DType(); d.IsFloatingPoint() {
			return d
		}
	}
	return torch.Float32
}

// To moves every parameter, buffer and gradient to device d in place, as
// torch.nn.Module.to(device) does: the *torch.Tensor values stay the same,
// so layers and optimizers that hold them stay valid. If moving fails
// part-way (out of GPU memory), the tensors moved so far stay moved.
func (s *Store) To(d torch.Device) (err error) {
	defer torch.Recover(&err)
	if err := torch.CheckDevice(d); err != nil {
		return err
	}
	s.convert(func(t *torch.Tensor) bool { return t.Device() != d }, func(t *torch.Tensor) *torch.Tensor {
		return t.ToDevice(d)
	})
	s.refreshFastPath()
	return nil
}

// ToDType converts every floating-point parameter, buffer and gradient to
// dtype in place, as torch.nn.Module.to(dtype) does; integer buffers such
// as batch counters keep their dtype.
func (s *Store) ToDType(dtype torch.DType) (err error) {
	defer torch.Recover(&err)
	if !dtype.IsFloatingPoint() {
		return fmt.Errorf("nn: cannot convert a network to %s: only floating-point dtypes", dtype)
	}
	s.convert(func(t *torch.Tensor) bool {
		d := t.DType()
		return d.IsFloatingPoint() && d != dtype
	}, func(t *torch.Tensor) *torch.Tensor { return t.To(dtype) })
	s.refreshFastPath()
	return nil
}

// SetMemoryFormat lays out every 4-D parameter and buffer (and gradient)
// in format f in place, as module.to(memory_format=f) does: with
// torch.ChannelsLast weights and inputs, convolutions run on channels-last
// data throughout. The values, the shapes and the state dict stay the same.
func (s *Store) SetMemoryFormat(f torch.MemoryFormat) (err error) {
	defer torch.Recover(&err)
	s.convert(func(t *torch.Tensor) bool { return t.Dim() == 4 && !t.IsContiguousAs(f) },
		func(t *torch.Tensor) *torch.Tensor { return t.ContiguousAs(f) })
	s.refreshFastPath()
	return nil
}

func (s *Store) convert(needed func(*torch.Tensor) bool, to func(*torch.Tensor) *torch.Tensor) {
	if s.freed {
		panic(&torch.Error{Op: "nn", Msg: "use of a freed store"})
	}
	for _, e := range s.entries(true, true) {
		torch.Scoped(func(*torch.Scope) {
			t := e.Tensor
			if !needed(t) {
				return
			}
			torch.NoGrad(func() {
				if g := t.Grad(); g != nil {
					g.SetData(to(g))
				}
				t.SetData(to(t))
			})
		})
	}
}

// ZeroGrad drops the gradients of all parameters (PyTorch's
// zero_grad(set_to_none=True)).
func (s *Store) ZeroGrad() {
	for _, e := range s.entries(true, false) {
		e.Tensor.ZeroGrad()
	}
}

// Free releases every tensor of the store. Freeing twice is harmless;
// using the layers afterwards panics with a *torch.Error.
func (s *Store) Free() {
	if s.freed {
		return
	}
	for _, e := range s.entries(true, true) {
		e.Tensor.Free()
	}
	s.freed = true
	s.refreshFastPath()
}
