// Which instruction-set levels this CPU (and OS) can run.
#pragma once
#include "cpu/context.h"

namespace fastdl::cpu {

bool isa_supported(Isa isa);   // compiled in and runnable on this machine
Isa best_isa();                // highest supported level
const char* isa_name(Isa isa); // "generic", "avx2", "avx512"
bool parse_isa(const char* name, Isa* out);  // false for an unknown name

}  // namespace fastdl::cpu
