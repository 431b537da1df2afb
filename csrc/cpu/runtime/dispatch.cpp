#include "cpu/runtime/dispatch.h"

namespace fastdl::cpu::dispatch_detail {

int register_kernels(const void** entry, int level, const void* kernels) {
  entry[level] = kernels;
  return 0;
}

}  // namespace fastdl::cpu::dispatch_detail
