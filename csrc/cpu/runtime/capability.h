// Capability levels of the CPU kernels, and which of them this CPU (and OS) can run.
#pragma once

namespace fastdl::cpu {

// Instruction-set level of the kernels. A kernel source built once per level
// (see runtime/dispatch.h) is compiled with these flags:
//   generic: the target's baseline (SSE2 on x86-64), and any other CPU
//   avx2:    -mavx2 -mfma
//   avx512:  -mavx512f -mavx2 -mfma
enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };
constexpr int kIsaCount = 3;

bool isa_supported(Isa isa);   // compiled in and runnable on this machine
Isa best_isa();                // highest supported level
const char* isa_name(Isa isa); // "generic", "avx2", "avx512"
bool parse_isa(const char* name, Isa* out);  // false for an unknown name

}  // namespace fastdl::cpu
