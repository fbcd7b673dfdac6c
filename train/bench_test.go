package train

import (
	"os"
	"testing"

	"github.com/edema/edema/internal/benchenv"
	"github.com/edema/edema/losses"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/optim"
)

// The training benchmark: one step of each network at the published batch
// geometry, batch 8 of 3×256×128 (the synthetic default's slices): the
// forward pass, the loss of its published recipe, the backward pass, the
// Adam step and the step's figures brought to the host, exactly what Run
// does per step. scripts/bench_train.py times the same step in PyTorch:
//
//	go test -run '^$' -bench TrainStep -benchtime 5x ./train
//	/usr/bin/python3 scripts/bench_train.py --steps 5
//
// Package benchenv applies EDEMA_BENCH_THREADS (as --threads does for the
// script), the host cache and EDEMA_BENCH_INPUT (another batch geometry,
// such as the challenge's 8x3x1024x512, as --batch does);
// EDEMA_BENCH_PRECISION=bf16 trains in bfloat16 mixed precision.
const benchWarmup = 3 // untimed steps first

// benchInput is the published batch geometry.
var benchInput = []int64{8, 3, 256, 128}

// benchBatchData is a deterministic batch of n slices of h×w in which
// every class occurs: the same as scripts/bench_train.py makes.
func benchBatchData(n, h, w int) *oct.Batch {
	b := &oct.Batch{N: n, H: h, W: w,
		Images:  make([]float32, n*3*h*w),
		Labels:  make([]int64, n*h*w),
		Targets: make([]float32, n*oct.NumLesions),
		Paths:   make([]string, n),
	}
	for i := range b.Images {
		// A cheap, fixed pseudo-random pattern around 0.
		b.Images[i] = float32((i*2654435761)%1000)/500 - 1
	}
	for s := range n {
		for y := range h {
			for x := range w {
				var c int64
				switch {
				case y >= 64 && y < 96 && x >= 16 && x < 64:
					c = 1
				case y >= 128 && y < 144 && x >= 32+s && x < 80+s:
					c = 2
				case s%2 == 0 && y >= 160 && y < 168 && x >= 40 && x < 72:
					c = 3
				}
				b.Labels[(s*h+y)*w+x] = c
			}
		}
		t := b.Target(s)
		t[0], t[1] = 1, 1
		if s%2 == 0 {
			t[2] = 1
		}
	}
	return b
}

// recipeLoss is the loss of each network's published recipe (docs/ORIGINAL.md, "Training recipe").
var recipeLoss = map[string]string{
	models.NameUNet:              losses.Mix3,
	models.NameUNetNested:        losses.Mix33,
	models.NameUNetNestedDilated: losses.Mix33,
}

// BenchmarkTrainStep times the trainer's step of each network on
// benchInput's batch (EDEMA_BENCH_INPUT), as scripts/bench_train.sh runs it
// against PyTorch; EDEMA_BENCH_PRECISION picks the precision.
func BenchmarkTrainStep(b *testing.B) {
	defer benchenv.Setup(b)()
	shape := benchenv.Input(b, benchInput)
	batch := benchBatchData(int(shape[0]), int(shape[2]), int(shape[3]))
	for _, name := range models.Names() {
		b.Run(name, func(b *testing.B) {
			torch.ManualSeed(1234)
			m, err := models.New(name)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Free()
			loss, err := losses.New(recipeLoss[name])
			if err != nil {
				b.Fatal(err)
			}
			opt, err := optim.NewAdam(m.Parameters(), optim.AdamOptions{LR: 1e-3, Betas: AdamBetas, Eps: adamEps, WeightDecay: 1e-4})
			if err != nil {
				b.Fatal(err)
			}
			precision, err := models.ParsePrecision(os.Getenv("EDEMA_BENCH_PRECISION"))
			if err != nil {
				b.Fatal(err)
			}
			// EDEMA_BENCH_FAST_PATH=1: train with Config.FastPath.
			fast := os.Getenv("EDEMA_BENCH_FAST_PATH") == "1"
			m.Store().SetPhasedTraining(fast)
			t := &trainer{cfg: Config{Device: torch.CPU, Precision: precision, FastPath: fast}, model: m, opt: opt, loss: loss}
			m.Train()
			// Steps outside the timing: the first allocates the optimizer's
			// state, and the first few are slower while the allocator
			// grows its pools.
			for range benchWarmup {
				if _, _, err := t.trainStep(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			cpu, usage := benchenv.CPUTime(b), benchenv.Take(b)
			for b.Loop() {
				if _, _, err := t.trainStep(batch); err != nil {
					b.Fatal(err)
				}
			}
			cpu = benchenv.CPUTime(b) - cpu
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
			// The CPU time of the process (all threads), which a machine
			// shared with other work disturbs less than the wall time.
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/step")
			benchenv.ReportMemory(b, usage)
		})
	}
}
