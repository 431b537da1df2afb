// The GEMM driver, in the BLIS style:
//
//   for jc in n, step NC:              B block  (KC x NC) -> packed, in L3
//     for pc in k, step KC:            pack B(pc:pc+KC, jc:jc+NC) as NR-wide panels
//       for ic in m, step MC:          A block  (MC x KC) -> packed, in L2
//         pack A(ic:ic+MC, pc:pc+KC) as MR-tall panels
//         for jr in NC, step NR:       B micro-panel (KC x NR), in L1
//           for ir in MC, step MR:     micro-kernel: C(MR x NR) tile in registers
//
// C = act(alpha * A.B + beta * C + bias): the first k-block scales C by beta,
// later ones add to it, and the last one applies bias and activation while the
// tile is still in registers, so a Dense layer writes its output once.
//
// Packing is in pack.h; the micro-kernels, per architecture, in kernels/.
//
// Small problems skip work that does not pay: tiny ones run a direct loop; when
// A has a unit stride and few column panels reuse it, the kernels read A in
// place instead of packing it; when few rows of C use a row-major B, they read
// B in place too (edge columns under a lane mask); one row of C streams B
// through the wide one-row kernels. Threads split C
// into a grid of tm x tn blocks (chosen to keep each block's A rows + B columns
// small); every thread runs the serial loops above on its block with its own
// packing buffers, which suits cores with private L2 caches. One thread never
// enters a parallel region.
//
// gemm_packed takes B packed once, whole, by gemm_pack_b (the recurrent weights
// of a sequence, multiplied at every timestep): the same loops, kernels and
// blocking, with the panels read from there instead of packed per call.
#include "cpu/gemm/gemm.h"

#include <algorithm>
#include <type_traits>

#include "cpu/gemm/kernels/ukernel.h"
#include "cpu/gemm/pack.h"
#include "cpu/runtime/threading.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastdl::cpu {
namespace {

using gemm_pack::pack_a;
using gemm_pack::pack_b;

// Below this many multiply-adds a direct triple loop beats any packing.
constexpr double kTinyWork = 512;
// Read A in place (no packing) when each A panel is reused by at most this
// many NR-wide column panels, or, with B prepacked (gemm_packed: the per-step
// products of a recurrence, a batch slice deep), when a thread's whole A block
// is at most kUnpackedABytes: it then stays in L1 next to the packed B panel
// across all the column panels. Packing it at every step cost ~9% of an
// LSTM(128) forward at batch 32; with B packed per call or read in place,
// reading A in place measured slower.
constexpr int64_t kUnpackedAPanels = 16;
constexpr double kUnpackedABytes = 24 * 1024;
// Read B in place (no packing) when at most this many rows of C use it: each
// column panel then serves every row tile right away, from L1 (k is blocked).
constexpr int64_t kUnpackedBRows = 64;
// Blocks of at most this many rows pack B in blocks of at most this many bytes.
constexpr int64_t kSmallRows = 64;
constexpr double kSmallRowsBBytes = 256 * 1024;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Block size <= max_block, a multiple of unit, that splits total into equal parts.
int64_t even_block(int64_t total, int64_t max_block, int64_t unit) {
  int64_t nblocks = ceil_div(total, max_block);
  return std::min(round_up(ceil_div(total, nblocks), unit), round_up(max_block, unit));
}

template <typename T>
struct Problem {
  T* c; int64_t rs_c, cs_c;
  const T* a; int64_t rs_a, cs_a;
  const T* b; int64_t rs_b, cs_b;
  int64_t m, n, k;
  T alpha, beta;
  GemmEpilogue<T> ep;
  const UkernelSet<T>* ks;
  bool pack_a;   // false: kernels read A in place (it has a unit stride)
  bool pack_b;   // false: kernels read B in place (cs_b == 1) or from b_packed
  int64_t nc;    // most columns in a block (a multiple of NR)
  const T* b_packed = nullptr;  // B prepacked whole (gemm_pack_b), or null
};

// Row count of a packed B's column panels: n rounded up to whole panels.
int64_t packed_width(int64_t n, int NR) { return ceil_div(n, NR) * NR; }

// C = act(beta * C + bias): what is left when k == 0 or alpha == 0 (A and B are
// then not read at all, as BLAS does).
template <typename T>
void scale_c(T* c /* (m,n) */, int64_t rs_c, int64_t cs_c, int64_t m, int64_t n, T beta,
             const GemmEpilogue<T>& ep) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T& cij = c[i * rs_c + j * cs_c];
      T v = beta == T(0) ? T(0) : beta * cij;
      if (ep.bias) v += ep.bias[j];
      if (ep.act == Activation::relu) v = v > T(0) ? v : T(0);
      cij = v;
    }
  }
}

// The serial blocked loops over rows [m0, m1) and columns [n0, n1) of C.
template <typename T>
void gemm_block(const Problem<T>& P, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                T* ap /* packed A block */, T* bp /* packed B block */, T* tile /* (MR,NR) */) {
  const UkernelSet<T>& ks = *P.ks;
  const int MR = ks.mr, NR = ks.nr, lanes = ks.nr / ks.nv;
  // Without packing buffers nothing limits the depth of a block.
  const int64_t kcb = even_block(P.k, ks.kc, 1);
  const int64_t mcb = even_block(m1 - m0, ks.mc, MR);
  const int64_t ncb = even_block(n1 - n0, P.nc, NR);
  const bool relu = P.ep.act == Activation::relu;
  const int a_kind = P.pack_a ? 0 : 1;

  for (int64_t jc = n0; jc < n1; jc += ncb) {
    const int64_t nc = std::min(ncb, n1 - jc);
    for (int64_t pc = 0; pc < P.k; pc += kcb) {
      const int64_t kc = std::min(kcb, P.k - pc);
      const bool last = pc + kc == P.k;
      const T beta = pc == 0 ? P.beta : T(1);
      // This block's panels: packed now, prepacked, or B itself (in place).
      const T* b_blk = P.b_packed ? P.b_packed + pc * packed_width(P.n, NR) + jc * kc
                                  : P.b + pc * P.rs_b + jc * P.cs_b;
      if (P.pack_b) pack_b(bp, b_blk, P.rs_b, P.cs_b, kc, nc, NR);
      const bool panels = P.pack_b || P.b_packed;

      for (int64_t ic = m0; ic < m1; ic += mcb) {
        const int64_t mc = std::min(mcb, m1 - ic);
        const T* a_blk = P.a + ic * P.rs_a + pc * P.cs_a;
        if (P.pack_a) pack_a(ap, a_blk, P.rs_a, P.cs_a, mc, kc, MR);

        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int nr = int(std::min<int64_t>(NR, nc - jr));
          // Full-width kernel, or the edge kernel with just enough vectors.
          const int v = nr == NR ? 0 : (nr + lanes - 1) / lanes;
          const T* b_panel = P.pack_b ? bp + jr * kc : P.b_packed ? b_blk + jr * kc : b_blk + jr;
          const int64_t rs_b = panels ? NR : P.rs_b;
          const T* bias = (last && P.ep.bias) ? P.ep.bias + jc + jr : nullptr;
          const UkernelArgs<T> args{P.alpha, beta, bias, last && relu, nr};

          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int mr = int(std::min<int64_t>(MR, mc - ir));
            const UkernelFn<T> fn = ks.kernel[a_kind][v][mr - 1];
            const T* a_panel = P.pack_a ? ap + ir * kc : a_blk + ir * P.rs_a;
            T* c_tile = P.c + (ic + ir) * P.rs_c + (jc + jr) * P.cs_c;
            if (P.cs_c == 1) {
              fn(kc, a_panel, P.rs_a, P.cs_a, b_panel, rs_b, c_tile, P.rs_c, args);
              continue;
            }
            // C without a unit column stride: the kernel writes alpha * A.B
            // into the scratch tile and the epilogue runs here.
            const UkernelArgs<T> plain{P.alpha, T(0), nullptr, false, nr};
            fn(kc, a_panel, P.rs_a, P.cs_a, b_panel, rs_b, tile, NR, plain);
            for (int i = 0; i < mr; ++i) {
              for (int j = 0; j < nr; ++j) {
                T& cij = c_tile[i * P.rs_c + j * P.cs_c];
                T x = tile[i * NR + j];
                if (beta != T(0)) x += beta * cij;
                if (bias) x += bias[j];
                if (last && relu) x = x > T(0) ? x : T(0);
                cij = x;
              }
            }
          }
        }
      }
    }
  }
}

// C(1, n) = act(alpha * A(1, k) . B(k, n) + beta * C + bias) for columns
// [n0, n1), B row-major: the wide one-row kernels, each step of k reading up to
// wide_nv whole vectors of one row of B.
template <typename T>
void gemm_row(const Problem<T>& P, int64_t n0, int64_t n1) {
  const UkernelSet<T>& ks = *P.ks;
  const int lanes = ks.nr / ks.nv;
  const int64_t width = int64_t(ks.wide_nv) * lanes;
  for (int64_t j = n0; j < n1; j += width) {
    const int nn = int(std::min<int64_t>(width, n1 - j));
    const int v = (nn + lanes - 1) / lanes;
    const UkernelFn<T> fn = ks.wide[nn % lanes != 0][v];
    const UkernelArgs<T> args{P.alpha, P.beta, P.ep.bias ? P.ep.bias + j : nullptr,
                              P.ep.act == Activation::relu, nn};
    fn(P.k, P.a, P.rs_a, P.cs_a, P.b + j, P.rs_b, P.c + j, P.rs_c, args);
  }
}

// The blocked path: a thread grid over C, the block sizes and what to pack,
// scratch, then gemm_block on every thread's block. P.nc, pack_a and pack_b
// are chosen here (pack_b stays false for a prepacked B).
template <typename T>
void gemm_tiled(Problem<T> P, double work, const Context& ctx) {
  const UkernelSet<T>& ks = *P.ks;
  const int64_t MR = ks.mr, NR = ks.nr;
  const int64_t m = P.m, n = P.n, k = P.k;
  const int64_t m_units = ceil_div(m, MR), n_units = ceil_div(n, NR);

  // Thread grid tm x tn: the split with the smallest block perimeter (A rows
  // plus B columns each thread packs); ties go to splitting columns.
  int nt = threads_for(work, kParallelMinMacs, ctx.nthreads);
  if (m_units * n_units < 2) nt = 1;
  int tm = 1, tn = nt;
  if (nt > 1) {
    int64_t best = -1;
    for (int d = 1; d <= nt; ++d) {
      if (nt % d) continue;
      const int cand_tm = nt / d, cand_tn = d;
      if (cand_tm > m_units || cand_tn > n_units) continue;
      const int64_t cost = ceil_div(m_units, cand_tm) * MR + ceil_div(n_units, cand_tn) * NR;
      if (best < 0 || cost <= best) { best = cost; tm = cand_tm; tn = cand_tn; }
    }
    if (best < 0) { tm = 1; tn = 1; }
    nt = tm * tn;
  }
  const int64_t rows = ceil_div(m_units, tm) * MR;   // most rows one thread gets
  const int64_t cols = ceil_div(n_units, tn) * NR;   // most columns one thread gets

  P.nc = ks.nc;
  // Few rows: each packed B panel is used by few tiles, right after packing;
  // a B block small enough for L2 never makes the round trip to L3.
  if (rows <= kSmallRows) {
    const double kc_max = double(std::min<int64_t>(ks.kc, k));
    const int64_t fit = int64_t(kSmallRowsBBytes / (kc_max * sizeof(T))) / NR * NR;
    P.nc = std::max<int64_t>(NR, std::min<int64_t>(ks.nc, fit));
  }
  // Skip packing what is not reused enough to pay for it: A (with a unit
  // stride) when few column panels share each row panel; B (row-major) when
  // few rows share it (all row tiles use a column panel one after another).
  const bool a_unit = P.cs_a == 1 || P.rs_a == 1;
  const double a_bytes = double(rows) * double(std::min<int64_t>(ks.kc, k)) * sizeof(T);
  P.pack_a = !(a_unit && (ceil_div(std::min<int64_t>(cols, P.nc), NR) <= kUnpackedAPanels ||
                          (P.b_packed && a_bytes <= kUnpackedABytes)));
  P.pack_b = !P.b_packed && !(P.cs_b == 1 && rows <= kUnpackedBRows);

  // Scratch for every thread, carved before any parallel region.
  ArenaScope scope(ctx.arena);
  const int64_t kc = std::min<int64_t>(ks.kc, k);
  const int64_t a_size = P.pack_a ? round_up(std::min<int64_t>(ks.mc, rows), MR) * kc : 0;
  const int64_t b_size = P.pack_b ? round_up(std::min<int64_t>(P.nc, cols), NR) * kc : 0;
  const int64_t t_size = MR * NR;
  const int64_t per_thread = round_up(a_size, 16) + round_up(b_size, 16) + t_size;
  T* scratch = ctx.arena->alloc<T>(size_t(per_thread) * size_t(nt));

  auto run = [&](int t) {
    T* ap = scratch + t * per_thread;
    T* bp = ap + round_up(a_size, 16);
    T* tile = bp + round_up(b_size, 16);
    const int ti = t / tn, tj = t % tn;
    const int64_t m0 = std::min(m, m_units * ti / tm * MR);
    const int64_t m1 = std::min(m, m_units * (ti + 1) / tm * MR);
    const int64_t n0 = std::min(n, n_units * tj / tn * NR);
    const int64_t n1 = std::min(n, n_units * (tj + 1) / tn * NR);
    if (m0 < m1 && n0 < n1) gemm_block(P, m0, m1, n0, n1, ap, bp, tile);
  };

  if (nt == 1) {
    run(0);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
  {
    // A team smaller than asked for (nested regions) still covers every block.
    for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) run(t);
  }
#else
  for (int t = 0; t < nt; ++t) run(t);
#endif
}

}  // namespace

template <typename T>
void gemm(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
          int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k, T alpha, T beta,
          const GemmEpilogue<T>& ep, const Context& ctx) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {
    scale_c(c, rs_c, cs_c, m, n, beta, ep);
    return;
  }
  // Column-major C (no bias, which runs along rows of C^T): compute
  // C^T = B^T . A^T so the kernels store along C's contiguous direction.
  if (cs_c != 1 && rs_c == 1 && !ep.bias && n > 1) {
    gemm<T>(c, cs_c, rs_c, b, cs_b, rs_b, a, cs_a, rs_a, n, m, k, alpha, beta, ep, ctx);
    return;
  }
  // One column of C from an A stored by columns (a weight gradient patches^T . dy
  // of a layer with one filter): C^T = B^T . A^T is one row of C with a row-major
  // right operand, which the wide one-row kernels below stream.
  if (n == 1 && m > 1 && rs_a == 1 && cs_a != 1 && rs_c == 1 && !ep.bias) {
    gemm<T>(c, cs_c, rs_c, b, cs_b, rs_b, a, cs_a, rs_a, 1, m, k, alpha, beta, ep, ctx);
    return;
  }
  const double work = double(m) * double(n) * double(k);
  if (work <= kTinyWork) {
    gemm_ref<T>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, m, n, k, alpha, beta, ep);
    return;
  }

  const UkernelSet<T>& ks = ukernel_set<T>(ctx.isa);

  // One row of C and a row-major B (a Dense layer on one sample): nothing is
  // reused enough to pay for packing, and a tile one row tall keeps too few
  // loads in flight; the wide kernels stream B once, in place. Threads split
  // the columns.
  if (m == 1 && cs_b == 1 && cs_c == 1 && ks.wide_nv > 0) {
    const Problem<T> P{c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, m, n, k, alpha, beta, ep,
                       &ks, false, false, ks.nc};
    // Threads take whole kernel widths, so every column gets the kernel (and
    // the order of additions) it gets on one thread.
    const int64_t width = int64_t(ks.wide_nv) * (ks.nr / ks.nv), units = ceil_div(n, width);
    const int nt = int(std::min<int64_t>(threads_for(work, kParallelMinMacs, ctx.nthreads),
                                         units));
    if (nt <= 1) {
      gemm_row(P, 0, n);
      return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads())
      gemm_row(P, std::min(n, units * t / nt * width), std::min(n, units * (t + 1) / nt * width));
#else
    gemm_row(P, 0, n);
#endif
    return;
  }
  gemm_tiled(Problem<T>{c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, m, n, k, alpha, beta, ep,
                        &ks, true, true, ks.nc},
             work, ctx);
}

template <typename T>
int64_t gemm_packed_b_size(int64_t k, int64_t n, Isa isa) {
  return std::max<int64_t>(k, 0) * packed_width(std::max<int64_t>(n, 0), ukernel_set<T>(isa).nr);
}

template <typename T>
PackedB<T> gemm_pack_b(T* dst, const T* b, int64_t rs_b, int64_t cs_b, int64_t k, int64_t n,
                       Isa isa) {
  const UkernelSet<T>& ks = ukernel_set<T>(isa);
  if (k > 0 && n > 0) {
    // The k blocks gemm_block walks (the same even_block split).
    const int64_t kcb = even_block(k, ks.kc, 1), width = packed_width(n, ks.nr);
    for (int64_t pc = 0; pc < k; pc += kcb)
      pack_b(dst + pc * width, b + pc * rs_b, rs_b, cs_b, std::min(kcb, k - pc), n, ks.nr);
  }
  return PackedB<T>{dst, k, n, isa};
}

template <typename T>
PackedB<T> gemm_pack_b_rows(T* dst, const T* b_rows, int64_t rs_b, int64_t r0, int64_t rows,
                            int64_t k, int64_t n, Isa isa) {
  const UkernelSet<T>& ks = ukernel_set<T>(isa);
  if (n > 0 && rows > 0) {
    const int64_t kcb = even_block(k, ks.kc, 1), width = packed_width(n, ks.nr);
    // Runs of rows inside one k block: the block's panels are depth rows deep.
    for (int64_t r = r0, r1 = r0 + rows; r < r1;) {
      const int64_t pc = r / kcb * kcb, depth = std::min(kcb, k - pc);
      const int64_t run = std::min(r1, pc + depth) - r;
      gemm_pack::pack_b_row_range(dst + pc * width + (r - pc) * ks.nr, b_rows + (r - r0) * rs_b,
                                  rs_b, run, n, depth, ks.nr);
      r += run;
    }
  }
  return PackedB<T>{dst, k, n, isa};
}

template <typename T>
void gemm_packed(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a,
                 const PackedB<T>& b, int64_t m, T alpha, T beta, const GemmEpilogue<T>& ep,
                 const Context& ctx) {
  const int64_t n = b.n, k = b.k;
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {
    scale_c(c, rs_c, cs_c, m, n, beta, ep);
    return;
  }
  // Always the tiled path, with the kernels B was packed for.
  Problem<T> P{c, rs_c, cs_c, a, rs_a, cs_a, nullptr, 0, 0, m, n, k, alpha, beta, ep,
               &ukernel_set<T>(b.isa), true, false, 0};
  P.b_packed = b.p;
  gemm_tiled(P, double(m) * double(n) * double(k), ctx);
}


#define FASTDL_INSTANTIATE(T)                                                                 \
  template int64_t gemm_packed_b_size<T>(int64_t, int64_t, Isa);                                \
  template PackedB<T> gemm_pack_b<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, Isa);    \
  template PackedB<T> gemm_pack_b_rows<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t,      \
                                          int64_t, Isa);                                        \
  template void gemm_packed<T>(T*, int64_t, int64_t, const T*, int64_t, int64_t,                \
                               const PackedB<T>&, int64_t, T, T, const GemmEpilogue<T>&,        \
                               const Context&);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

template void gemm<float>(float*, int64_t, int64_t, const float*, int64_t, int64_t, const float*,
                          int64_t, int64_t, int64_t, int64_t, int64_t, float, float,
                          const GemmEpilogue<float>&, const Context&);
template void gemm<double>(double*, int64_t, int64_t, const double*, int64_t, int64_t,
                           const double*, int64_t, int64_t, int64_t, int64_t, int64_t, double,
                           double, const GemmEpilogue<double>&, const Context&);

}  // namespace fastdl::cpu
