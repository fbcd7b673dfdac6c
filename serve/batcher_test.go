package serve

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edema/edema/models"
)

// TestQueuedGaugeEndsAtTheQueueLength submits a second request while the
// worker that took the first is still publishing the emptied queue,
// slowly: the last length published must be the one slice left waiting,
// not the worker's older change arriving late.
func TestQueuedGaugeEndsAtTheQueueLength(t *testing.T) {
	const h, w = 2, 2
	entered, gate := make(chan struct{}, 2), make(chan struct{})
	predict := func(images []float32, n, h, w int) (*models.Prediction, error) {
		entered <- struct{}{}
		<-gate
		return &models.Prediction{Slices: n, H: h, W: w, Labels: make([]uint8, n*h*w), Detections: make([]float32, n*3)}, nil
	}
	var published atomic.Int64
	emptied := make(chan struct{}, 1)
	queued := func(n int) {
		if n == 0 {
			select {
			case emptied <- struct{}{}:
				time.Sleep(50 * time.Millisecond)
			default:
			}
		}
		published.Store(int64(n))
	}
	b := newBatcher(predict, 1, 0, 1, func(int, time.Duration) {}, queued)
	first := newBatch(context.Background(), make([]float32, 3*h*w), 1, h, w)
	second := newBatch(context.Background(), make([]float32, 3*h*w), 1, h, w)
	require.True(t, b.submit(first))
	<-emptied
	require.True(t, b.submit(second))
	<-entered
	require.EqualValues(t, 1, published.Load(), "slices waiting by the gauge")
	close(gate)
	<-first.done
	<-second.done
	b.close()
	require.EqualValues(t, 0, published.Load())
}
