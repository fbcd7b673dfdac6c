package serve

import (
	"context"
	"sync"
	"time"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
)

// A batcher runs the slices of concurrent requests through the predictor
// together: a worker takes the oldest waiting slice, waits up to maxDelay
// for more of the same size until it has maxBatch, and runs them in one
// forward pass. libtorch parallelises inside each pass; a second worker
// lets one pass fill the cores where another runs an operation that
// parallelises poorly.

// predictFunc runs n normalised slices of h×w (n×3×h×w values) in one pass.
type predictFunc func(images []float32, n, h, w int) (*models.Prediction, error)

// batch is the slices of one request, which the batcher may spread over
// several passes and share with other requests.
type batch struct {
	ctx        context.Context
	n, h, w    int
	images     []float32 // n×3×h×w normalised
	labels     []uint8   // n×h×w, filled by the passes
	detections []float32 // n×3

	mu      sync.Mutex
	pending int // slices not yet predicted
	err     error
	done    chan struct{} // closed when pending reaches 0 or err is set
}

func newBatch(ctx context.Context, images []float32, n, h, w int) *batch {
	return &batch{
		ctx: ctx, n: n, h: h, w: w, images: images,
		labels:     make([]uint8, n*h*w),
		detections: make([]float32, n*oct.NumLesions),
		pending:    n,
		done:       make(chan struct{}),
	}
}

// finish records that count slices are done, with err if they failed.
func (b *batch) finish(count int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == 0 {
		return
	}
	if err != nil && b.err == nil {
		b.err = err
		b.pending = 0
		close(b.done)
		return
	}
	b.pending -= count
	if b.pending == 0 {
		close(b.done)
	}
}

// failed tells whether the batch has an error already, so that its other
// slices need not run.
func (b *batch) failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err != nil
}

// slice is one slice of a batch waiting for a pass.
type slice struct {
	b *batch
	i int
}

type batcher struct {
	predict  predictFunc
	maxBatch int
	maxDelay time.Duration
	observe  func(size int, took time.Duration) // after every pass
	// queued is told the slices waiting on every change, under mu, so
	// that the last value it sees is the queue's length and not that of
	// an older change published late.
	queued func(n int)

	mu      sync.Mutex
	queue   []slice
	wake    chan struct{} // a token when the queue gained slices
	closed  bool
	closing chan struct{} // closed by close
	workers sync.WaitGroup
}

func newBatcher(predict predictFunc, maxBatch int, maxDelay time.Duration, workers int, observe func(int, time.Duration), queued func(int)) *batcher {
	b := &batcher{
		predict: predict, maxBatch: maxBatch, maxDelay: maxDelay, observe: observe, queued: queued,
		wake: make(chan struct{}, 1), closing: make(chan struct{}),
	}
	for range workers {
		b.workers.Go(b.run)
	}
	return b
}

// signal wakes a waiting worker, if none is woken already.
func (b *batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// submit queues every slice of bt. It returns false once the batcher is
// closed.
func (b *batcher) submit(bt *batch) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	for i := range bt.n {
		b.queue = append(b.queue, slice{bt, i})
	}
	b.queued(len(b.queue))
	b.mu.Unlock()
	b.signal()
	return true
}

// close stops the batcher once the slices already queued have run.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.closing)
	}
	b.mu.Unlock()
	b.workers.Wait()
}

// take removes from the queue up to limit slices of the size of the oldest
// one, oldest first, leaving the others in their order. It returns nil
// when the queue is empty.
func (b *batcher) take(limit, h, w int) []slice {
	var got, rest []slice
	for _, s := range b.queue {
		if len(got) < limit && (h == 0 || s.b.h == h && s.b.w == w) {
			if h == 0 {
				h, w = s.b.h, s.b.w
			}
			got = append(got, s)
		} else {
			rest = append(rest, s)
		}
	}
	b.queue = rest
	return got
}

func (b *batcher) run() {
	for {
		b.mu.Lock()
		group := b.take(b.maxBatch, 0, 0)
		closed := b.closed
		b.mu.Unlock()
		if len(group) == 0 {
			if closed {
				return
			}
			select {
			case <-b.wake:
			case <-b.closing:
			}
			continue
		}
		if len(group) < b.maxBatch && b.maxDelay > 0 {
			group = b.gather(group)
		}
		b.mu.Lock()
		n := len(b.queue)
		b.queued(n)
		b.mu.Unlock()
		if n > 0 {
			b.signal() // another worker may take the rest meanwhile
		}
		b.runPass(group)
	}
}

// gather waits up to maxDelay for slices of the group's size until it
// holds maxBatch.
func (b *batcher) gather(group []slice) []slice {
	h, w := group[0].b.h, group[0].b.w
	timer := time.NewTimer(b.maxDelay)
	defer timer.Stop()
	for len(group) < b.maxBatch {
		select {
		case <-timer.C:
			return group
		case <-b.closing:
			return group
		case <-b.wake:
			b.mu.Lock()
			group = append(group, b.take(b.maxBatch-len(group), h, w)...)
			closed := b.closed
			b.mu.Unlock()
			if closed {
				return group
			}
		}
	}
	return group
}

// runPass predicts the slices of group in one forward pass and hands each
// its outputs. Slices of requests that failed or went away are left out.
func (b *batcher) runPass(group []slice) {
	live := group[:0]
	for _, s := range group {
		if err := s.b.ctx.Err(); err != nil {
			s.b.finish(1, err)
			continue
		}
		if s.b.failed() {
			continue
		}
		live = append(live, s)
	}
	if len(live) == 0 {
		return
	}
	h, w := live[0].b.h, live[0].b.w
	size := 3 * h * w
	images := make([]float32, 0, len(live)*size)
	for _, s := range live {
		images = append(images, s.b.images[s.i*size:(s.i+1)*size]...)
	}
	start := time.Now()
	pred, err := b.predict(images, len(live), h, w)
	b.observe(len(live), time.Since(start))
	area := h * w
	for k, s := range live {
		if err == nil {
			copy(s.b.labels[s.i*area:(s.i+1)*area], pred.Labels[k*area:(k+1)*area])
			copy(s.b.detections[s.i*oct.NumLesions:(s.i+1)*oct.NumLesions], pred.Detections[k*oct.NumLesions:(k+1)*oct.NumLesions])
		}
		s.b.finish(1, err)
	}
}
