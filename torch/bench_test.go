package torch

import (
	"os"
	"strconv"
	"syscall"
	"testing"
)

// The benchmarks measure what the Go binding adds to libtorch: the cost of
// one call of a tiny operation, and a convolution whose cost is all
// libtorch's. scripts/bench_torch.py measures the same in PyTorch eager, and
// scripts/bench.sh runs both and prints the ratios (docs/BENCHMARKS.md).
//
// Besides ns/op they report cpu-ns/op, the process CPU time per operation,
// which is less disturbed than wall time when other processes compete for
// the cores. EDEMA_BENCH_THREADS sets libtorch's intra-op thread count,
// EDEMA_BENCH_DEVICE the device (cpu, cuda, cuda:N), and
// EDEMA_BENCH_HOST_CACHE=0 turns off the host cache.

// benchSetup applies EDEMA_BENCH_THREADS and returns the device to run on.
func benchSetup(b *testing.B) Device {
	if s := os.Getenv("EDEMA_BENCH_THREADS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("EDEMA_BENCH_THREADS=%q: want a positive integer", s)
		}
		SetNumThreads(n)
	}
	if os.Getenv("EDEMA_BENCH_HOST_CACHE") != "0" { // as the edema command runs
		EnableHostCache(DefaultHostCacheLimit())
		b.Cleanup(DisableHostCache)
	}
	d := CPU
	if s := os.Getenv("EDEMA_BENCH_DEVICE"); s != "" {
		var err error
		if d, err = ParseDevice(s); err != nil {
			b.Fatal(err)
		}
		if err := CheckDevice(d); err != nil {
			b.Skip(err)
		}
	}
	return d
}

// waitFor waits for d's queued work, so that timings include it.
func waitFor(d Device) {
	if d.IsCUDA() {
		CUDASynchronize(d.Index)
	}
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// measure runs the benchmark loop body and reports CPU time per iteration.
func measure(b *testing.B, body func()) {
	b.ReportAllocs()
	c0 := cpuTime()
	for b.Loop() {
		body()
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkTinyAdd adds two one-element float32 tensors inside a scope, as
// the operations of a training step do; the scope frees the results in
// bulk every 100 operations. One op is one Add.
func BenchmarkTinyAdd(b *testing.B) {
	d := benchSetup(b)
	x := FromSlice([]float32{1}).ToDevice(d)
	y := FromSlice([]float32{2}).ToDevice(d)
	s := NewScope()
	n := 0
	measure(b, func() {
		x.Add(y)
		if n++; n == 100 {
			waitFor(d)
			s.Close()
			s, n = NewScope(), 0
		}
	})
	waitFor(d)
	s.Close()
}

// BenchmarkTinyAddFree is TinyAdd outside any scope, freeing each result
// explicitly: two calls into the shim per operation.
func BenchmarkTinyAddFree(b *testing.B) {
	d := benchSetup(b)
	x := FromSlice([]float32{1}).ToDevice(d)
	y := FromSlice([]float32{2}).ToDevice(d)
	measure(b, func() { x.Add(y).Free() })
}

// BenchmarkTinyAddCleanup leaves each result to the runtime cleanup, the
// backstop for unscoped tensors.
func BenchmarkTinyAddCleanup(b *testing.B) {
	d := benchSetup(b)
	x := FromSlice([]float32{1}).ToDevice(d)
	y := FromSlice([]float32{2}).ToDevice(d)
	measure(b, func() { x.Add(y) })
}

// BenchmarkConv2d is the forward pass of a 3×3 convolution from 16 to 16
// channels with padding 1 on a float32 batch of 8×16×256×128, with bias.
func BenchmarkConv2d(b *testing.B) {
	d := benchSetup(b)
	ManualSeed(0)
	opts := Options{DType: Float32, Device: d}
	x := Randn([]int64{8, 16, 256, 128}, opts)
	w := Randn([]int64{16, 16, 3, 3}, opts)
	bias := Randn([]int64{16}, opts)
	o := Conv2dOptions{Padding: [2]int64{1, 1}}
	for range 2 { // warm-up: oneDNN and cuDNN pick and cache their kernels
		Conv2d(x, w, bias, o).Free()
		waitFor(d)
	}
	measure(b, func() {
		Conv2d(x, w, bias, o).Free()
		waitFor(d)
	})
}
