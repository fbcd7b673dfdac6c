package inference

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/edema/edema/internal/benchenv"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

// BenchmarkCubeThreads predicts a cube of 32 slices of 256×128 at batch 8
// two ways on two cores: one batch at a time with libtorch's two intra-op
// threads, and two batches in flight with one thread each (and, for
// scale, one batch with one thread). EDEMA_BENCH_THREADS does not apply:
// the threads are the benchmark's subject. Run with -count to alternate
// the settings.
func BenchmarkCubeThreads(b *testing.B) {
	defer benchenv.Setup(b)()
	defer torch.SetNumThreads(torch.NumThreads())
	const slices, h, w = 32, 256, 128
	images := testSlices(slices, h, w)
	for _, name := range []string{models.NameUNet, models.NameUNetNested} {
		torch.ManualSeed(0)
		m, err := models.New(name)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range []struct{ threads, inFlight int }{{2, 1}, {1, 2}, {1, 1}} {
			b.Run(fmt.Sprintf("%s/threads=%d,in_flight=%d", name, s.threads, s.inFlight), func(b *testing.B) {
				torch.SetNumThreads(s.threads)
				p, err := New([]Member{{m, 1}}, Options{BatchSize: 8, InFlight: s.inFlight})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Predict(images, slices, h, w); err != nil { // warm-up
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if _, err := p.Predict(images, slices, h, w); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(slices*b.N)/b.Elapsed().Seconds(), "slices/s")
			})
		}
		m.Free()
	}
}

// BenchmarkCube predicts one cube of UNet the way edema eval does
// (PredictCube: the next batch normalised while the current one runs,
// InFlight+1 input buffers), EDEMA_BENCH_CUBE slices (default 128, a
// challenge cube) of the H×W of EDEMA_BENCH_INPUT (default
// 8×3×1024×512, whose N is the batch size). It reports slices/s, the page
// faults and the peak resident memory, and cube-MiB, the memory of the
// cube's own data (its slices with their neighbours, and the labels): the
// peak less that is what prediction holds, which the batch bounds.
// EDEMA_BENCH_IN_FLIGHT sets Options.InFlight (default 1). Compare the peak of a short cube with a long one, each in a process of
// its own:
//
//	for s in 16 128; do EDEMA_BENCH_CUBE=$s ./inference.test -test.run '^$' -test.bench BenchmarkCube$ -test.benchtime 1x; done
func BenchmarkCube(b *testing.B) {
	defer benchenv.Setup(b)()
	shape := benchenv.Input(b, []int64{8, 3, 1024, 512})
	batch, h, w := int(shape[0]), int(shape[2]), int(shape[3])
	slices := 128
	if s := os.Getenv("EDEMA_BENCH_CUBE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("EDEMA_BENCH_CUBE=%q is not a positive integer", s)
		}
		slices = n
	}
	stacks := make([]*oct.Stack, slices)
	for i := range stacks {
		stacks[i] = oct.NewStack(w, h)
		for j := range stacks[i].Pix {
			stacks[i].Pix[j] = uint8(i*7 + j*13)
		}
	}
	cube, err := NewCube("bench", stacks)
	if err != nil {
		b.Fatal(err)
	}
	norm, err := oct.NewNormalizer(oct.Info{Mean: [3]float64{0.2, 0.2, 0.2}, Std: [3]float64{0.1, 0.1, 0.1}})
	if err != nil {
		b.Fatal(err)
	}
	torch.ManualSeed(0)
	m, err := models.New(models.NameUNet)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Free()
	inFlight := 1
	if s := os.Getenv("EDEMA_BENCH_IN_FLIGHT"); s != "" {
		if inFlight, err = strconv.Atoi(s); err != nil || inFlight < 1 {
			b.Fatalf("EDEMA_BENCH_IN_FLIGHT=%q is not a positive integer", s)
		}
	}
	p, err := New([]Member{{m, 1}}, Options{BatchSize: batch, InFlight: inFlight})
	if err != nil {
		b.Fatal(err)
	}
	usage := benchenv.Take(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.PredictCube(context.Background(), cube, norm); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(slices*b.N)/b.Elapsed().Seconds(), "slices/s")
	benchenv.ReportMemory(b, usage)
	b.ReportMetric(float64(slices*(3+1)*h*w)/(1<<20), "cube-MiB")
}
