#include "bindings/common.h"

namespace fastdl::bind {

void bind_conv(py::module_& m) {}

}  // namespace fastdl::bind
