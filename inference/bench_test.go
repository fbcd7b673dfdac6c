package inference

import (
	"fmt"
	"testing"

	"github.com/edema/edema/internal/benchenv"
	"github.com/edema/edema/models"
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
