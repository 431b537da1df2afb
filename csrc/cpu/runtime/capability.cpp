#include "cpu/runtime/capability.h"

#include <cstring>

namespace fastdl::cpu {

namespace {
constexpr const char* kNames[kIsaCount] = {"generic", "avx2", "avx512"};
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::generic: return true;
#if defined(FASTDL_X86) && (defined(__GNUC__) || defined(__clang__))
    // __builtin_cpu_supports also checks that the OS saves the wide registers.
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma");
#endif
    default: return false;
  }
}

Isa best_isa() {
  for (int i = kIsaCount - 1; i > 0; --i)
    if (isa_supported(Isa(i))) return Isa(i);
  return Isa::generic;
}

const char* isa_name(Isa isa) {
  const int i = int(isa);
  return i >= 0 && i < kIsaCount ? kNames[i] : kNames[0];
}

bool parse_isa(const char* name, Isa* out) {
  for (int i = 0; i < kIsaCount; ++i)
    if (std::strcmp(name, kNames[i]) == 0) { *out = Isa(i); return true; }
  return false;
}

}  // namespace fastdl::cpu
