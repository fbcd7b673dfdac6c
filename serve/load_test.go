package serve

import (
	"image"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat"

	"github.com/edema/edema/internal/memtest"
)

// TestConcurrentClients has 8 clients send 50 requests each over loopback
// at once, slices and cubes mixed, and checks every answer against the
// prediction of its slices alone; after warm-up, 800 more requests must
// leave the resident memory where they found it.
func TestConcurrentClients(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	s, ts := start(t, Config{MaxBatch: 8, Workers: 2})
	scans := make([]*image.Gray, 6)
	for i := range scans {
		scans[i] = scanOf(i)
	}
	bodies := [][]byte{
		bmpOf(t, scans[0]), bmpOf(t, scans[1]), bmpOf(t, scans[2]),
		zipOfScans(t, scans[3:], 0), zipOfScans(t, scans[:2], 0),
	}
	refs := make([]reference, len(bodies))
	for i, b := range bodies {
		_, refs[i] = sequential(t, s.dep, b)
	}

	const clients = 8
	round := func(requests int, check bool) {
		var wg sync.WaitGroup
		errs := make(chan string, clients*requests)
		for c := range clients {
			wg.Go(func() {
				for r := range requests {
					k := (c*7 + r) % len(bodies)
					resp, data := post(t, ts.URL+"/v1/segment", "application/octet-stream", bodies[k])
					if resp.StatusCode != http.StatusOK {
						errs <- string(data)
						continue
					}
					if check {
						requireMatches(t, decodeSegment(t, data), refs[k])
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	}
	// 8 clients × 50 requests, every answer checked; 400 more warm the
	// allocators (Go's, glibc's arenas, libtorch's). Then memory is read
	// after every 104 requests, with Go's free pages returned first, and
	// the trend of 8 readings must not add 5% over 500 requests: a slope
	// rather than two readings, which an arena grown for a moment would
	// tip either way.
	round(50, true)
	round(50, false)
	const readings, perRound = 8, 13
	x, y := make([]float64, readings), make([]float64, readings)
	for i := range readings {
		round(perRound, false)
		debug.FreeOSMemory()
		x[i], y[i] = float64((i+1)*clients*perRound), float64(memtest.RSS(t))
	}
	_, slope := stat.LinearRegression(x, y, nil, false)
	mean := stat.Mean(y, nil)
	growth := slope * 500 / mean
	t.Logf("RSS %.0f MiB on average over %d requests, trend %+.2f%% per 500 requests", mean/(1<<20), readings*clients*perRound, 100*growth)
	assert.Less(t, growth, 0.05, "resident memory grows by 5%% or more per 500 requests")

	// Concurrent requests shared forward passes.
	resp, err := http.Get(ts.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var slices, passes float64
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "edema_batch_size_sum "); ok {
			slices, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(line, "edema_batch_size_count "); ok {
			passes, _ = strconv.ParseFloat(v, 64)
		}
	}
	t.Logf("%.0f slices in %.0f passes", slices, passes)
	assert.Greater(t, slices/passes, 1.5, "slices per pass")
}
