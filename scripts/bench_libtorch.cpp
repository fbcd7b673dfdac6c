// libtorch's own C++ side of the torch package's benchmarks: the floor that
// no binding can beat. It times at::add on two one-element float32 tensors
// and prints, like scripts/bench_torch.py, the best of several runs:
//
//   tiny_add wall_ns=<wall ns per op> cpu_ns=<process CPU ns per op>
//
// Usage: bench_libtorch [threads] [device: cpu|cuda]. Built by
// `cmake --build build --target bench_libtorch` (scripts/bench.sh does it).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

static double cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 0;
  std::string device = argc > 2 ? argv[2] : "cpu";
  if (threads > 0) at::set_num_threads(threads);
  auto opts = at::TensorOptions().dtype(at::kFloat).device(at::Device(device));
  auto x = at::ones({1}, opts);
  auto y = at::full({1}, 2.0, opts);
  const bool cuda = x.is_cuda();
  const int n = 200000, repeat = 5;
  for (int i = 0; i < 1000; i++) at::add(x, y);
  double best_wall = 1e300, best_cpu = 1e300;
  for (int r = 0; r < repeat; r++) {
    double c0 = cpu_ns();
    auto w0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; i++) at::add(x, y);
    if (cuda) y.cpu();  // waits for the queued additions
    auto w1 = std::chrono::steady_clock::now();
    best_cpu = std::min(best_cpu, (cpu_ns() - c0) / n);
    best_wall = std::min(best_wall, std::chrono::duration<double, std::nano>(w1 - w0).count() / n);
  }
  std::printf("tiny_add wall_ns=%.1f cpu_ns=%.1f\n", best_wall, best_cpu);
  return 0;
}
