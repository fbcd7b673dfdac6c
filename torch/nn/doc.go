// Package nn builds neural networks on package torch the way PyTorch's
// torch.nn does, so that a network written in Go has exactly the state dict
// of its PyTorch counterpart.
//
// A [Store] owns every parameter and buffer of a network together with its
// train/eval mode. Layers are created at a [Path] inside the store, and a
// path's dotted name is the prefix of their state-dict keys, so PyTorch's
// keys fall out of construction rather than reflection:
//
//	store := nn.NewStore()
//	root := store.Root()
//	conv := nn.NewConv2d(root.Sub("conv1").Sub("0"), 3, 16, nn.Conv2dConfig{Kernel: 3, Padding: 1})
//	// conv1.0.weight, conv1.0.bias
//
// The store keeps PyTorch's module tree: [Store.StateDict] lists, for each
// module, its own parameters, then its own buffers, then its children, in
// the order they were created, as torch.nn.Module.state_dict does. Layers
// initialise their parameters with PyTorch's reset_parameters formulas in
// PyTorch's order, so the same torch.ManualSeed gives the same weights as
// torch.manual_seed and the same torch.nn constructors in Python.
//
// Checkpoints hold tensors as bytes on the host, in package torch/pth's
// types. [HostStateDict] and [NamedFromHost] copy a state dict across, and
// [OptimizerStateToHost] and [OptimizerStateFromHost] an optimizer's
// state dict, so that saving and loading go one way for every caller.
//
// Layers follow package torch's conventions: Forward panics with a
// *torch.Error on bad input, and error-returning APIs on top recover it.
// Tensors that a store owns are released by [Store.Free], never by a scope.
package nn
