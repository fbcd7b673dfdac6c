package serve

import (
	"image"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rssBytes is the process's resident set size.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/statm")
	require.NoError(t, err)
	fields := strings.Fields(string(data))
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	require.NoError(t, err)
	return pages * int64(os.Getpagesize())
}

// TestConcurrentClients has 8 clients send 50 requests each over loopback
// at once, slices and cubes mixed, and checks every answer against the
// prediction of its slices alone; after warm-up, 800 more requests must
// leave the resident memory where they found it.
func TestConcurrentClients(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	s, ts := start(t, Config{MaxBatch: 8})
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

	const clients, requests = 8, 50
	round := func(check bool) {
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
	// The first 800 requests warm the allocators (Go's, glibc's arenas,
	// libtorch's); the next 800 must leave memory where they left it. Go's
	// free pages go back to the system before each reading, so that the
	// reading is what is in use.
	round(true)
	round(false)
	debug.FreeOSMemory()
	before := rssBytes(t)
	round(false)
	debug.FreeOSMemory()
	third := rssBytes(t)
	round(false)
	debug.FreeOSMemory()
	// A leak raises both later readings; noise (an arena grown for a
	// moment) seldom raises both.
	after := min(third, rssBytes(t))
	t.Logf("RSS %d MiB after 800 requests, %d MiB after 800 more", before>>20, after>>20)
	assert.Less(t, float64(after), 1.05*float64(before), "resident memory grew by more than 5%% over 800 requests")

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
