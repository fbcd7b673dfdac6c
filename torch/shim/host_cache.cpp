// A caching allocator for host (CPU) tensors, which libtorch lacks: its
// default CPU allocator hands every tensor to malloc and back, and glibc
// maps large blocks freshly from the kernel and unmaps them when they are
// freed, so every pass of a network page-faults all of its activations in
// again and the kernel zeroes each page.
//
// Tensors of kMinCached bytes or more take blocks of one arena: a range of
// address space reserved once and made usable from its start as the
// tensors need it, as PyTorch's CUDA allocator does with expandable
// segments. A request takes the smallest free block that holds it (best
// fit) and splits off the rest when the rest is worth keeping; a freed
// block merges with its free neighbours; when no free block holds a
// request, the arena grows at its end by what its free last block lacks.
// So a pass runs in the memory the last pass left, whatever its tensors'
// sizes, without page faults, and the memory used stays close to the most
// the tensors ever held at once. The arena asks for transparent huge
// pages, so even the first pass faults its memory in 2 MiB at a time where
// the kernel allows. Free memory beyond the limit goes back to the kernel
// (MADV_DONTNEED), largest free block first; the address space stays.
// Smaller tensors go to malloc and back at once.
//
// The policy (when to enable the cache, its limit) is Go's: see
// torch/hostcache.go.
#include <set>
#include <mutex>
#include <utility>

#include <sys/mman.h>
#include <unistd.h>

#include <c10/core/CPUAllocator.h>

#include "shim.hpp"

namespace {

constexpr size_t kAlignment = 64;      // c10's alignment of tensor data
constexpr size_t kHeader = kAlignment; // block header, before the data
constexpr size_t kMinCached = 1 << 20; // smaller tensors are not cached
constexpr size_t kRound = 512;         // cached sizes are multiples
constexpr size_t kMinSplit = 1 << 20;  // smaller remainders stay with the block
constexpr size_t kHugePage = 2 << 20;  // the arena grows by multiples, aligned

// Every block starts with a header, so the deleter needs only the data
// pointer. The arena's blocks are a list in address order.
struct Header {
  size_t size;    // bytes of data after the header
  Header *prev;   // the block before, in the arena
  Header *next;   // the block after, in the arena
  size_t released;  // of a free block: bytes of it given back to the kernel
  bool cached;      // from the arena, else from malloc
  bool free;
};
static_assert(sizeof(Header) <= kHeader, "the header must fit before the data");

inline char *data_of(Header *h) { return reinterpret_cast<char *>(h) + kHeader; }
inline size_t round_up(size_t n, size_t unit) { return (n + unit - 1) / unit * unit; }

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
    trim_locked(limit_);
  }
  void empty() {
    std::lock_guard<std::mutex> lock(mu_);
    trim_locked(0);
  }
  void stats(int64_t out[6]) {
    std::lock_guard<std::mutex> lock(mu_);
    out[0] = static_cast<int64_t>(idle_locked());
    out[1] = static_cast<int64_t>(limit_);
    out[2] = hits_;
    out[3] = misses_;
    out[4] = static_cast<int64_t>(free_.size());
    out[5] = static_cast<int64_t>(committed_ - released_);
  }

 private:
  c10::DataPtr take(size_t n) {
    TORCH_CHECK(n <= SIZE_MAX / 4, "not enough host memory: tried to allocate ", n, " bytes");
    Header *h = n < kMinCached ? from_malloc(n) : from_arena(round_up(n, kRound));
    char *data = data_of(h);
    return {data, data, &give_back, c10::Device(c10::DeviceType::CPU)};
  }

  static Header *from_malloc(size_t n) {
    void *base = nullptr;
    TORCH_CHECK(posix_memalign(&base, kAlignment, kHeader + n) == 0, "not enough host memory: tried to allocate ",
                n, " bytes");
    auto *h = static_cast<Header *>(base);
    *h = Header{n, nullptr, nullptr, 0, false, false};
    return h;
  }

  Header *from_arena(size_t size) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      Header *h = nullptr;
      auto it = free_.lower_bound({size, nullptr});
      if (it != free_.end()) {
        h = it->second;
        hits_++;
      } else {
        h = grow_locked(size);
        misses_++;
      }
      if (h != nullptr) {
        split_locked(h, size);
        unlist_locked(h);
        h->free = false;
        h->released = 0;
        in_use_ += kHeader + h->size;
        return h;
      }
    }
    // The arena's address space is used up: malloc serves the rest.
    return from_malloc(size);
  }

  // grow_locked makes the arena's last block free, listed and at least
  // size bytes long, growing the arena, and returns it; nullptr when the
  // arena's address space cannot hold it.
  Header *grow_locked(size_t size) {
    if (base_ == nullptr) reserve_locked();
    bool extend = last_ != nullptr && last_->free;
    size_t bytes = round_up(extend ? size - last_->size : kHeader + size, kHugePage);
    if (bytes > reserved_ - committed_) return nullptr;
    char *end = base_ + committed_;
    if (mprotect(end, bytes, PROT_READ | PROT_WRITE) != 0) {
      // Out of memory: what the cache holds may be enough.
      trim_locked(0);
      TORCH_CHECK(mprotect(end, bytes, PROT_READ | PROT_WRITE) == 0, "not enough host memory: tried to allocate ",
                  size, " bytes");
    }
    committed_ += bytes;
    if (extend) {
      unlist_locked(last_);
      last_->size += bytes;
      list_locked(last_);
      return last_;
    }
    auto *h = reinterpret_cast<Header *>(end);
    *h = Header{bytes - kHeader, last_, nullptr, 0, true, true};
    list_locked(h);
    if (last_ != nullptr) last_->next = h;
    last_ = h;
    return h;
  }

  // reserve_locked reserves the arena's address space: inaccessible, so
  // that it counts against no memory until grow_locked makes it usable.
  // Four times the machine's memory, or less where the process may not
  // have that much address space.
  void reserve_locked() {
    size_t ram = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
    for (size_t want = round_up(4 * std::max(ram, size_t(1) << 30), 1 << 30); want >= (size_t(1) << 30);
         want /= 2) {
      void *p = mmap(nullptr, want + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) continue;
      // Aligned to a huge page, so that the kernel can back all of it with
      // them; advice only, where huge pages are off the arena has small ones.
      auto addr = reinterpret_cast<uintptr_t>(p);
      base_ = reinterpret_cast<char *>(round_up(addr, kHugePage));
      reserved_ = want;
      madvise(base_, reserved_, MADV_HUGEPAGE);
      return;
    }
    // No address space to spare: malloc serves every tensor (grow_locked
    // finds no room).
    base_ = reinterpret_cast<char *>(kHugePage);
    reserved_ = 0;
  }

  // split_locked keeps size bytes in h, a listed free block, and makes the
  // rest a free block of its own when the rest is worth it; the rest takes
  // as much of h's released bytes as it can hold.
  void split_locked(Header *h, size_t size) {
    if (h->size < size + kHeader + kMinSplit) return;
    auto *rest = reinterpret_cast<Header *>(data_of(h) + size);
    size_t rest_bytes = h->size - size;  // its header included
    *rest = Header{rest_bytes - kHeader, h, h->next, std::min(h->released, rest_bytes), true, true};
    list_locked(rest);  // first: it may throw, and nothing has changed yet
    unlist_locked(h);
    if (h->next != nullptr) h->next->prev = rest;
    if (last_ == h) last_ = rest;
    h->next = rest;
    h->size = size;
    h->released -= rest->released;
    list_locked(h);
  }

  static void give_back(void *data) {
    if (data == nullptr) return;
    auto *h = reinterpret_cast<Header *>(static_cast<char *>(data) - kHeader);
    if (h->cached) {
      // Deleters must not throw: should the free set fail to grow, the
      // block stays out of it, lost to the cache but not to its neighbours.
      try {
        instance().release(h);
      } catch (...) {
      }
    } else {
      std::free(h);
    }
  }

  void release(Header *h) {
    std::lock_guard<std::mutex> lock(mu_);
    in_use_ -= kHeader + h->size;
    h->free = true;
    if (Header *next = h->next; next != nullptr && next->free) merge_locked(h, next);
    if (Header *prev = h->prev; prev != nullptr && prev->free) {
      unlist_locked(prev);
      merge_locked(prev, h);
      h = prev;
    }
    list_locked(h);
    if (idle_locked() > limit_) trim_locked(limit_);
  }

  // merge_locked makes b, the listed free block after a, part of a, which
  // is in no list; their released bytes add up.
  void merge_locked(Header *a, Header *b) {
    unlist_locked(b);
    a->size += kHeader + b->size;
    a->released += b->released;
    a->next = b->next;
    if (b->next != nullptr) b->next->prev = a;
    if (last_ == b) last_ = a;
  }

  // list_locked and unlist_locked add a free block to the free set and
  // take it out, keeping count of the released bytes.
  void list_locked(Header *h) {
    free_.insert({h->size, h});
    released_ += h->released;
  }
  void unlist_locked(Header *h) {
    if (free_.erase({h->size, h}) != 0) released_ -= h->released;
  }

  // idle_locked is the resident memory of the arena that no tensor holds.
  size_t idle_locked() const { return committed_ - released_ - in_use_; }

  // trim_locked gives the pages of free blocks back to the kernel, largest
  // block first, until the idle memory is at most limit. A block keeps its
  // header's page, and the next block's.
  void trim_locked(size_t limit) {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    for (auto it = free_.end(); it != free_.begin() && idle_locked() > limit;) {
      Header *h = (--it)->second;
      if (h->released == kHeader + h->size) continue;
      auto from = round_up(reinterpret_cast<uintptr_t>(data_of(h)), page);
      auto to = (reinterpret_cast<uintptr_t>(data_of(h)) + h->size) / page * page;
      if (to > from) madvise(reinterpret_cast<void *>(from), to - from, MADV_DONTNEED);
      // The header's page stays; counting it as given back keeps the
      // figures simple, at the cost of a page a block.
      released_ += kHeader + h->size - h->released;
      h->released = kHeader + h->size;
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
  std::set<std::pair<size_t, Header *>> free_;  // (size, block) of free blocks
  char *base_ = nullptr;  // the arena
  size_t reserved_ = 0;   // bytes of address space reserved for it
  size_t committed_ = 0;  // bytes of it made usable, from base_
  Header *last_ = nullptr;  // the block that ends at base_ + committed_
  size_t released_ = 0;   // bytes of free blocks given back to the kernel
  size_t in_use_ = 0;     // bytes of blocks that tensors hold, headers included
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
