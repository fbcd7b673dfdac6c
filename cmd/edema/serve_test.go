package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"image"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/bmp"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

// TestServeMainProcess runs main in a child process of TestServeDrainsOnSIGTERM.
func TestServeMainProcess(t *testing.T) {
	if os.Getenv("EDEMA_SERVE_MAIN") != "1" {
		t.Skip("runs edema serve in a child process of TestServeDrainsOnSIGTERM")
	}
	os.Args = append([]string{"edema", "serve"}, strings.Split(os.Getenv("EDEMA_SERVE_ARGS"), "\x1f")...)
	main() // exits
}

// cubeZip returns a .zip of n B-scans of w×h.
func cubeZip(t *testing.T, n, w, h int) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for k := 1; k <= n; k++ {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i := range g.Pix {
			g.Pix[i] = uint8(i*k + k)
		}
		f, err := zw.Create(oct.SliceFile(k))
		require.NoError(t, err)
		require.NoError(t, bmp.Encode(f, g))
	}
	require.NoError(t, zw.Close())
	return b.Bytes()
}

// TestServeDrainsOnSIGTERM serves an original-style checkpoint (its
// normalisation from --info), sends requests, and sends SIGTERM while they
// run: readiness turns 503, every accepted request is answered, and the
// process exits 0.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "model_best.pth.tar")
	m, err := models.New(models.NameUNet)
	require.NoError(t, err)
	require.NoError(t, models.SaveCheckpoint(ckpt, m, nil, nil, models.SaveOptions{}))
	m.Free()
	info := filepath.Join(dir, "info.json")
	require.NoError(t, oct.WriteInfo(info, oct.Info{Mean: [3]float64{0.3, 0.3, 0.3}, Std: [3]float64{0.2, 0.2, 0.2}}))

	args := []string{"--checkpoint", ckpt, "--info", info, "--addr", "127.0.0.1:0", "--drain-delay", "1s", "--drain-timeout", "2m", "--log-format", "json"}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeMainProcess$")
	cmd.Env = append(os.Environ(), "EDEMA_SERVE_MAIN=1", "EDEMA_SERVE_ARGS="+strings.Join(args, "\x1f"), "OMP_NUM_THREADS=1")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })

	var log strings.Builder
	var logMu sync.Mutex
	lines := bufio.NewScanner(stderr)
	addr := make(chan string, 1)
	go func() {
		serving := regexp.MustCompile(`serving unet as "unet" on http://(\S+) `)
		for lines.Scan() {
			logMu.Lock()
			log.WriteString(lines.Text() + "\n")
			logMu.Unlock()
			if m := serving.FindStringSubmatch(lines.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(time.Minute):
		t.Fatal("edema serve did not start")
	}

	cube := cubeZip(t, 16, 32, 64)
	resp, err := http.Post(base+"/v1/segment", "application/zip", bytes.NewReader(cube))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	const inFlight = 4
	var wg sync.WaitGroup
	codes := make(chan int, inFlight)
	for range inFlight {
		wg.Go(func() {
			resp, err := http.Post(base+"/v1/segment", "application/zip", bytes.NewReader(cube))
			if err != nil {
				codes <- -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	time.Sleep(300 * time.Millisecond) // the requests are in
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/v2/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, 900*time.Millisecond, 20*time.Millisecond, "readiness did not turn 503 during --drain-delay")

	wg.Wait()
	close(codes)
	for c := range codes {
		assert.Equal(t, http.StatusOK, c, "an accepted request was lost")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("edema serve did not exit after SIGTERM")
	}
	logMu.Lock()
	defer logMu.Unlock()
	require.NoError(t, err, "exit status 0 after draining; stderr:\n%s", log.String())
	assert.Contains(t, log.String(), "draining: unready now")
	assert.Contains(t, log.String(), `"msg":"request"`)
	assert.Equal(t, 1+inFlight, strings.Count(log.String(), `"path":"/v1/segment","status":200`))
}

func TestServeFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "nothing to serve: give --checkpoint PATH or --fusion-model NAME=PATH:WEIGHT"},
		{[]string{"--checkpoint", "a.pth", "--fusion-model", "unet=b.pth:1"}, "not both"},
		{[]string{"--checkpoint", "missing.pth", "--addr", "127.0.0.1:0"}, "missing.pth"},
		{[]string{"--max-batch", "0"}, "--max-batch must be at least 1"},
		{[]string{"--checkpoint", "missing.pth", "--addr", "127.0.0.1:0", "--amp", "fp16"}, "--amp: precision fp16 runs on CUDA only"},
		{[]string{"--log-format", "xml"}, `--log-format "xml": want text or json`},
		{[]string{"--checkpoint", "a.pth", "--addr", "nowhere:http:80"}, "--addr:"},
		{[]string{"--fusion-model", "unet"}, "--fusion-model: fusion model \"unet\": want NAME=PATH:WEIGHT"},
	} {
		_, err := runApp(t, append([]string{"serve"}, tc.args...)...)
		require.Error(t, err, tc.args)
		assert.Contains(t, err.Error(), "serve: ", tc.args)
		assert.Contains(t, err.Error(), tc.want, tc.args)
	}
}

func TestServingDefaults(t *testing.T) {
	batch, workers, threads := servingDefaults(torch.CPU)
	assert.Equal(t, []int{1, runtime.NumCPU(), 1}, []int{batch, workers, threads}, "CPU: a pass per core, one thread each")
	batch, workers, threads = servingDefaults(torch.CUDA(0))
	assert.Equal(t, []int{8, 1, runtime.NumCPU()}, []int{batch, workers, threads}, "GPU: one pass at a time, in batches")
}
