#include "bindings/common.h"

namespace fastdl::bind {

void bind_nn(py::module_& m) {}

}  // namespace fastdl::bind
