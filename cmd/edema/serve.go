package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/serve"
	"github.com/edema/edema/torch"
)

// serveCommand runs the inference service (package serve) until SIGINT or
// SIGTERM, then drains it.
func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve a network or a fusion over HTTP: /v1/segment, the v2 inference protocol, /metrics and an upload page",
		Description: "Loads one checkpoint (--checkpoint, its network identified by its weights) or a fusion\n" +
			"(--fusion-model NAME=PATH:WEIGHT, repeated) and serves on --addr:\n\n" +
			"  POST /v1/segment            a slice (PNG or BMP) or a cube (.zip of 1.bmp … S.bmp, or .npy) as the body;\n" +
			"                              JSON per slice: detection probabilities and pixels per class; ?mask=png and\n" +
			"                              ?overlay=png add PNGs (base64); Accept: application/x-npy answers the labels\n" +
			"  GET  /v2/health/live, /v2/health/ready, /v2/models/NAME, /v2/models/NAME/ready\n" +
			"  POST /v2/models/NAME/infer  the Open Inference Protocol (KServe v2): input FP32 N×3×H×W, normalised;\n" +
			"                              outputs labels (UINT8 N×H×W) and detections (FP32 N×3)\n" +
			"  GET  /metrics               Prometheus metrics\n" +
			"  GET  /                      a page to upload a slice or a cube and see the lesions\n\n" +
			"Up to --workers forward passes run at once, each on --threads libtorch threads; slices of\n" +
			"concurrent requests share a pass of up to --max-batch slices, the first waiting at most\n" +
			"--max-delay for the others. On the CPU a pass per core on one thread each, without batching,\n" +
			"serves most; on a GPU one pass at a time of batches: those are the defaults. Beyond\n" +
			"--max-queue requests in progress, a request\n" +
			"is answered 503 with Retry-After. Checkpoints written by edema record their normalisation; the\n" +
			"original's need --info info.json. On SIGTERM or SIGINT the server turns unready, waits\n" +
			"--drain-delay, stops accepting connections, finishes what it accepted within --drain-timeout,\n" +
			"and exits 0. One log line per request goes to stderr.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "checkpoint", Usage: "the checkpoint to serve (edema's or the original's, any PyTorch format or safetensors)"},
			&cli.StringSliceFlag{Name: "fusion-model", Usage: "a network of a fusion as NAME=PATH:WEIGHT (repeat it; the weights sum to 1)"},
			&cli.StringFlag{Name: "info", Usage: "info.json with the normalisation (mean, std) the networks were trained with (default: the one the checkpoint records)"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "address to listen on (port 0: any free port)"},
			&cli.StringFlag{Name: "name", Usage: "the model's name in /v2/models/NAME (default: the network's, or fusion)"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu | cuda | cuda:N"},
			&cli.StringFlag{Name: "tta", Value: string(inference.NoTTA), Usage: "test-time augmentation: none | flip"},
			ampFlag(),
			layoutFlag(),
			&cli.IntFlag{Name: "max-batch", Usage: "most slices per forward pass (1: no batching)", DefaultText: "1 on the CPU, 8 on a GPU"},
			&cli.DurationFlag{Name: "max-delay", Value: serve.DefaultMaxDelay, Usage: "longest wait of a pass's first slice for others"},
			&cli.IntFlag{Name: "max-body-mb", Value: serve.DefaultMaxBodyBytes >> 20, Usage: "largest request body in MiB"},
			&cli.IntFlag{Name: "max-queue", Value: serve.DefaultMaxQueue, Usage: "most requests in progress at once"},
			&cli.IntFlag{Name: "workers", Usage: "forward passes that may run at once", DefaultText: "one per CPU core on the CPU, 1 on a GPU"},
			&cli.IntFlag{Name: "threads", Usage: "libtorch threads inside one operation", DefaultText: "1 on the CPU, all cores on a GPU"},
			&cli.DurationFlag{Name: "drain-delay", Value: 0, Usage: "time between turning unready and closing the listener on SIGTERM"},
			&cli.DurationFlag{Name: "drain-timeout", Value: 30 * time.Second, Usage: "longest wait for accepted requests on SIGTERM"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "request log on stderr: text | json"},
		},
		Action: func(c *cli.Context) error {
			if err := runServe(c); err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			return nil
		},
	}
}

func runServe(c *cli.Context) error {
	cfg, device, threads, err := serveConfig(c)
	if err != nil {
		return err
	}
	if err := checkServed(c); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	torch.SetNumThreads(threads)
	start := time.Now()
	dep, err := loadServed(c, device, cfg.MaxBatch)
	if err != nil {
		ln.Close()
		return err
	}
	defer dep.Free()
	cfg.Deployment, cfg.LoadTime = dep, time.Since(start)
	srv, err := serve.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	httpSrv := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	fmt.Fprintf(c.App.ErrWriter, "edema: serving %s as %q on http://%s (%s, loaded in %.1f s)\n",
		dep, srv.Name(), ln.Addr(), dep.Device(), cfg.LoadTime.Seconds())

	select {
	case err := <-served:
		srv.Close()
		return err
	case <-ctx.Done():
	}
	stop()
	srv.SetReady(false)
	fmt.Fprintf(c.App.ErrWriter, "edema: draining: unready now, closing the listener in %s, finishing accepted requests within %s\n",
		c.Duration("drain-delay"), c.Duration("drain-timeout"))
	time.Sleep(c.Duration("drain-delay"))
	drain, cancel := context.WithTimeout(context.Background(), c.Duration("drain-timeout"))
	defer cancel()
	err = httpSrv.Shutdown(drain)
	srv.Close()
	if err != nil {
		return fmt.Errorf("draining: requests still running after --drain-timeout %s: %w", c.Duration("drain-timeout"), err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(c.App.ErrWriter, "edema: stopped")
	return nil
}

// How each device is used unless told otherwise, as measured with
// scripts/bench_serve.sh (docs/BENCHMARKS.md, "Serving"): on the CPU, one
// pass per core on one thread each and no batching answered 1.69 times the
// requests per second of the PyTorch baseline at 8 clients, against 1.47
// for two passes on two threads and 1.29 with batches of up to 8; on a GPU
// one pass at a time takes whole batches.
func servingDefaults(device torch.Device) (maxBatch, workers, threads int) {
	if device.IsCUDA() {
		return serve.DefaultMaxBatch, 1, runtime.NumCPU()
	}
	return 1, runtime.NumCPU(), 1
}

// serveConfig reads the server's settings from the flags, with the
// device's defaults for those not given.
func serveConfig(c *cli.Context) (cfg serve.Config, device torch.Device, threads int, err error) {
	device, err = torch.ParseDevice(c.String("device"))
	if err != nil {
		return cfg, device, 0, fmt.Errorf("--device: %w", err)
	}
	maxBatch, workers, threads := servingDefaults(device)
	for _, f := range []struct {
		name string
		dst  *int
	}{{"max-batch", &maxBatch}, {"workers", &workers}, {"threads", &threads}} {
		if c.IsSet(f.name) {
			if v := c.Int(f.name); v < 1 {
				return cfg, device, 0, fmt.Errorf("--%s must be at least 1, got %d", f.name, v)
			}
			*f.dst = c.Int(f.name)
		}
	}
	switch {
	case c.Duration("max-delay") < 0:
		return cfg, device, 0, fmt.Errorf("--max-delay must not be negative, got %s", c.Duration("max-delay"))
	case c.Int("max-body-mb") < 1:
		return cfg, device, 0, fmt.Errorf("--max-body-mb must be at least 1, got %d", c.Int("max-body-mb"))
	case c.Int("max-queue") < 1:
		return cfg, device, 0, fmt.Errorf("--max-queue must be at least 1, got %d", c.Int("max-queue"))
	case c.Duration("drain-delay") < 0 || c.Duration("drain-timeout") <= 0:
		return cfg, device, 0, fmt.Errorf("--drain-delay must not be negative and --drain-timeout must be positive")
	}
	var handler slog.Handler
	switch f := c.String("log-format"); f {
	case "text":
		handler = slog.NewTextHandler(c.App.ErrWriter, nil)
	case "json":
		handler = slog.NewJSONHandler(c.App.ErrWriter, nil)
	default:
		return cfg, device, 0, fmt.Errorf("--log-format %q: want text or json", f)
	}
	cfg.MaxBatch = maxBatch
	cfg.MaxDelay = c.Duration("max-delay")
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = -1 // no wait, not the default
	}
	cfg.MaxBodyBytes = int64(c.Int("max-body-mb")) << 20
	cfg.MaxQueue = c.Int("max-queue")
	cfg.Workers = workers
	cfg.Name = c.String("name")
	cfg.Logger = slog.New(handler)
	return cfg, device, threads, nil
}

// checkServed checks that exactly one of --checkpoint and --fusion-model
// names what to serve.
func checkServed(c *cli.Context) error {
	ckpt, fusion := c.String("checkpoint"), c.StringSlice("fusion-model")
	switch {
	case ckpt != "" && len(fusion) > 0:
		return errors.New("give --checkpoint or --fusion-model, not both")
	case ckpt == "" && len(fusion) == 0:
		return errors.New("nothing to serve: give --checkpoint PATH or --fusion-model NAME=PATH:WEIGHT")
	}
	return nil
}

// loadServed loads what --checkpoint or --fusion-model names.
func loadServed(c *cli.Context, device torch.Device, maxBatch int) (*inference.Deployment, error) {
	tta, err := inference.ParseTTA(c.String("tta"))
	if err != nil {
		return nil, fmt.Errorf("--tta: %w", err)
	}
	var info *oct.Info
	if path := c.String("info"); path != "" {
		i, err := oct.ReadInfo(path)
		if err != nil {
			return nil, fmt.Errorf("--info: %w", err)
		}
		info = &i
	}
	precision, err := precisionFromFlags(c, device)
	if err != nil {
		return nil, err
	}
	opts := inference.Options{BatchSize: maxBatch, TTA: tta, Precision: precision, Layout: layoutFromFlags(c)}
	if ckpt := c.String("checkpoint"); ckpt != "" {
		return inference.LoadDeployment(ckpt, info, device, opts)
	}
	fusion := c.StringSlice("fusion-model")
	specs := make([]inference.Spec, len(fusion))
	for i, f := range fusion {
		if specs[i], err = inference.ParseSpec(f); err != nil {
			return nil, fmt.Errorf("--fusion-model: %w", err)
		}
	}
	return inference.LoadFusionDeployment(specs, info, device, opts)
}
