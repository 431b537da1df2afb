// The one CPU dispatch mechanism: a kernel table per op family, filled once at
// import, read by the portable driver code on every call. (ATen's DispatchStub
// without its machinery.)
//
// A family declares the kernels it dispatches as a plain struct of function
// pointers (or of data, like the GEMM micro-kernel sets), and one table of it:
//
//   struct MaxPoolKernels { ... };                          // in the family's header
//   inline DispatchTable<MaxPoolKernels> max_pool_kernels;  // zero until registration
//
// Its kernel source (a file named *_kernels.cpp) is compiled by CMake once per
// capability level, with that level's flags and these macros:
//   FASTDL_CAP_NS     generic, avx2 or avx512: the namespace the kernels live in
//   FASTDL_CAP_LEVEL  0, 1 or 2 (Isa)
// and ends with one registration, a static initialiser that runs when the
// module is loaded:
//
//   FASTDL_REGISTER_KERNELS(max_pool_kernels, kKernels);    // kKernels: constexpr
//
// A hand-written per-architecture source (gemm/kernels/avx2.cpp) is compiled
// at its own level only and registers the same way. The driver then calls
// `max_pool_kernels[ctx.isa].forward_f32(...)`: the entry of the highest
// registered level not above ctx.isa (a family may skip a level where it does
// not pay: the optimizers register no avx512 entry, so avx512 runs the avx2
// build). Every family registers a generic entry, so a lookup never fails.
//
// Code compiled with AVX flags must not run before the CPU has been checked,
// and must not leak into generic code: the kernels sit in FASTDL_CAP_NS inside
// an anonymous namespace (std:: templates are avoided in kernel bodies, since
// an inline instantiation built with AVX flags could be picked by the linker for
// generic code), the registered struct is constant-initialised (no code runs
// to build it), and registration itself is an out-of-line call into generic code.
#pragma once
#include <type_traits>

#include "cpu/runtime/capability.h"

namespace fastdl::cpu {

template <class Kernels>
struct DispatchTable {
  static_assert(std::is_trivially_copyable_v<Kernels>, "a kernel table holds plain data");
  // entry[level]: what the kernel source built at that level registered, or null.
  const void* entry[kIsaCount] = {};

  const Kernels& operator[](Isa isa) const {
    for (int i = int(isa); i > 0; --i)
      if (entry[i]) return *static_cast<const Kernels*>(entry[i]);
    return *static_cast<const Kernels*>(entry[0]);
  }
};

namespace dispatch_detail {
// Out of line, in generic code: entry[level] = kernels. Returns 0.
int register_kernels(const void** entry, int level, const void* kernels);
}  // namespace dispatch_detail

}  // namespace fastdl::cpu

#define FASTDL_DISPATCH_CAT2(a, b) a##b
#define FASTDL_DISPATCH_CAT(a, b) FASTDL_DISPATCH_CAT2(a, b)

// Registers `kernels` (a namespace-scope constant of the table's struct type)
// for the level this file is compiled at. Use at namespace scope, once per
// table and file.
#define FASTDL_REGISTER_KERNELS(table, kernels)                                              \
  static_assert(std::is_same_v<std::remove_cv_t<std::remove_reference_t<decltype(kernels)>>, \
                               std::remove_cv_t<std::remove_reference_t<decltype(          \
                                   (table)[::fastdl::cpu::Isa::generic])>>>,                \
                "kernels registered in the wrong table");                                    \
  [[maybe_unused]] static const int FASTDL_DISPATCH_CAT(fastdl_registered_, __LINE__) =      \
      ::fastdl::cpu::dispatch_detail::register_kernels((table).entry, FASTDL_CAP_LEVEL,      \
                                                       &(kernels))
