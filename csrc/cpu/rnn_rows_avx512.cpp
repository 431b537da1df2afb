// The recurrent row passes (float) built with AVX512 flags; see rnn_rows.h.
#include "cpu/rnn_rows.h"

#define FASTDL_RNN_ROWS_NS rows_avx512
#include "cpu/rnn_rows_impl.h"

namespace fastdl::cpu {

const RnnRows<float>& rnn_rows_avx512_f32() {
  static const RnnRows<float> rows = rows_avx512::make_rows<float>();
  return rows;
}

}  // namespace fastdl::cpu
