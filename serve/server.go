// Package serve is edema's inference service over HTTP: one network or a
// fusion (an inference.Deployment) behind
//
//   - POST /v1/segment: a slice image (PNG or BMP) or a cube (.zip of
//     1.bmp … S.bmp, or .npy) in the body; per slice, the detection
//     probabilities and the pixels of each class, and on request the mask
//     and an overlay as PNGs, or the labels as a .npy;
//   - the Open Inference Protocol (KServe v2, as Triton serves it) under
//     /v2, so that its standard clients work;
//   - GET /metrics in Prometheus's text format;
//   - GET /, a page where a person uploads a slice or a cube and sees what
//     the networks find.
//
// Slices of concurrent requests share forward passes (see batcher). A
// bounded number of requests is admitted at once; beyond it a request is
// answered 503 with Retry-After at once rather than queued without end.
// Every error is a JSON object {"error": "..."} that names the problem, with
// a 4xx status for what the client sent; the server keeps serving.
package serve

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
)

// Defaults of Config.
const (
	DefaultMaxBatch     = models.DefaultBatchSize
	DefaultMaxDelay     = 5 * time.Millisecond
	DefaultMaxBodyBytes = 256 << 20
	DefaultMaxQueue     = 64
	DefaultWorkers      = 1
)

// Config sets up a Server.
type Config struct {
	// Deployment is what the server runs: the predictor and the
	// normalisation of its inputs.
	Deployment *inference.Deployment
	// Name is the model's name in the v2 protocol; empty means the
	// network's name, or "fusion".
	Name string
	// MaxBatch is the most slices one forward pass takes; 1 turns batching
	// off. 0 means DefaultMaxBatch.
	MaxBatch int
	// MaxDelay is how long the first slice of a pass may wait for others to
	// join it; 0 means DefaultMaxDelay, a negative value no wait (a pass
	// then takes only the slices already waiting).
	MaxDelay time.Duration
	// MaxBodyBytes bounds a request's body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxQueue is the most requests admitted at once, running or waiting;
	// 0 means DefaultMaxQueue.
	MaxQueue int
	// Workers is the number of forward passes that may run at once; 0
	// means DefaultWorkers.
	Workers int
	// Logger gets one line per request; nil means slog.Default().
	Logger *slog.Logger
	// Registry gets the server's metrics; nil means a new registry with
	// Go's and the process's collectors.
	Registry *prometheus.Registry
	// LoadTime is how long loading the deployment took, for the metrics.
	LoadTime time.Duration
}

// Server is the HTTP handler of the service. Its methods are safe for
// concurrent use.
type Server struct {
	cfg     Config
	name    string
	dep     *inference.Deployment
	batcher *batcher
	admit   chan struct{} // a token per admitted request
	ready   atomic.Bool
	metrics *metrics
	mux     *http.ServeMux
	log     *slog.Logger
}

// New returns a ready server. Close it to stop its batcher.
func New(cfg Config) (*Server, error) {
	if cfg.Deployment == nil {
		return nil, errors.New("serve: no deployment")
	}
	if tasks := cfg.Deployment.Tasks(); tasks != oct.BothTasks {
		// Every answer has a mask and detections; none may be made up.
		return nil, fmt.Errorf("serve: %s does %s only; the server answers with both segmentation and detection", cfg.Deployment.Predictor, tasks)
	}
	if cfg.MaxBatch < 0 || cfg.MaxQueue < 0 || cfg.MaxBodyBytes < 0 || cfg.Workers < 0 {
		return nil, fmt.Errorf("serve: max batch %d, max queue %d, max body %d and workers %d must not be negative", cfg.MaxBatch, cfg.MaxQueue, cfg.MaxBodyBytes, cfg.Workers)
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, dep: cfg.Deployment, admit: make(chan struct{}, cfg.MaxQueue), log: cfg.Logger}
	s.name = cfg.Name
	if s.name == "" {
		s.name = "fusion"
		if members := s.dep.Members(); len(members) == 1 {
			s.name = members[0].Network.Name()
		}
	}
	s.metrics = newMetrics(cfg.Registry, cfg.LoadTime)
	delay := max(cfg.MaxDelay, 0)
	s.batcher = newBatcher(s.dep.Predict, cfg.MaxBatch, delay, cfg.Workers, s.metrics.observePass, s.metrics.setQueued)
	s.routes()
	s.ready.Store(true)
	return s, nil
}

// Name is the model's name in the v2 protocol.
func (s *Server) Name() string { return s.name }

// SetReady sets what the readiness endpoints answer: a server about to
// stop turns unready, so that load balancers send it nothing new, while it
// finishes what it accepted.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Close stops the batcher once the slices already submitted have run.
// Requests that come after are answered 503.
func (s *Server) Close() {
	s.ready.Store(false)
	s.batcher.close()
}

// ServeHTTP serves a request, logging it and counting it in the metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, code: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	took := time.Since(start)
	endpoint := r.Pattern
	if endpoint == "" {
		endpoint = "other"
	}
	s.metrics.observeRequest(endpoint, rec.code, took)
	level := slog.LevelInfo
	if rec.code >= 500 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.code),
		slog.Int64("bytes_in", r.ContentLength), slog.Int64("bytes_out", rec.bytes),
		slog.Float64("ms", float64(took.Microseconds())/1000), slog.String("remote", r.RemoteAddr),
	}
	if rec.errMsg != "" {
		attrs = append(attrs, slog.String("error", rec.errMsg))
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// recorder remembers the status, size and error of a response for the log
// and the metrics.
type recorder struct {
	http.ResponseWriter
	code   int
	bytes  int64
	errMsg string
}

func (r *recorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

//go:embed index.html
var indexHTML string

// indexPage is the upload page, with the model's name filled in.
var indexPage = template.Must(template.New("index").Parse(indexHTML))

func (s *Server) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		indexPage.Execute(w, struct{ Name string }{s.name})
	})
	mux.HandleFunc("POST /v1/segment", s.segment)
	mux.Handle("GET /metrics", s.metrics.handler())
	s.v2Routes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	s.mux = mux
}

// httpError is an error with the status it answers.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// writeError answers {"error": msg} with code; 503s say when to retry.
func writeError(w http.ResponseWriter, code int, msg string) {
	if rec, ok := w.(*recorder); ok {
		rec.errMsg = msg
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

// fail answers err: its status when it has one, else 500.
func fail(w http.ResponseWriter, err error) {
	var he *httpError
	if errors.As(err, &he) {
		writeError(w, he.code, he.msg)
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// readBody reads a request's body, refusing one beyond MaxBodyBytes before
// reading it when its length is declared.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body of %d bytes is larger than the %d accepted (--max-body-mb)", r.ContentLength, limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body is larger than the %d bytes accepted (--max-body-mb)", limit)
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	return data, nil
}

// admitted runs fn if the request can be admitted now, else answers 503.
func (s *Server) admitted(w http.ResponseWriter, fn func() error) {
	select {
	case s.admit <- struct{}{}:
	default:
		s.metrics.rejected.Inc()
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d requests are in progress, the most this server takes (--max-queue): retry later", s.cfg.MaxQueue))
		return
	}
	defer func() { <-s.admit }()
	if err := fn(); err != nil {
		fail(w, err)
	}
}

// run predicts n normalised slices of h×w through the batcher.
func (s *Server) run(ctx context.Context, images []float32, n, h, w int) (*models.Prediction, error) {
	b := newBatch(ctx, images, n, h, w)
	if !s.batcher.submit(b) {
		return nil, errorf(http.StatusServiceUnavailable, "server is shutting down")
	}
	select {
	case <-b.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if b.err != nil {
		return nil, b.err
	}
	return &models.Prediction{Slices: n, H: h, W: w, Labels: b.labels, Detections: b.detections}, nil
}

// SliceResult is what /v1/segment says about one slice.
type SliceResult struct {
	Index int `json:"index"`
	// Detection is the probability that the slice shows each lesion.
	Detection map[string]float32 `json:"detection"`
	// Pixels counts the pixels of each class.
	Pixels map[string]int `json:"pixels"`
	// MaskPNG is the classes as a paletted PNG (pixel value = class),
	// base64, with ?mask=png.
	MaskPNG string `json:"mask_png,omitempty"`
	// OverlayPNG is the slice with its lesions painted over it, base64,
	// with ?overlay=png.
	OverlayPNG string `json:"overlay_png,omitempty"`
}

// SegmentResult is the answer of /v1/segment.
type SegmentResult struct {
	Model  string        `json:"model"`
	Height int           `json:"height"`
	Width  int           `json:"width"`
	Slices []SliceResult `json:"slices"`
}

// NPYType is the media type of .npy answers.
const NPYType = "application/x-npy"

func (s *Server) segment(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for key := range q {
		if key != "mask" && key != "overlay" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q: want mask=png or overlay=png", key))
			return
		}
	}
	for _, key := range []string{"mask", "overlay"} {
		if v := q.Get(key); v != "" && v != "png" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%s: want %s=png", key, v, key))
			return
		}
	}
	s.admitted(w, func() error {
		data, err := s.readBody(r)
		if err != nil {
			return err
		}
		cube, err := inference.DecodeCube("body", data)
		if err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		size := 3 * cube.H * cube.W
		images := make([]float32, cube.Slices()*size)
		for i, st := range cube.Stacks {
			s.dep.Normalizer.Fill(images[i*size:(i+1)*size], st, false)
		}
		pred, err := s.run(r.Context(), images, cube.Slices(), cube.H, cube.W)
		if err != nil {
			return err
		}
		if strings.Contains(r.Header.Get("Accept"), NPYType) {
			w.Header().Set("Content-Type", NPYType)
			return oct.EncodeLabelsNPY(w, pred.Labels, pred.Slices, pred.H, pred.W)
		}
		res := SegmentResult{Model: s.name, Height: cube.H, Width: cube.W, Slices: make([]SliceResult, pred.Slices)}
		for i := range pred.Slices {
			sr, err := sliceResult(cube, pred, i, q.Get("mask") == "png", q.Get("overlay") == "png")
			if err != nil {
				return err
			}
			res.Slices[i] = sr
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	})
}

func sliceResult(cube *oct.Cube, pred *models.Prediction, i int, mask, overlay bool) (SliceResult, error) {
	sr := SliceResult{Index: i, Detection: map[string]float32{}, Pixels: map[string]int{}}
	areas := inference.ClassAreas(pred, i)
	sr.Pixels["background"] = areas[oct.Background]
	for l, name := range oct.LesionNames {
		sr.Detection[name] = pred.Detections[i*oct.NumLesions+l]
		sr.Pixels[name] = areas[l+1]
	}
	if mask {
		img, err := inference.SliceLabels(pred, i)
		if err != nil {
			return sr, err
		}
		if sr.MaskPNG, err = pngBase64(img); err != nil {
			return sr, err
		}
	}
	if overlay {
		img, err := inference.SliceOverlay(cube, pred, i)
		if err != nil {
			return sr, err
		}
		if sr.OverlayPNG, err = pngBase64(img); err != nil {
			return sr, err
		}
	}
	return sr, nil
}

func pngBase64(img image.Image) (string, error) {
	var b strings.Builder
	enc := base64.NewEncoder(base64.StdEncoding, &b)
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(enc, img); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}
