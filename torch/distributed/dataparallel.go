package distributed

import (
	"fmt"

	"github.com/edema/edema/torch"
)

// DefaultBucketBytes is DistributedDataParallel's bucket_cap_mb, 25 MB.
const DefaultBucketBytes = 25 << 20

// DataParallel keeps the replicas of a network identical across a group,
// with the semantics of PyTorch's DistributedDataParallel: at the start,
// rank 0's parameters and buffers are copied to every rank; before each
// forward pass, rank 0's buffers (batch-normalisation statistics) are copied
// (DDP's broadcast_buffers); after each backward pass, the gradients are
// averaged over the ranks, so that every rank's optimizer takes the same
// step. Each rank normalises its own batch, as DDP does without
// SyncBatchNorm.
//
// The gradients travel in buckets of at most DefaultBucketBytes (or one
// parameter, when it is larger), filled in the reverse order of the
// parameters, roughly the order in which backward produces them, as DDP's
// rebuilt buckets are (without its small first bucket); each is flattened
// into one tensor, all-reduced while the next bucket is prepared, and
// divided by the world size after the sum (DDP scales before it).
type DataParallel struct {
	g       *Group
	params  []*torch.Tensor
	buffers []*torch.Tensor
	buckets [][]int // parameter indices of each bucket
}

// NewDataParallel makes the replicas of params and buffers identical to
// rank 0's and returns the handle that keeps them so. bucketBytes ≤ 0
// means DefaultBucketBytes.
func NewDataParallel(g *Group, params, buffers []*torch.Tensor, bucketBytes int64) (*DataParallel, error) {
	if bucketBytes <= 0 {
		bucketBytes = DefaultBucketBytes
	}
	d := &DataParallel{g: g, params: params, buffers: buffers}
	var bucket []int
	var size int64
	for i := len(params) - 1; i >= 0; i-- {
		n := params[i].Numel() * int64(params[i].DType().Size())
		if len(bucket) > 0 && size+n > bucketBytes {
			d.buckets = append(d.buckets, bucket)
			bucket, size = nil, 0
		}
		bucket = append(bucket, i)
		size += n
	}
	if len(bucket) > 0 {
		d.buckets = append(d.buckets, bucket)
	}
	for _, t := range append(append([]*torch.Tensor{}, params...), buffers...) {
		if err := d.broadcast(t); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Buckets is the number of gradient buckets.
func (d *DataParallel) Buckets() int { return len(d.buckets) }

// broadcast copies rank 0's t into t, through a view that autograd does
// not track (a parameter is a leaf that requires its gradient).
func (d *DataParallel) broadcast(t *torch.Tensor) (err error) {
	var v *torch.Tensor
	if err := torch.Try(func() { v = t.Detach() }); err != nil {
		return d.g.error("broadcast", err.Error())
	}
	return d.g.Broadcast(0, v)
}

// SyncBuffers copies rank 0's buffers to every rank; call it before each
// training forward pass.
func (d *DataParallel) SyncBuffers() error {
	for _, b := range d.buffers {
		if err := d.broadcast(b); err != nil {
			return err
		}
	}
	return nil
}

// SyncGradients replaces each parameter's gradient by its average over
// the ranks; call it between the backward pass and the optimizer's step.
// Every parameter must have a gradient. A failure leaves the gradients as
// they are partly averaged; the job cannot go on.
func (d *DataParallel) SyncGradients() (err error) {
	defer torch.Recover(&err)
	type inflight struct {
		w     *Work
		flat  *torch.Tensor
		grads []*torch.Tensor
	}
	started := make([]inflight, 0, len(d.buckets))
	defer func() {
		// After a failure, the buckets still in flight are dropped, not
		// waited for (each could take the whole timeout); c10d keeps its
		// own references to their tensors.
		for _, f := range started {
			f.w.drop()
		}
	}()
	for _, bucket := range d.buckets {
		grads := make([]*torch.Tensor, len(bucket))
		flats := make([]*torch.Tensor, len(bucket))
		for k, i := range bucket {
			g := d.params[i].Grad()
			if g == nil {
				return d.g.error("all-reduce", fmt.Sprintf("parameter %d has no gradient: every parameter must take part in the loss", i))
			}
			grads[k], flats[k] = g, g.Reshape(-1)
		}
		flat := torch.Cat(flats, 0)
		w, err := d.g.AllReduceAsync(Average, flat)
		if err != nil {
			return err
		}
		started = append(started, inflight{w, flat, grads})
	}
	for _, f := range started {
		if err := f.w.Wait(); err != nil {
			return err
		}
		at := int64(0)
		for _, g := range f.grads {
			n := g.Numel()
			g.CopyFrom(f.flat.Narrow(0, at, n).View(g.Shape()...))
			at += n
		}
	}
	return nil
}
