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
//
// Memory is counted in chunks of 2 MiB, the arena's huge pages. Growing
// the arena adds address space, not memory: a new tensor's chunks that
// hold no memory take the pages of chunks inside free blocks, moved with
// mremap (MREMAP_DONTUNMAP, Linux 5.13) in microseconds instead of
// faulted in and zeroed. So the free holes that best fit leaves between
// tensors hold no memory once a larger tensor needs it, and the arena's
// memory stays at the most its tensors held at once, plus the chunks at
// blocks' ends, which a free block shares with its neighbours. Free
// memory beyond the limit goes back to the kernel (MADV_DONTNEED),
// largest free block first; the address space stays. Smaller tensors go
// to malloc and back at once.
//
// The policy (when to enable the cache, its limit) is Go's: see
// torch/hostcache.go.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include <c10/core/CPUAllocator.h>

#include "shim.hpp"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4  // Linux's value; older C libraries lack the name
#endif

namespace {

constexpr size_t kAlignment = 64;      // c10's alignment of tensor data
constexpr size_t kHeader = kAlignment; // block header, before the data
constexpr size_t kMinCached = 1 << 20; // smaller tensors are not cached
constexpr size_t kRound = 512;         // cached sizes are multiples
constexpr size_t kMinSplit = 1 << 20;  // smaller remainders stay with the block
constexpr size_t kChunk = 2 << 20;     // a huge page: the arena's unit of memory

// Every block starts with a header, so the deleter needs only the data
// pointer. The arena's blocks are a list in address order.
struct Header {
  size_t size;   // bytes of data after the header
  Header *prev;  // the block before, in the arena
  Header *next;  // the block after, in the arena
  bool cached;   // from the arena, else from malloc
  bool free;
};
static_assert(sizeof(Header) <= kHeader, "the header must fit before the data");

inline char *data_of(Header *h) { return reinterpret_cast<char *>(h) + kHeader; }
inline char *end_of(Header *h) { return data_of(h) + h->size; }
inline size_t round_up(size_t n, size_t unit) { return (n + unit - 1) / unit * unit; }

// A range of chunks, [first, last).
struct Chunks {
  size_t first, last;
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
    trim_locked(limit_);
  }
  void empty() {
    std::lock_guard<std::mutex> lock(mu_);
    trim_locked(0);
  }
  void stats(int64_t out[8]) {
    std::lock_guard<std::mutex> lock(mu_);
    out[0] = static_cast<int64_t>(idle_locked());
    out[1] = static_cast<int64_t>(limit_);
    out[2] = hits_;
    out[3] = misses_;
    out[4] = static_cast<int64_t>(free_.size());
    out[5] = static_cast<int64_t>(resident_locked());
    out[6] = static_cast<int64_t>(peak_in_use_);
    out[7] = static_cast<int64_t>(moved_ * kChunk);
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
    *h = Header{n, nullptr, nullptr, false, false};
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
        unlist_locked(h);
        split_locked(h, size);
        h->free = false;
        // h's chunks, and the one of the rest's header, are no longer
        // inside a free block.
        auto [first, last] = touched(h);
        donors_.erase(donors_.lower_bound(first), donors_.lower_bound(last));
        in_use_ += kHeader + h->size;
        peak_in_use_ = std::max(peak_in_use_, in_use_);
        back_locked(h);
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
    size_t bytes = round_up(extend ? size - last_->size : kHeader + size, kChunk);
    if (bytes > reserved_ - committed_) return nullptr;
    char *end = base_ + committed_;
    if (mprotect(end, bytes, PROT_READ | PROT_WRITE) != 0) {
      // Out of memory: what the cache holds may be enough.
      trim_locked(0);
      TORCH_CHECK(mprotect(end, bytes, PROT_READ | PROT_WRITE) == 0, "not enough host memory: tried to allocate ",
                  size, " bytes");
    }
    backed_.resize((committed_ + bytes) / kChunk, false);  // may throw: nothing has changed yet
    committed_ += bytes;
    if (extend) {
      unlist_locked(last_);
      last_->size += bytes;
      list_locked(last_);
      return last_;
    }
    auto *h = reinterpret_cast<Header *>(end);
    *h = Header{bytes - kHeader, last_, nullptr, true, true};
    touch_locked(h);
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
      void *p = mmap(nullptr, want + kChunk, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) continue;
      // Aligned to a huge page, so that the kernel can back all of it with
      // them; advice only, where huge pages are off the arena has small ones.
      auto addr = reinterpret_cast<uintptr_t>(p);
      base_ = reinterpret_cast<char *>(round_up(addr, kChunk));
      reserved_ = want;
      madvise(base_, reserved_, MADV_HUGEPAGE);
      return;
    }
    // No address space to spare: malloc serves every tensor (grow_locked
    // finds no room).
    base_ = reinterpret_cast<char *>(kChunk);
    reserved_ = 0;
  }

  // split_locked keeps size bytes in h, a free block just taken out of
  // the free set, and makes the rest a listed free block of its own when
  // the rest is worth it.
  void split_locked(Header *h, size_t size) {
    if (h->size < size + kHeader + kMinSplit) return;
    auto *rest = reinterpret_cast<Header *>(data_of(h) + size);
    *rest = Header{h->size - size - kHeader, h, h->next, true, true};
    touch_locked(rest);
    if (h->next != nullptr) h->next->prev = rest;
    if (last_ == h) last_ = rest;
    h->next = rest;
    h->size = size;
    // Should the free set fail to grow, the rest is lost to the cache until
    // a neighbour merges with it, and h is not.
    list_locked(rest);
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
    // The chunks that may join the inside of a free block.
    Chunks joined = touched(h);
    if (Header *next = h->next; next != nullptr && next->free) merge_locked(h, next);
    if (Header *prev = h->prev; prev != nullptr && prev->free) {
      unlist_locked(prev);
      merge_locked(prev, h);
      h = prev;
    }
    list_locked(h);
    auto in = inner(h);
    for (size_t i = std::max(joined.first, in.first); i < std::min(joined.last, in.last); i++) {
      if (backed_[i]) donors_.insert(i);
    }
    if (idle_locked() > limit_) trim_locked(limit_);
  }

  // merge_locked makes b, the listed free block after a, part of a, which
  // is in no list.
  void merge_locked(Header *a, Header *b) {
    unlist_locked(b);
    a->size += kHeader + b->size;
    a->next = b->next;
    if (b->next != nullptr) b->next->prev = a;
    if (last_ == b) last_ = a;
  }

  // The chunks of the arena: those that lie inside a block's data, which
  // hold nothing else, and those that it touches, which may hold other
  // blocks' bytes too.
  Chunks inner(Header *h) const {
    auto first = round_up(static_cast<size_t>(data_of(h) - base_), kChunk) / kChunk;
    auto last = static_cast<size_t>(end_of(h) - base_) / kChunk;
    return {first, std::max(first, last)};
  }
  Chunks spanned(Header *h) const {
    return {chunk_at(reinterpret_cast<char *>(h)), round_up(static_cast<size_t>(end_of(h) - base_), kChunk) / kChunk};
  }
  // The chunks whose place inside or outside free blocks changes when h
  // is taken or freed: h's own and the one of the header after it.
  Chunks touched(Header *h) const { return {chunk_at(reinterpret_cast<char *>(h)), chunk_at(end_of(h)) + 1}; }
  char *chunk(size_t i) const { return base_ + i * kChunk; }
  size_t chunk_at(const char *p) const { return static_cast<size_t>(p - base_) / kChunk; }

  // list_locked and unlist_locked add a free block to the free set and
  // take it out. The donors, the chunks inside free blocks that hold
  // memory, whose pages may move into a new tensor's chunks, change only
  // where blocks are taken and freed, by the chunks those touch.
  void list_locked(Header *h) { free_.insert({h->size, h}); }
  void unlist_locked(Header *h) { free_.erase({h->size, h}); }

  // touch_locked counts the chunk of a header just written as holding
  // memory: the write faulted it in.
  void touch_locked(Header *h) { set_backed_locked(chunk_at(reinterpret_cast<char *>(h)), true); }

  // back_locked gives memory to the chunks of h, a block just taken: its
  // inner chunks without any take a donor's pages where the kernel can
  // move them; the rest fault theirs in when the tensor writes them.
  void back_locked(Header *h) {
    auto [first, last] = spanned(h);
    auto in = inner(h);
    for (size_t i = first; i < last; i++) {
      if (backed_[i]) continue;
      if (i >= in.first && i < in.last && movable_ && !donors_.empty()) {
        size_t d = *donors_.rbegin();
        if (mremap(chunk(d), kChunk, kChunk, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, chunk(i)) !=
            MAP_FAILED) {
          set_backed_locked(d, false);
          moved_++;
        } else if (errno == EINVAL) {
          movable_ = false;  // a kernel before 5.13: pages fault in as before
        }
      }
      set_backed_locked(i, true);
    }
  }

  void set_backed_locked(size_t i, bool backed) {
    if (!backed) donors_.erase(i);
    if (backed_[i] == backed) return;
    backed_[i] = backed;
    if (backed) {
      resident_++;
    } else {
      resident_--;
    }
  }

  size_t resident_locked() const { return resident_ * kChunk; }
  // idle_locked is the resident memory of the arena that no tensor holds.
  size_t idle_locked() const { return resident_locked() - in_use_; }

  // trim_locked gives the memory of free blocks back to the kernel,
  // largest block first, until the idle memory is at most limit: first
  // their inner chunks; then, with the limit not met, the whole pages of
  // their data in the chunks they share, of which those that hold nothing
  // else (the arena's first and last, say) count as given back.
  void trim_locked(size_t limit) {
    for (auto it = free_.end(); it != free_.begin() && idle_locked() > limit;) {
      auto [first, last] = inner((--it)->second);
      for (auto d = donors_.lower_bound(first); d != donors_.end() && *d < last && idle_locked() > limit;) {
        size_t i = *d++;
        madvise(chunk(i), kChunk, MADV_DONTNEED);
        set_backed_locked(i, false);
      }
    }
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    for (auto it = free_.end(); it != free_.begin() && idle_locked() > limit;) {
      Header *h = (--it)->second;
      auto from = round_up(reinterpret_cast<uintptr_t>(data_of(h)), page);
      auto to = reinterpret_cast<uintptr_t>(end_of(h)) / page * page;
      if (to > from) madvise(reinterpret_cast<void *>(from), to - from, MADV_DONTNEED);
      auto [first, last] = spanned(h);
      for (size_t i = first; i < last; i++) {
        if (chunk(i) >= reinterpret_cast<char *>(h) && chunk(i) + kChunk <= end_of(h)) set_backed_locked(i, false);
      }
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
  std::set<size_t> donors_;    // chunks inside free blocks that hold memory
  std::vector<bool> backed_;   // per chunk of the arena: holds memory
  char *base_ = nullptr;       // the arena
  size_t reserved_ = 0;        // bytes of address space reserved for it
  size_t committed_ = 0;       // bytes of it made usable, from base_
  Header *last_ = nullptr;     // the block that ends at base_ + committed_
  size_t resident_ = 0;        // chunks that hold memory
  size_t in_use_ = 0;          // bytes of blocks that tensors hold, headers included
  size_t peak_in_use_ = 0;     // the most in_use_ has been
  size_t limit_ = 0;
  bool movable_ = true;        // the kernel moves pages between chunks
  int64_t hits_ = 0, misses_ = 0, moved_ = 0;
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
