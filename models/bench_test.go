package models

import (
	"fmt"
	"os"
	"testing"

	"github.com/edema/edema/internal/benchenv"
	"github.com/edema/edema/torch"
)

// BenchmarkForwardEval times one evaluation-mode forward pass of each
// network on a batch of 8×3×256×128 (or EDEMA_BENCH_INPUT) on the CPU,
// under inference mode, as scripts/bench_models.py does in PyTorch, with
// the settings of package benchenv (threads, host cache), and reports the
// page faults per pass and the peak memory (run one network per process
// for its own peak, as scripts/bench_cube.sh does). EDEMA_BENCH_FAST_PATH=0
// runs every layer as it is instead of taking the evaluation fast path
// (nn.Store.SetFastPath);
// EDEMA_BENCH_CHANNELS_LAST=1 runs the network channels last, and
// EDEMA_BENCH_PRECISION=bf16 in bfloat16 mixed precision.
func BenchmarkForwardEval(b *testing.B) {
	defer benchenv.Setup(b)()

	for _, name := range segmenters() {
		b.Run(name, func(b *testing.B) {
			torch.ManualSeed(0)
			m, err := New(name)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Free()
			if os.Getenv("EDEMA_BENCH_FAST_PATH") == "0" {
				m.Store().SetFastPath(false)
			}
			if os.Getenv("EDEMA_BENCH_CHANNELS_LAST") == "1" {
				if err := m.SetMemoryFormat(torch.ChannelsLast); err != nil {
					b.Fatal(err)
				}
			}
			m.Eval()
			x := torch.Randn(benchenv.Input(b, []int64{8, 3, 256, 128}), torch.Float32CPU)
			defer x.Free()
			precision, err := ParsePrecision(os.Getenv("EDEMA_BENCH_PRECISION"))
			if err != nil {
				b.Fatal(err)
			}
			forward := func() {
				torch.InferenceMode(func() {
					torch.Scoped(func(*torch.Scope) {
						if _, _, err := precision.Forward(torch.CPU, func() (*torch.Tensor, *torch.Tensor, error) { return m.Forward(x) }); err != nil {
							b.Fatal(err)
						}
					})
				})
			}
			forward() // warm-up: first-call allocations and kernel selection
			// CPU time as well as wall time: on a machine shared with other
			// work the CPU time the pass takes varies much less.
			start, usage := benchenv.CPUTime(b), benchenv.Take(b)
			b.ResetTimer()
			for b.Loop() {
				forward()
			}
			b.ReportMetric((benchenv.CPUTime(b)-start).Seconds()*1e3/float64(b.N), "cpu-ms/op")
			benchenv.ReportMemory(b, usage)
			b.ReportMetric(float64(torch.NumThreads()), "threads")
		})
	}
}

// BenchmarkFastEval times the evaluation forward pass of
// BenchmarkForwardEval on the evaluation fast path (as New builds the
// networks) and with every layer run as it is, one after the other in one
// process (run it with -count to alternate them), to measure what the fast
// path saves.
func BenchmarkFastEval(b *testing.B) {
	defer benchenv.Setup(b)()
	for _, name := range segmenters() {
		torch.ManualSeed(0)
		m, err := New(name)
		if err != nil {
			b.Fatal(err)
		}
		m.Eval()
		x := torch.Randn([]int64{8, 3, 256, 128}, torch.Float32CPU)
		for _, fast := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/fast=%t", name, fast), func(b *testing.B) {
				m.Store().SetFastPath(fast)
				forward := func() {
					torch.InferenceMode(func() {
						torch.Scoped(func(*torch.Scope) {
							if _, _, err := m.Forward(x); err != nil {
								b.Fatal(err)
							}
						})
					})
				}
				forward()
				start := benchenv.CPUTime(b)
				b.ResetTimer()
				for b.Loop() {
					forward()
				}
				b.ReportMetric((benchenv.CPUTime(b)-start).Seconds()*1e3/float64(b.N), "cpu-ms/op")
			})
		}
		x.Free()
		m.Free()
	}
}

// BenchmarkLiveness times an evaluation forward pass and a training step
// (forward and backward) of each network on one slice of the challenge's
// size, 1×3×1024×512, and reports the process's peak resident memory:
// with EDEMA_BENCH_KEEP_INTERMEDIATES=1 the networks keep every
// intermediate result until the pass's scope closes instead of freeing it
// after its last use. Peak memory is the process's, so each sub-benchmark
// runs in a process of its own (scripts/bench_liveness.sh).
func BenchmarkLiveness(b *testing.B) {
	defer benchenv.Setup(b)()
	if os.Getenv("EDEMA_BENCH_KEEP_INTERMEDIATES") == "1" {
		freeEarly = false
		defer func() { freeEarly = true }()
	}
	for _, name := range segmenters() {
		for _, step := range []string{"forward", "train"} {
			b.Run(name+"/"+step, func(b *testing.B) {
				torch.ManualSeed(0)
				m, err := New(name)
				if err != nil {
					b.Fatal(err)
				}
				defer m.Free()
				x := torch.Randn([]int64{1, 3, 1024, 512}, torch.Float32CPU)
				defer x.Free()
				run := func() {
					torch.Scoped(func(*torch.Scope) {
						seg, det, err := m.Forward(x)
						if err != nil {
							b.Fatal(err)
						}
						if step == "train" {
							seg.Mean().Add(det.Mean()).Backward()
						}
					})
				}
				if step == "forward" {
					m.Eval()
					inner := run
					run = func() { torch.InferenceMode(inner) }
				} else {
					m.Train()
				}
				run() // warm-up
				b.ResetTimer()
				for b.Loop() {
					run()
				}
				b.ReportMetric(float64(benchenv.Usage(b).Maxrss)/1024, "peak-MiB")
			})
		}
	}
}
