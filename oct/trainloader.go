package oct

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"iter"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// TrainOptions configures a TrainLoader.
type TrainOptions struct {
	BatchSize int    // slices per batch; the last incomplete batch is dropped
	Workers   int    // goroutines decoding slices; all CPUs when ≤ 0
	Prefetch  int    // batches decoded ahead of the consumer; 2 when ≤ 0
	Seed      uint64 // seeds the order, flips and augmentation of every epoch
	NoFlip    bool   // turn off the random horizontal flip
	// Augment is the optional geometry augmentation applied before the
	// flip; its output size is the batches' size.
	Augment Augment
	// Rank and World make the loader one shard of a data-parallel job of
	// World processes, as PyTorch's DistributedSampler does: each epoch's
	// order is padded to a multiple of World by repeating its start, and
	// this process takes every World-th position from Rank. A slice keeps
	// the flip and augmentation of its position in the whole order, so the
	// shards together see what one process sees. World ≤ 1 is the whole.
	Rank, World int
}

// TrainLoader yields the training slices in shuffled batches, one epoch at a
// time, with the original's augmentation: the optional geometry steps of
// TrainOptions.Augment, then each slice and its label mirrored left to
// right together with probability 1/2.
//
// The order, the flips and the augmentation draws of an epoch depend only
// on the seed, the epoch number and the position in the epoch, never on
// the number of workers or on earlier epochs, so a run resumed at epoch e,
// or inside it, sees what an uninterrupted run would have seen.
type TrainLoader struct {
	dataDir string
	samples []Sample
	norm    *Normalizer
	opt     TrainOptions
	w, h    int // size of the slices read
	bw, bh  int // size of the slices of a batch, after augmentation
}

// NewTrainLoader returns a loader of samples (paths relative to dataDir)
// normalised with info. Every slice must have the size of the first one;
// the batches' size (the slices' or that of the augmentation) must be a
// multiple of 16 in both directions, as the networks need.
func NewTrainLoader(dataDir string, samples []Sample, info Info, opt TrainOptions) (*TrainLoader, error) {
	if opt.BatchSize <= 0 {
		return nil, fmt.Errorf("batch size %d must be positive", opt.BatchSize)
	}
	opt.World = max(opt.World, 1)
	if opt.Rank < 0 || opt.Rank >= opt.World {
		return nil, fmt.Errorf("rank %d is not in [0, %d)", opt.Rank, opt.World)
	}
	if shard := ShardLen(len(samples), opt.World); shard < opt.BatchSize {
		if opt.World > 1 {
			return nil, fmt.Errorf("%d training slices split over %d processes (%d each) do not fill one batch of %d",
				len(samples), opt.World, shard, opt.BatchSize)
		}
		return nil, fmt.Errorf("%d training slices do not fill one batch of %d", len(samples), opt.BatchSize)
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.NumCPU()
	}
	if opt.Prefetch <= 0 {
		opt.Prefetch = 2
	}
	norm, err := NewNormalizer(info)
	if err != nil {
		return nil, err
	}
	first := inData(dataDir, samples[0].Image)
	w, h, err := pngSize(first)
	if err != nil {
		return nil, err
	}
	bw, bh, err := opt.Augment.OutputSize(w, h)
	if err != nil {
		return nil, err
	}
	if opt.Augment.Active() {
		if bw%16 != 0 || bh%16 != 0 {
			return nil, fmt.Errorf("augmented slices are %d×%d (width×height); the networks need multiples of 16", bw, bh)
		}
	} else if err := checkMultipleOf16(first, w, h); err != nil {
		return nil, err
	}
	return &TrainLoader{dataDir: dataDir, samples: samples, norm: norm, opt: opt, w: w, h: h, bw: bw, bh: bh}, nil
}

// pngSize reads the size of a PNG from its header.
func pngSize(path string) (w, h int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	return cfg.Width, cfg.Height, nil
}

func checkMultipleOf16(path string, w, h int) error {
	if w%16 != 0 || h%16 != 0 || w == 0 || h == 0 {
		return fmt.Errorf("%s: image is %d×%d (width×height); the networks need multiples of 16", path, w, h)
	}
	return nil
}

// Size is the width and height of every slice of a batch.
func (l *TrainLoader) Size() (w, h int) { return l.bw, l.bh }

// Len is the number of training slices (of all shards).
func (l *TrainLoader) Len() int { return len(l.samples) }

// BatchesPerEpoch is the number of full batches of an epoch (of this
// shard).
func (l *TrainLoader) BatchesPerEpoch() int {
	return ShardLen(len(l.samples), l.opt.World) / l.opt.BatchSize
}

// ShardLen is the number of positions of each of world (≥ 1) shards of n
// slices: DistributedSampler's num_samples, ceil(n / world).
func ShardLen(n, world int) int { return (n + world - 1) / world }

// Plan returns the sample order of an epoch and whether each position of
// that order is flipped. It depends only on the seed and the epoch.
func (l *TrainLoader) Plan(epoch int) (order []int, flips []bool) {
	rng := rand.New(rand.NewPCG(l.opt.Seed, 0x9e3779b97f4a7c15^uint64(epoch)))
	order = rng.Perm(len(l.samples))
	flips = make([]bool, len(order))
	for i := range flips {
		flips[i] = rng.Float64() < 0.5 && !l.opt.NoFlip
	}
	return order, flips
}

// pending is a batch being decoded by the workers.
type pending struct {
	batch     *Batch
	remaining atomic.Int32
	done      chan struct{}
	errOnce   sync.Once
	err       error
}

func (p *pending) finish(err error) {
	if err != nil {
		p.errOnce.Do(func() { p.err = err })
	}
	if p.remaining.Add(-1) == 0 {
		close(p.done)
	}
}

type decodeJob struct {
	p          *pending
	slot       int
	idx        int
	flip       bool
	epoch, pos int // where the slice falls, which seeds its augmentation
}

// Epoch yields the batches of an epoch in order. Workers decode up to
// Prefetch batches ahead of the loop's body. The sequence ends early with
// an error (a file that cannot be read, or ctx's error once ctx is done);
// breaking out of the loop, or cancelling ctx, stops and waits for the
// workers, so nothing is left running either way.
//
//	for b, err := range loader.Epoch(ctx, e) {
//		if err != nil {
//			return err
//		}
//		…
//	}
func (l *TrainLoader) Epoch(ctx context.Context, epoch int) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		order, flips := l.Plan(epoch)
		bs, nb := l.opt.BatchSize, l.BatchesPerEpoch()

		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()

		jobs := make(chan decodeJob)
		ready := make(chan *pending, l.opt.Prefetch)
		for range l.opt.Workers {
			wg.Go(func() {
				for j := range jobs {
					j.p.finish(l.decode(ctx, j))
				}
			})
		}
		wg.Go(func() {
			defer close(jobs)
			defer close(ready)
			for b := range nb {
				p := &pending{done: make(chan struct{})}
				p.remaining.Store(int32(bs))
				// Queue the batch before it exists, so that at most
				// Prefetch batches wait for the consumer.
				select {
				case ready <- p:
				case <-ctx.Done():
					return
				}
				p.batch = newBatch(bs, l.bh, l.bw, true)
				for k := range bs {
					// The shard's position b*bs+k is this one of the
					// whole order, padded by wrapping to its start.
					pos := (l.opt.Rank + (b*bs+k)*l.opt.World) % len(order)
					select {
					case jobs <- decodeJob{p: p, slot: k, idx: order[pos], flip: flips[pos], epoch: epoch, pos: pos}:
					case <-ctx.Done():
						return
					}
				}
			}
		})

		delivered := 0
		for p := range ready {
			select {
			case <-p.done:
			case <-ctx.Done():
				yield(nil, ctx.Err())
				return
			}
			if p.err != nil {
				yield(nil, p.err)
				return
			}
			delivered++
			if !yield(p.batch, nil) {
				return
			}
		}
		if delivered < nb {
			err := ctx.Err()
			if err == nil {
				err = errors.New("training loader stopped early")
			}
			yield(nil, err)
		}
	}
}

// decode reads one sample into its slot of a batch.
func (l *TrainLoader) decode(ctx context.Context, j decodeJob) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := l.samples[j.idx]
	stack, err := ReadStack(inData(l.dataDir, s.Image), l.w, l.h)
	if err != nil {
		return err
	}
	label, err := ReadLabel(inData(l.dataDir, s.Label), l.w, l.h)
	if err != nil {
		return err
	}
	if l.opt.Augment.Active() {
		stack, label = l.opt.Augment.apply(augmentRand(l.opt.Seed, j.epoch, j.pos), stack, label)
		if stack.W != l.bw || stack.H != l.bh || label.W != l.bw || label.H != l.bh {
			return fmt.Errorf("%s: %w", s.Image, errAugmentSize)
		}
	}
	j.p.batch.setSlice(j.slot, l.norm, stack, label, j.flip, s.Image)
	return nil
}

// augmentRand is the generator of the augmentation draws of the slice at
// position pos of an epoch: a stream of its own, apart from Plan's.
func augmentRand(seed uint64, epoch, pos int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0xa076_1d64_78bd_642f, uint64(epoch)<<32|uint64(uint32(pos))))
}
