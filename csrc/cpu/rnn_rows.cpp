// Generic build of the recurrent row passes (any CPU; float and double) and the
// dispatch on ctx.isa.
#include "cpu/rnn_rows.h"

#define FASTDL_RNN_ROWS_NS rows_generic
#include "cpu/rnn_rows_impl.h"

namespace fastdl::cpu {

template <>
const RnnRows<float>& rnn_rows<float>(Isa isa) {
#if defined(FASTDL_X86)
  if (isa == Isa::avx512) return rnn_rows_avx512_f32();
  if (isa == Isa::avx2) return rnn_rows_avx2_f32();
#endif
  static const RnnRows<float> rows = rows_generic::make_rows<float>();
  return rows;
}

template <>
const RnnRows<double>& rnn_rows<double>(Isa) {
  static const RnnRows<double> rows = rows_generic::make_rows<double>();
  return rows;
}

}  // namespace fastdl::cpu
