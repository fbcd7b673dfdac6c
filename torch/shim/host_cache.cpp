// A caching allocator for host (CPU) tensors, which libtorch lacks: its
// default CPU allocator hands every tensor to malloc and back, and glibc
// maps large blocks freshly from the kernel and unmaps them when they are
// freed, so every pass of a network page-faults all of its activations in
// again. This allocator keeps freed blocks of kMinCached bytes or more (up
// to a byte limit) and serves later tensors of about the same size from
// them, as PyTorch's CUDA caching allocator does on the GPU. Smaller blocks
// go to malloc and back at once. The policy (when to enable it, the limit)
// is Go's: see torch/hostcache.go.
#include <map>
#include <mutex>

#include <c10/core/CPUAllocator.h>

#include "shim.hpp"

namespace {

constexpr size_t kAlignment = 64;        // c10's alignment of tensor data
constexpr size_t kHeader = kAlignment;   // block header, before the data
constexpr size_t kMinCached = 1 << 20;   // smaller blocks are not cached
constexpr size_t kGranule = 1 << 16;     // cached capacities are multiples
// A cached block serves a request only if it is at most this much larger,
// so that small tensors do not tie up big blocks.
constexpr size_t kSlack = 8;             // capacity <= request + request/8

// The header of a block records its capacity (the bytes after the header),
// so the deleter needs only the data pointer.
struct Header {
  size_t capacity;
};

class HostCache final : public c10::Allocator {
 public:
  // libtorch 1.x declares allocate const, 2.x not; defining both (without
  // override) makes one of them the override whichever libtorch this is.
  // There is one cache (instance()), so the const one may change it.
  c10::DataPtr allocate(size_t n) const { return const_cast<HostCache *>(this)->take(n); }
  c10::DataPtr allocate(size_t n) { return take(n); }
  c10::DeleterFnPtr raw_deleter() const override { return &give_back; }
  // Pure virtual in libtorch 2.x; a plain member in 1.x.
  void copy_data(void *dest, const void *src, std::size_t count) const { std::memcpy(dest, src, count); }

  void set_limit(size_t limit) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = limit;
    trim_locked();
  }
  void empty() {
    std::lock_guard<std::mutex> lock(mu_);
    size_t keep = limit_;
    limit_ = 0;
    trim_locked();
    limit_ = keep;
  }
  void stats(int64_t out[5]) {
    std::lock_guard<std::mutex> lock(mu_);
    out[0] = static_cast<int64_t>(cached_);
    out[1] = static_cast<int64_t>(limit_);
    out[2] = hits_;
    out[3] = misses_;
    out[4] = static_cast<int64_t>(free_.size());
  }

 private:
  c10::DataPtr take(size_t n) {
    size_t capacity = n < kMinCached ? n : (n + kGranule - 1) / kGranule * kGranule;
    char *base = nullptr;
    if (capacity >= kMinCached) base = reuse(capacity);
    if (base == nullptr) base = fresh(capacity);
    char *data = base + kHeader;
    return {data, data, &give_back, c10::Device(c10::DeviceType::CPU)};
  }

  char *reuse(size_t capacity) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.lower_bound(capacity);
    if (it == free_.end() || it->first > capacity + capacity / kSlack) {
      misses_++;
      return nullptr;
    }
    char *base = it->second;
    cached_ -= it->first;
    free_.erase(it);
    hits_++;
    return base;
  }

  char *fresh(size_t capacity) {
    void *base = nullptr;
    if (posix_memalign(&base, kAlignment, kHeader + capacity) != 0) {
      // Out of memory: what the cache holds may be enough.
      empty();
      TORCH_CHECK(posix_memalign(&base, kAlignment, kHeader + capacity) == 0,
                  "not enough host memory: tried to allocate ", capacity, " bytes");
    }
    static_cast<Header *>(base)->capacity = capacity;
    return static_cast<char *>(base);
  }

  static void give_back(void *data) {
    if (data == nullptr) return;
    char *base = static_cast<char *>(data) - kHeader;
    size_t capacity = reinterpret_cast<Header *>(base)->capacity;
    if (capacity < kMinCached || !instance().keep(base, capacity)) std::free(base);
  }

  bool keep(char *base, size_t capacity) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ + capacity > limit_) return false;
    free_.emplace(capacity, base);
    cached_ += capacity;
    return true;
  }

  // trim_locked frees cached blocks, largest first, until the cache fits
  // its limit.
  void trim_locked() {
    while (cached_ > limit_ && !free_.empty()) {
      auto it = std::prev(free_.end());
      cached_ -= it->first;
      std::free(it->second);
      free_.erase(it);
    }
  }

 public:
  // The one cache. It is never destroyed: tensors may outlive static
  // destructors and still hand their blocks back.
  static HostCache &instance() {
    static HostCache *cache = new HostCache();
    return *cache;
  }

 private:
  std::mutex mu_;
  std::multimap<size_t, char *> free_;  // capacity -> block
  size_t cached_ = 0;
  size_t limit_ = 0;
  int64_t hits_ = 0, misses_ = 0;
};

// libtorch's CPU allocator before the cache replaced it.
c10::Allocator *default_allocator = nullptr;
std::mutex install_mu;

// c10::SetAllocator replaces an allocator only with one of equal or higher
// priority; libtorch registers its own at 0.
constexpr uint8_t kPriority = 1;

}  // namespace

extern "C" {

et_error et_host_cache_enable(int64_t limit) {
  ET_TRY(TORCH_CHECK(limit >= 0, "the host cache limit must not be negative, got ", limit);
         std::lock_guard<std::mutex> lock(install_mu); auto &cache = HostCache::instance();
         cache.set_limit(static_cast<size_t>(limit)); c10::Allocator *current = c10::GetCPUAllocator();
         if (current != &cache) {
           default_allocator = current;
           c10::SetAllocator(c10::DeviceType::CPU, &cache, kPriority);
         })
}

et_error et_host_cache_disable(void) {
  ET_TRY(std::lock_guard<std::mutex> lock(install_mu); auto &cache = HostCache::instance();
         if (default_allocator != nullptr) {
           c10::SetAllocator(c10::DeviceType::CPU, default_allocator, kPriority);
           default_allocator = nullptr;
         } cache.set_limit(0))
}

et_error et_host_cache_empty(void) { ET_TRY(HostCache::instance().empty()) }

et_error et_host_cache_stats(int64_t *out) { ET_TRY(HostCache::instance().stats(out)) }

}  // extern "C"
