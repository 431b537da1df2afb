#include "cpu/cpu_features.h"

#include <cstring>

namespace fastdl::cpu {

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
  if (isa_supported(Isa::avx512)) return Isa::avx512;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::generic;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    default: return "generic";
  }
}

bool parse_isa(const char* name, Isa* out) {
  if (std::strcmp(name, "generic") == 0) { *out = Isa::generic; return true; }
  if (std::strcmp(name, "avx2") == 0) { *out = Isa::avx2; return true; }
  if (std::strcmp(name, "avx512") == 0) { *out = Isa::avx512; return true; }
  return false;
}

}  // namespace fastdl::cpu
