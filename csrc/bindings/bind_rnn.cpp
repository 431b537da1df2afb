#include "bindings/common.h"

namespace fastdl::bind {

void bind_rnn(py::module_& m) {}

}  // namespace fastdl::bind
