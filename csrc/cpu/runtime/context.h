// What the binding layer hands to every CPU kernel that threads, dispatches on
// the instruction set, or needs scratch memory. Kernels keep no state of their own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "cpu/runtime/capability.h"

namespace fastdl::cpu {

// Bump allocator for scratch memory. Pointers stay valid until the memory is
// given back (reset() or an ArenaScope ending); the memory itself is kept, and
// reset() folds several blocks into one, so a steady state of repeated calls
// allocates nothing. Not thread-safe: one arena per calling thread. A kernel
// that runs OpenMP threads carves their slices out before the parallel region.
class Arena {
 public:
  struct Mark { size_t block; size_t used; };

  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() { release(); }

  // 64-byte aligned, uninitialised room for n elements of T.
  template <typename T>
  T* alloc(size_t n) { return static_cast<T*>(alloc_bytes(n * sizeof(T))); }

  void* alloc_bytes(size_t bytes) {
    bytes = (bytes + 63) & ~size_t(63);
    if (bytes == 0) bytes = 64;
    for (; cur_ < blocks_.size(); ++cur_) {
      Block& b = blocks_[cur_];
      if (b.size - b.used >= bytes) { void* p = b.ptr + b.used; b.used += bytes; return p; }
    }
    size_t size = bytes < (size_t(1) << 20) ? (size_t(1) << 20) : bytes;
    char* p = static_cast<char*>(std::aligned_alloc(64, size));
    if (!p) throw std::bad_alloc();
    blocks_.push_back({p, size, bytes});
    cur_ = blocks_.size() - 1;
    return p;
  }

  Mark mark() const {
    return cur_ < blocks_.size() ? Mark{cur_, blocks_[cur_].used} : Mark{cur_, 0};
  }
  // Give back everything allocated since m.
  void restore(Mark m) {
    for (size_t i = m.block; i < blocks_.size(); ++i) blocks_[i].used = 0;
    if (m.block < blocks_.size()) blocks_[m.block].used = m.used;
    cur_ = m.block;
  }

  void reset() {
    if (blocks_.size() > 1) {
      size_t total = 0;
      for (auto& b : blocks_) total += b.size;
      release();
      char* p = static_cast<char*>(std::aligned_alloc(64, total));
      if (!p) throw std::bad_alloc();
      blocks_.push_back({p, total, 0});
    } else if (!blocks_.empty()) {
      blocks_.back().used = 0;
    }
    cur_ = 0;
  }

 private:
  struct Block { char* ptr; size_t size; size_t used; };
  void release() { for (auto& b : blocks_) std::free(b.ptr); blocks_.clear(); cur_ = 0; }
  std::vector<Block> blocks_;
  size_t cur_ = 0;
};

// Gives back, at the end of a scope, what was allocated from the arena inside it.
class ArenaScope {
 public:
  explicit ArenaScope(Arena* a) : a_(a), m_(a->mark()) {}
  ~ArenaScope() { a_->restore(m_); }
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;
 private:
  Arena* a_;
  Arena::Mark m_;
};

struct Context {
  Isa isa = Isa::generic;  // kernel level to use (runtime/dispatch.h)
  int nthreads = 1;        // OpenMP threads a kernel may use (1: no parallel region at all)
  Arena* arena = nullptr;  // scratch for this call (never null when a kernel is called)
};

}  // namespace fastdl::cpu
