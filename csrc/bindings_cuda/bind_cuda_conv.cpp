#include "bindings_cuda/cuda_array.h"

namespace fastdl::bind_cuda {

void bind_cuda_conv(py::module_& m) {}

}  // namespace fastdl::bind_cuda
