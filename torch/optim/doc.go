// Package optim holds the optimizers that train the edema networks: Adam
// (with L2 weight decay and optional AMSGrad) and SGD (with momentum,
// dampening, Nesterov momentum and L2 weight decay), and the gradient
// scaler of float16 training (GradScaler, torch.amp.GradScaler's rule).
//
// Each optimizer is the single-tensor implementation of torch.optim in
// PyTorch 1.13, the project's reference, written in Go on top of the torch
// package's in-place tensor operations: the same operations in the same
// order, so that parameters follow torch.optim's to the last bits of float32
// rounding. Where later PyTorch releases changed the arithmetic, the
// comments say so; this package stays with 1.13.
//
// # Parameters and groups
//
// An optimizer updates leaf tensors (those made with SetRequiresGrad) from
// the gradients that backward passes accumulate in them. Parameters come as
// one list with one set of options, or as groups with their own options,
// like torch.optim's param groups. Step skips parameters without a gradient,
// runs without autograd and frees its temporaries; ZeroGrad drops the
// gradients (PyTorch's zero_grad(set_to_none=True)). The learning rate can
// change between steps, for all groups or per group, as LR schedules do.
//
// # State dicts
//
// StateDict and LoadStateDict export and import the optimizer's state with
// the structure of PyTorch's optimizer.state_dict(), so that a checkpoint
// can hold it as torch.save would and resume training in either framework:
//
//	{'state': {0: {'step': tensor(5.), 'exp_avg': tensor(...), 'exp_avg_sq': tensor(...)}, ...},
//	 'param_groups': [{'lr': 0.001, 'betas': (0.9, 0.999), ..., 'params': [0, 1, ...]}]}
//
// The tree is made of these Go values, standing for the Python ones:
//
//	dict (insertion-ordered)  *Dict, with string or int64 keys
//	list                      []any
//	tuple                     Tuple
//	int                       int64
//	float                     float64
//	bool                      bool
//	None                      nil
//	torch.Tensor              *torch.Tensor
//
// LoadStateDict also accepts what PyTorch 1.13 writes (and later releases,
// as far as their optimizers compute the same thing), with an error that
// names the entry when the state does not fit the optimizer's parameters.
package optim
