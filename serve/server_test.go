package serve

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/bmp"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/internal/npyheader"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

// Test slices are small, so that hundreds of requests take seconds.
const testW, testH = 32, 64

var testInfo = oct.Info{Mean: [3]float64{0.3, 0.31, 0.32}, Std: [3]float64{0.2, 0.21, 0.22}}

// gated runs a network once its gate lets a pass through, so that a test
// can hold passes back.
type gated struct {
	*models.Model
	gate chan struct{}
}

func (g *gated) Forward(x *torch.Tensor) (*torch.Tensor, *torch.Tensor, error) {
	if g.gate != nil {
		<-g.gate
	}
	return g.Model.Forward(x)
}

// newDeployment returns a seeded untrained UNet behind a deployment.
func newDeployment(t testing.TB, gate chan struct{}) *inference.Deployment {
	t.Helper()
	torch.ManualSeed(7)
	m, err := models.New(models.NameUNet)
	require.NoError(t, err)
	t.Cleanup(m.Free)
	p, err := inference.New([]inference.Member{{Network: &gated{m, gate}, Weight: 1}}, inference.Options{BatchSize: 8})
	require.NoError(t, err)
	norm, err := oct.NewNormalizer(testInfo)
	require.NoError(t, err)
	return &inference.Deployment{Predictor: p, Info: testInfo, Normalizer: norm}
}

// start serves cfg (its deployment made when nil) on loopback.
func start(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Deployment == nil {
		cfg.Deployment = newDeployment(t, nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

// scanOf returns a B-scan whose pixels depend on seed.
func scanOf(seed int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, testW, testH))
	for i := range g.Pix {
		x, y := i%testW, i/testW
		g.Pix[i] = uint8((x*x+y*3)*(seed+1) + seed*17)
	}
	return g
}

func bmpOf(t testing.TB, g image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, bmp.Encode(&b, g))
	return b.Bytes()
}

func zipOfScans(t testing.TB, scans []*image.Gray, skip int) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i, g := range scans {
		if i+1 == skip {
			continue
		}
		f, err := zw.Create("cube/" + oct.SliceFile(i+1))
		require.NoError(t, err)
		_, err = f.Write(bmpOf(t, g))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return b.Bytes()
}

// reference is what a slice's answer must be: the prediction of the slice
// alone, outside the server. A batch of other sizes rounds differently
// (libtorch picks its convolution kernels by batch size), so a batched
// answer may differ in the last bits of a probability, and a label may
// differ where two classes are tied to within that rounding: margin holds
// the gap between the two most probable classes of each pixel.
type reference struct {
	*models.Prediction
	margin []float32
}

// Tolerances of a batched answer against its reference, a hundred times
// the differences measured between batch sizes.
const (
	probabilityTolerance = 1e-5
	tieMargin            = 1e-4
)

// sequential predicts what a body holds one slice at a time.
func sequential(t testing.TB, dep *inference.Deployment, body []byte) (*oct.Cube, reference) {
	t.Helper()
	cube, err := inference.DecodeCube("body", body)
	require.NoError(t, err)
	net := dep.Members()[0].Network
	area := cube.H * cube.W
	ref := reference{models.NewPrediction(cube.Slices(), cube.H, cube.W, false), make([]float32, cube.Slices()*area)}
	x := make([]float32, 3*area)
	seg := make([]float32, oct.NumClasses*area)
	for i, s := range cube.Stacks {
		dep.Normalizer.Fill(x, s, false)
		require.NoError(t, dep.PredictInto(ref.Prediction, i, x, 1))
		torch.InferenceMode(func() {
			sc := torch.NewScope()
			defer sc.Close()
			out, _, err := net.Forward(torch.FromSlice(x, 1, 3, int64(cube.H), int64(cube.W)))
			require.NoError(t, err)
			torch.CopyInto(seg, out)
		})
		for p := range area {
			best, second := float32(-1e30), float32(-1e30)
			for c := range oct.NumClasses {
				v := seg[c*area+p]
				if v > best {
					best, second = v, best
				} else if v > second {
					second = v
				}
			}
			ref.margin[i*area+p] = best - second
		}
	}
	return cube, ref
}

func post(t testing.TB, url, contentType string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	for i := 0; i < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, data
}

func decodeSegment(t testing.TB, data []byte) SegmentResult {
	t.Helper()
	var res SegmentResult
	require.NoError(t, json.Unmarshal(data, &res), string(data))
	return res
}

// requireMatches checks an answer against its reference.
func requireMatches(t testing.TB, res SegmentResult, ref reference) {
	t.Helper()
	require.Len(t, res.Slices, ref.Slices)
	area := ref.H * ref.W
	for i, s := range res.Slices {
		require.Equal(t, i, s.Index)
		areas := inference.ClassAreas(ref.Prediction, i)
		ties := 0
		for p := range area {
			if ref.margin[i*area+p] < tieMargin {
				ties++
			}
		}
		total := 0
		for c, name := range append([]string{"background"}, oct.LesionNames[:]...) {
			require.InDelta(t, areas[c], s.Pixels[name], float64(ties), "slice %d %s", i, name)
			total += s.Pixels[name]
		}
		require.Equal(t, area, total)
		for l, name := range oct.LesionNames {
			require.InDelta(t, ref.Detections[i*3+l], s.Detection[name], probabilityTolerance, "slice %d %s", i, name)
		}
	}
}

// requireLabels checks labels against the reference's, allowing a
// difference only at a tie.
func requireLabels(t testing.TB, got []uint8, ref reference) {
	t.Helper()
	require.Len(t, got, len(ref.Labels))
	for p, l := range got {
		if l != ref.Labels[p] {
			require.Less(t, ref.margin[p], float32(tieMargin), "pixel %d is %d, alone %d", p, l, ref.Labels[p])
		}
	}
}

func decodePNG(t testing.TB, b64 string) image.Image {
	t.Helper()
	data, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	return img
}

func TestSegment(t *testing.T) {
	s, ts := start(t, Config{})
	dep := s.dep
	scans := []*image.Gray{scanOf(0), scanOf(1), scanOf(2)}

	t.Run("slice with mask and overlay", func(t *testing.T) {
		body := bmpOf(t, scans[1])
		resp, data := post(t, ts.URL+"/v1/segment?mask=png&overlay=png", "image/bmp", body)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
		res := decodeSegment(t, data)
		cube, pred := sequential(t, dep, body)
		assert.Equal(t, "unet", res.Model)
		assert.Equal(t, testH, res.Height)
		assert.Equal(t, testW, res.Width)
		requireMatches(t, res, pred)

		mask := decodePNG(t, res.Slices[0].MaskPNG).(*image.Paletted)
		requireLabels(t, mask.Pix, pred)
		labels := &models.Prediction{Slices: 1, H: testH, W: testW, Labels: mask.Pix}
		want, err := inference.SliceOverlay(cube, labels, 0)
		require.NoError(t, err)
		got := image.NewRGBA(want.Rect)
		overlay := decodePNG(t, res.Slices[0].OverlayPNG)
		for y := range testH {
			for x := range testW {
				got.Set(x, y, overlay.At(x, y))
			}
		}
		assert.Equal(t, want.Pix, got.Pix)
	})
	t.Run("cube zip", func(t *testing.T) {
		body := zipOfScans(t, scans, 0)
		resp, data := post(t, ts.URL+"/v1/segment", "application/zip", body)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
		res := decodeSegment(t, data)
		_, pred := sequential(t, dep, body)
		requireMatches(t, res, pred)
		assert.Empty(t, res.Slices[0].MaskPNG)
	})
	t.Run("labels as npy", func(t *testing.T) {
		body := zipOfScans(t, scans, 0)
		resp, data := post(t, ts.URL+"/v1/segment", "application/zip", body, "Accept", NPYType)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
		assert.Equal(t, NPYType, resp.Header.Get("Content-Type"))
		_, pred := sequential(t, dep, body)
		r := bytes.NewReader(data)
		npy, err := npyheader.NewReader(r)
		require.NoError(t, err)
		assert.Equal(t, []int{3, testH, testW}, npy.Header.Descr.Shape)
		assert.Equal(t, "'|u1'", npy.Header.Descr.Type)
		requireLabels(t, data[len(data)-r.Len():], pred)
	})
}

// TestBadRequests sends what a broken or hostile client sends; each gets
// its 4xx with a JSON error naming the problem, and the next good request
// is served.
func TestBadRequests(t *testing.T) {
	_, ts := start(t, Config{MaxBodyBytes: 1 << 20})
	good := bmpOf(t, scanOf(0))
	var pngBody bytes.Buffer
	require.NoError(t, png.Encode(&pngBody, scanOf(1)))
	odd := image.NewGray(image.Rect(0, 0, 40, 64))
	scans := []*image.Gray{scanOf(0), scanOf(1), scanOf(2)}

	cases := []struct {
		name, path string
		body       []byte
		code       int
		want       string
	}{
		{"truncated PNG", "/v1/segment", pngBody.Bytes()[:pngBody.Len()/2], 400, "body: "},
		{"wrong size", "/v1/segment", bmpOf(t, odd), 400, "slices of 40×64 pixels (width×height): both sides must be multiples of 16"},
		{"zip lacking a slice", "/v1/segment", zipOfScans(t, scans, 2), 400, "zip lacks slice 2.bmp"},
		{"empty body", "/v1/segment", nil, 400, "body: empty"},
		{"not an image", "/v1/segment", []byte("hello"), 400, "neither a PNG or BMP slice"},
		{"too large", "/v1/segment", make([]byte, 2<<20), 413, "larger than the 1048576 accepted"},
		{"unknown parameter", "/v1/segment?masks=png", good, 400, `unknown parameter "masks"`},
		{"bad mask", "/v1/segment?mask=jpeg", good, 400, "mask=jpeg: want mask=png"},
		{"no endpoint", "/v1/classify", good, 404, "no endpoint POST /v1/classify"},
		{"v2 unknown model", "/v2/models/resnet/infer", []byte(`{}`), 404, `no model "resnet": this server serves "unet"`},
		{"v2 not json", "/v2/models/unet/infer", []byte(`{"inputs": [`), 400, "not a v2 inference request"},
		{"v2 bad shape", "/v2/models/unet/infer", []byte(`{"inputs":[{"name":"input","shape":[1,3,20,16],"datatype":"FP32","data":[0]}]}`), 400, "input shape [1 3 20 16]"},
		{"v2 bad type", "/v2/models/unet/infer", []byte(`{"inputs":[{"name":"input","shape":[1,3,16,16],"datatype":"INT8","data":[0]}]}`), 400, "is INT8, want FP32"},
		{"v2 short data", "/v2/models/unet/infer", []byte(`{"inputs":[{"name":"input","shape":[1,3,16,16],"datatype":"FP32","data":[0, 1]}]}`), 400, "data holds 2 numbers, its shape needs 768"},
		{"v2 unknown output", "/v2/models/unet/infer", []byte(`{"inputs":[{"name":"input","shape":[1,3,16,16],"datatype":"FP32","data":[` + strings.Repeat("0,", 767) + `0]}],"outputs":[{"name":"seg"}]}`), 400, `unknown output "seg"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := post(t, ts.URL+tc.path, "application/octet-stream", tc.body)
			assert.Equal(t, tc.code, resp.StatusCode, string(data))
			var e struct{ Error string }
			require.NoError(t, json.Unmarshal(data, &e), string(data))
			assert.Contains(t, e.Error, tc.want)
			resp, data = post(t, ts.URL+"/v1/segment", "image/bmp", good)
			require.Equal(t, http.StatusOK, resp.StatusCode, "the next good request: %s", data)
		})
	}

	t.Run("a 1 GB Content-Length", func(t *testing.T) {
		// Declared but never sent: the server answers without reading it.
		conn, err := net.DialTimeout("tcp", ts.Listener.Addr().String(), 5*time.Second)
		require.NoError(t, err)
		defer conn.Close()
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		fmt.Fprintf(conn, "POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/bmp\r\nContent-Length: %d\r\n\r\nBM", 1<<30)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		resp2, data := post(t, ts.URL+"/v1/segment", "image/bmp", good)
		require.Equal(t, http.StatusOK, resp2.StatusCode, string(data))
	})
}

func TestFullQueueAnswers503(t *testing.T) {
	gate := make(chan struct{})
	_, ts := start(t, Config{Deployment: newDeployment(t, gate), MaxQueue: 2, MaxDelay: -1})
	// Opened before the server closes (cleanups run last first), which
	// waits for the held requests, should the test stop early.
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open)
	body := bmpOf(t, scanOf(0))
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			resp, _ := post(t, ts.URL+"/v1/segment", "image/bmp", body)
			codes <- resp.StatusCode
		})
	}
	// Both admitted requests are held by the gate; the third is refused.
	require.Eventually(t, func() bool {
		resp, err := http.Get(ts.URL + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(data), "edema_queue_slices 1")
	}, 10*time.Second, 10*time.Millisecond, "the second request never queued")
	resp, data := post(t, ts.URL+"/v1/segment", "image/bmp", body)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Contains(t, string(data), "2 requests are in progress, the most this server takes (--max-queue)")
	open()
	wg.Wait()
	close(codes)
	for c := range codes {
		assert.Equal(t, http.StatusOK, c)
	}
	resp, _ = post(t, ts.URL+"/v1/segment", "image/bmp", body)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestV2(t *testing.T) {
	s, ts := start(t, Config{Name: "edema-unet"})
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(ts.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		var v map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
		return resp.StatusCode, v
	}
	code, v := get("/v2/health/live")
	assert.Equal(t, 200, code)
	assert.Equal(t, true, v["live"])
	code, _ = get("/v2/health/ready")
	assert.Equal(t, 200, code)
	code, _ = get("/v2/models/edema-unet/ready")
	assert.Equal(t, 200, code)
	code, v = get("/v2/models/edema-unet")
	assert.Equal(t, 200, code)
	assert.Equal(t, "edema-unet", v["name"])
	code, v = get("/v2")
	assert.Equal(t, 200, code)
	assert.Equal(t, "edema", v["name"])

	// Two slices, nested as the protocol allows, against the same two run
	// outside the server.
	cube, err := inference.NewCube("x", []*oct.Stack{oct.StackOfImage(scanOf(3)), oct.StackOfImage(scanOf(4))})
	require.NoError(t, err)
	size := 3 * testH * testW
	x := make([]float32, 2*size)
	for i, st := range cube.Stacks {
		s.dep.Normalizer.Fill(x[i*size:(i+1)*size], st, false)
	}
	want, err := s.dep.Predict(x, 2, testH, testW)
	require.NoError(t, err)
	nested := make([][]float32, 2)
	for i := range nested {
		nested[i] = x[i*size : (i+1)*size]
	}
	req, err := json.Marshal(map[string]any{"id": "r1", "inputs": []any{map[string]any{
		"name": "input", "shape": []int{2, 3, testH, testW}, "datatype": "FP32", "data": nested}}})
	require.NoError(t, err)
	resp, data := post(t, ts.URL+"/v2/models/edema-unet/infer", "application/json", req)
	require.Equal(t, 200, resp.StatusCode, string(data))
	var out struct {
		ModelName string `json:"model_name"`
		ID        string
		Outputs   []struct {
			Name     string
			Shape    []int
			Datatype string
			Data     []float64
		}
	}
	require.NoError(t, json.Unmarshal(data, &out))
	assert.Equal(t, "edema-unet", out.ModelName)
	assert.Equal(t, "r1", out.ID)
	require.Len(t, out.Outputs, 2)
	assert.Equal(t, "labels", out.Outputs[0].Name)
	assert.Equal(t, []int{2, testH, testW}, out.Outputs[0].Shape)
	for i, l := range want.Labels {
		require.Equal(t, float64(l), out.Outputs[0].Data[i], "label %d", i)
	}
	assert.Equal(t, []int{2, 3}, out.Outputs[1].Shape)
	for i, d := range want.Detections {
		require.Equal(t, d, float32(out.Outputs[1].Data[i]), "detection %d", i)
	}

	s.SetReady(false)
	code, v = get("/v2/health/ready")
	assert.Equal(t, 503, code)
	assert.Contains(t, v["error"], "shutting down")
	code, _ = get("/v2/health/live")
	assert.Equal(t, 200, code, "a draining server is still live")
}

func TestMetricsAndPage(t *testing.T) {
	_, ts := start(t, Config{})
	resp, _ := post(t, ts.URL+"/v1/segment", "image/bmp", bmpOf(t, scanOf(0)))
	require.Equal(t, 200, resp.StatusCode)
	mresp, err := http.Get(ts.URL + "/metrics")
	require.NoError(t, err)
	defer mresp.Body.Close()
	data, err := io.ReadAll(mresp.Body)
	require.NoError(t, err)
	for _, want := range []string{
		`edema_http_requests_total{code="200",endpoint="POST /v1/segment"} 1`,
		`edema_http_request_duration_seconds_count{endpoint="POST /v1/segment"} 1`,
		"edema_batch_size_count 1",
		"edema_forward_duration_seconds_count 1",
		"edema_queue_slices 0",
		"edema_model_load_seconds",
		"go_goroutines",
	} {
		assert.Contains(t, string(data), want)
	}

	page, err := http.Get(ts.URL + "/")
	require.NoError(t, err)
	defer page.Body.Close()
	html, err := io.ReadAll(page.Body)
	require.NoError(t, err)
	assert.Equal(t, "text/html; charset=utf-8", page.Header.Get("Content-Type"))
	assert.Contains(t, string(html), `<b id="model">unet</b>`)
	assert.NotContains(t, string(html), "http://", "the page loads nothing from elsewhere")
}

// TestLogsOneLinePerRequest checks the structured request log.
func TestLogsOneLinePerRequest(t *testing.T) {
	var buf syncBuffer
	_, ts := start(t, Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	post(t, ts.URL+"/v1/segment", "image/bmp", bmpOf(t, scanOf(0)))
	post(t, ts.URL+"/v1/segment", "image/bmp", []byte("junk"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	var first, second map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &second))
	assert.Equal(t, "request", first["msg"])
	assert.Equal(t, "/v1/segment", first["path"])
	assert.Equal(t, float64(200), first["status"])
	assert.Equal(t, float64(400), second["status"])
	assert.Contains(t, second["error"], "neither a PNG or BMP slice")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testdataSlice writes a B-scan for the browser test and returns its path.
func testdataSlice(t testing.TB, g *image.Gray) string {
	path := filepath.Join(t.TempDir(), "1.bmp")
	require.NoError(t, os.WriteFile(path, bmpOf(t, g), 0o644))
	return path
}

func TestRefusesANetworkOfOneTask(t *testing.T) {
	torch.ManualSeed(7)
	m, err := models.New(models.NameResNet18)
	require.NoError(t, err)
	defer m.Free()
	p, err := inference.New([]inference.Member{{Network: m, Weight: 1}}, inference.Options{})
	require.NoError(t, err)
	norm, err := oct.NewNormalizer(testInfo)
	require.NoError(t, err)
	_, err = New(Config{Deployment: &inference.Deployment{Predictor: p, Info: testInfo, Normalizer: norm}})
	assert.ErrorContains(t, err, "serve: resnet18 does detection only")
}
