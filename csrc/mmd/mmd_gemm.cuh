// The CUDA MMD's GEMM path, for both builds (nvcc for the GPU, the host compiler for the SIMT emulator, where the
// GEMMs are at::mm on CPU tensors): the rbf and polynomial kernels where d is large (docs/DESIGN.md, section 10a).
// Each tile's products a_i . b_j come from at::mm into a bounded workspace (kTile^2 values), then an epilogue kernel
// turns them into kernel values (forward) or slopes (backward), recomputing near pairs as differences exactly as the
// CPU's GEMM path does; the backward's H B is a second GEMM. Memory: O(kTile^2 + kTile d) on top of the inputs'
// centred copies (and, briefly, a float64 copy of each for its squared norms): linear in n.
//
// Precision follows torch's float32 matmul setting, which decides what cuBLAS does with a float32 at::mm:
//   "highest": one FP32 GEMM per tile (CUDA cores; the CPU path's error bound);
//   "high", or TF32 allowed otherwise (allow_tf32, TORCH_ALLOW_TF32_CUBLAS_OVERRIDE): 3xTF32, the products split
//     as hi + lo with hi rounded to TF32's 10 bits, so that hi.hi is exact and hi.lo, lo.hi lose at most
//     2^-22 |a||b| each (lo.lo, at most 2^-22 |a||b|, is dropped): tensor cores, with an error bound near FP32's
//     (see gemm_products);
//   "medium" (bfloat16 allowed): no bound holds, so the tile kernels run instead.
// float64 is always one FP64 GEMM. No host synchronisation: an inf or NaN input makes the centred data non-finite,
// and every pair whose product form does not hold is recomputed from the inputs as given, which gives the tile
// kernels' values (the CPU path checks the mean on the host instead).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "../common/device.cuh"
#include "../common/reduce.cuh"
#include "mmd_ops.h"

namespace fastgan::mmd {
namespace {

// Rows (and columns) of a GEMM tile: the products' workspace is kGemmTile^2 values (16 MiB in float32), and the
// epilogue gets kGemmTile / kRowsPerBlock blocks per tile (256: two waves of an H200's 132 SMs). For large d fewer
// rows, so that the backward's tile x d accumulator stays within kMaxAccumulator values (64 MiB in float32; at
// least 32 rows: 256 MiB at d = 2e6). FASTGAN_MMD_GEMM_TILE overrides it (tests: several tiles and ragged ends at
// sizes the emulator runs quickly).
constexpr int64_t kGemmTile = 2048;
constexpr int64_t kMaxAccumulator = int64_t(1) << 24;
int64_t gemm_tile(int64_t d) {
  const char* value = std::getenv("FASTGAN_MMD_GEMM_TILE");
  if (value != nullptr && *value != '\0') return std::max<int64_t>(1, std::atoll(value));
  return std::clamp<int64_t>(kMaxAccumulator / d, 32, kGemmTile);
}
constexpr int kGemmThreads = 256;
constexpr int kRowsPerBlock = kGemmThreads / cuda::kWarp;  // a warp per row

// The smallest d that takes the GEMM path on CUDA. Not measured yet (no GPU so far): the CPU's crossover is 16; on
// a GPU the tile kernel's registers hold more of d, so the guess is higher. scripts/gpu_check.sh's MMD row at
// d = 512 takes the path; FASTGAN_MMD_GEMM_MIN_D moves the threshold for an A/B.
constexpr int64_t kCudaGemmMinD = 64;

enum class GemmPrecision { OneGemm, Split3xTf32, None };  // one GEMM in T; 3xTF32; no GEMM path

template <class T>
GemmPrecision gemm_precision() {
  if constexpr (std::is_same_v<T, double>) {
    return GemmPrecision::OneGemm;
  } else {
    // allowTF32CuBLAS, not the precision alone: TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 turns TF32 on behind it
    const at::Context& context = at::globalContext();
    if (context.float32MatmulPrecision() == at::Float32MatmulPrecision::MEDIUM) return GemmPrecision::None;
    return context.allowTF32CuBLAS() ? GemmPrecision::Split3xTf32 : GemmPrecision::OneGemm;
  }
}

// x rounded to TF32 (10 fraction bits, to nearest, ties to even) as a float: the bits below are cleared. Finite
// inputs only matter (a non-finite one gives a non-finite product, which the epilogue recomputes).
at::Tensor round_to_tf32(const at::Tensor& x) {
  const at::Tensor bits = x.view(at::kInt);
  const at::Tensor odd = at::bitwise_and(at::bitwise_right_shift(bits, 13), 1);
  const at::Tensor rounded = at::bitwise_and(bits + 0xFFF + odd, -8192);  // -8192: the mask 0xFFFFE000
  return rounded.view(at::kFloat);
}

// The operands of the GEMMs: a row block as given (OneGemm), or as hi and lo parts (Split3xTf32; lo = x - hi,
// exactly).
struct GemmOperand {
  at::Tensor hi, lo;  // lo undefined for OneGemm
  static GemmOperand of(const at::Tensor& x, GemmPrecision precision) {
    if (precision != GemmPrecision::Split3xTf32) return {x, at::Tensor()};
    at::Tensor hi = round_to_tf32(x);
    return {hi, x - hi};
  }
  // rows [i0, i0 + n) of both parts
  GemmOperand rows(int64_t i0, int64_t n) const {
    return {hi.narrow(0, i0, n), lo.defined() ? lo.narrow(0, i0, n) : at::Tensor()};
  }
};

// out = A B^T. Split3xTf32: hi.hi^T + hi.lo^T + lo.hi^T, each product of TF32 values exact or within 2^-11 of
// the lo part's TF32 rounding, accumulated in FP32: |error| <= (d + 4) u sum_k |a_k b_k| + 2^-21 |a| |b|, against
// FP32's (d + 2) u sum_k |a_k b_k| (u = 2^-24); the epilogue's near-pair threshold absorbs either (section 10a).
void gemm_products(at::Tensor& out, const GemmOperand& a, const GemmOperand& b) {
  at::mm_out(out, a.hi, b.hi.t());
  if (a.lo.defined()) {
    out.addmm_(a.hi, b.lo.t());
    out.addmm_(a.lo, b.hi.t());
  }
}

// out += H B for the backward, B given as [cols, d] (not transposed).
void gemm_apply(at::Tensor& out, const GemmOperand& h, const GemmOperand& b) {
  out.addmm_(h.hi, b.hi);
  if (h.lo.defined()) {
    out.addmm_(h.hi, b.lo);
    out.addmm_(h.lo, b.hi);
  }
}

// One tile of products: p [rows, cols] (row stride cols) of rows i0.. of a against j0.. of b. For the distance
// kernels a and b are centred and norm_a, norm_b their squared norms; a pair whose product form fails is recomputed
// as differences of the inputs as given, x_a and x_b.
template <class T>
struct GemmTileParams {
  const T* p;
  int64_t rows, cols;
  const T* norm_a;  // + i0 (distance kernels)
  const T* norm_b;  // + j0
  const T* x_a;     // + i0 * d: the rows as given
  const T* x_b;     // + j0 * d
  int64_t d;
  bool diagonal;       // a same-set tile on the diagonal: the pair (r, r) is (i, i)
  bool skip_diagonal;  // the unbiased estimator leaves the pairs (i, i) out
  KernelConstants kp;
  double weight;       // the tile's sum counts this many times (2 above a same-set diagonal)
  double* partials;    // forward: one per block
  T* h;                // backward: the slopes [rows, cols]
  double* row_sums;    // backward: row_sums[r] += sum_c h[r][c]
};

template <Kernel K, class T>
__device__ __forceinline__ T gemm_statistic(const GemmTileParams<T>& t, int64_t r, int64_t c) {
  return gemm_pair_statistic<K>(t.p[r * t.cols + c], t.norm_a, r, t.norm_b, c, t.x_a + r * t.d, t.x_b + c * t.d,
                                t.d);
}

// The forward's epilogue: a warp per row, lanes across the columns, each lane's sum in double; the block's 8 rows
// added by block_sum's fixed tree into partials[blockIdx.x] (times the tile's weight). The pair (i, i) of a diagonal
// tile is k(0) for a distance kernel (d2 = 0 exactly), k(a . a) for the polynomial one, or left out (unbiased).
template <Kernel K, class T>
__global__ void __launch_bounds__(kGemmThreads) gemm_tile_sum_kernel(GemmTileParams<T> t) {
  const int lane = threadIdx.x % cuda::kWarp;
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / cuda::kWarp;
  double sums[1] = {0.0};
  if (r < t.rows) {
    for (int64_t c = lane; c < t.cols; c += cuda::kWarp) {
      if (t.diagonal && c == r) {
        if (!t.skip_diagonal) sums[0] += kernel_value<K>(uses_dot_product<K> ? t.p[r * t.cols + r] : T(0), t.kp);
      } else {
        sums[0] += kernel_value<K>(gemm_statistic<K>(t, r, c), t.kp);
      }
    }
  }
  cuda::block_sum<kGemmThreads>(sums);
  if (threadIdx.x == 0) t.partials[blockIdx.x] = t.weight * sums[0];
}

// The backward's epilogue: h[r][c] = the slope (0 for a pair (i, i) that adds nothing: a distance kernel's, whose
// a_i - a_i = 0, or one the estimator leaves out), row_sums[r] += the row's sum (one warp per row: one writer).
template <Kernel K, class T>
__global__ void __launch_bounds__(kGemmThreads) gemm_tile_slopes_kernel(GemmTileParams<T> t) {
  const int lane = threadIdx.x % cuda::kWarp;
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / cuda::kWarp;
  if (r >= t.rows) return;  // whole warps: the shuffles below see only full warps of the same row
  const bool zero_diagonal = t.diagonal && (!uses_dot_product<K> || t.skip_diagonal);
  double sum = 0.0;
  for (int64_t c = lane; c < t.cols; c += cuda::kWarp) {
    const T h = zero_diagonal && c == r ? T(0) : kernel_slope<K>(gemm_statistic<K>(t, r, c), t.kp);
    t.h[r * t.cols + c] = h;
    sum += static_cast<double>(h);
  }
#pragma unroll
  for (int offset = cuda::kWarp / 2; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if (lane == 0) t.row_sums[r] += sum;
}

// MMD^2 = w_xx S_xx + w_yy S_yy - 2 w_xy S_xy from the three sums' partials (counts[s] each, consecutive), summed
// in a fixed order by one block.
template <class T>
struct GemmCombineParams {
  const double* partials;
  int64_t counts[3];
  double w_xx, w_yy, w_xy;
  T* out;
};

template <class T>
__global__ void __launch_bounds__(kGemmThreads) gemm_combine_kernel(GemmCombineParams<T> p) {
  double sums[3];
  const double* part = p.partials;
#pragma unroll
  for (int s = 0; s < 3; ++s) {
    double one[1];
    cuda::sum_partials<kGemmThreads>(one, part, p.counts[s]);
    sums[s] = one[0];
    part += p.counts[s];
  }
  if (threadIdx.x == 0) *p.out = static_cast<T>(p.w_xx * sums[0] + p.w_yy * sums[1] - 2.0 * p.w_xy * sums[2]);
}

// grad[i][k] += g coef (row_sums[r] a[i][k] - hb[r][k]) for a distance kernel (a centred), g coef hb[r][k] for the
// polynomial one, over the rows of one row tile; g is the upstream gradient, read on the device.
template <class T>
struct GemmFinishParams {
  const T* a;  // + i0 * d
  const T* hb;
  const double* row_sums;
  int64_t rows, d;
  const T* grad_out;
  double coef;
  bool distance;
  T* grad;  // + i0 * d
};

template <class T>
__global__ void __launch_bounds__(kGemmThreads) gemm_finish_rows_kernel(GemmFinishParams<T> p) {
  const double g = static_cast<double>(*p.grad_out) * p.coef;
  const int64_t total = p.rows * p.d;
  const int64_t stride = int64_t(gridDim.x) * kGemmThreads;
  for (int64_t e = int64_t(blockIdx.x) * kGemmThreads + threadIdx.x; e < total; e += stride) {
    const int64_t r = e / p.d;
    const double sum = p.hb[e];
    const double value = p.distance ? p.row_sums[r] * static_cast<double>(p.a[e]) - sum : sum;
    p.grad[e] = static_cast<T>(static_cast<double>(p.grad[e]) + g * value);
  }
}

int64_t gemm_tiles_of(int64_t rows, int64_t tile) { return (rows + tile - 1) / tile; }
int gemm_blocks_of(int64_t rows) { return static_cast<int>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

// The GEMM path's inputs: the centred rows and their squared norms for the distance kernels (the shift is the mean
// of x and y, summed in double: a distance is shift-invariant and |a|^2 + |b|^2 - 2 a.b cancels least around the
// mean), the rows as given for the polynomial kernel. Detached: the GEMMs must record nothing for autograd.
struct GemmInputs {
  at::Tensor x, y, norm_x, norm_y, given_x, given_y;
};

GemmInputs gemm_inputs(const MmdSpec& spec, const at::Tensor& x_in, const at::Tensor& y_in) {
  const at::Tensor x = x_in.detach(), y = y_in.detach();
  if (spec.kernel == Kernel::Polynomial) return {x, y, at::Tensor(), at::Tensor(), x, y};
  const auto total = static_cast<double>(x.size(0) + y.size(0));
  const at::Tensor shift =
      ((x.sum(0, false, at::kDouble) + y.sum(0, false, at::kDouble)) / total).to(x.scalar_type());
  at::Tensor a = x - shift, b = y - shift;
  // squared and summed in double, then rounded once (the CPU path's norms: one rounding in the bound)
  auto squared_norms = [](const at::Tensor& t) {
    return t.to(at::kDouble).square().sum(1).to(t.scalar_type());
  };
  return {a, b, squared_norms(a), squared_norms(b), x, y};
}

template <class T>
GemmTileParams<T> gemm_tile_params(const MmdSpec& spec, const at::Tensor& p, const GemmInputs& in, bool a_is_x,
                                   bool b_is_x, int64_t i0, int64_t j0, bool diagonal) {
  const at::Tensor& norm_a = a_is_x ? in.norm_x : in.norm_y;
  const at::Tensor& norm_b = b_is_x ? in.norm_x : in.norm_y;
  const at::Tensor& given_a = a_is_x ? in.given_x : in.given_y;
  const at::Tensor& given_b = b_is_x ? in.given_x : in.given_y;
  const int64_t d = given_a.size(1);
  const bool distance = norm_a.defined();
  return {.p = p.const_data_ptr<T>(), .rows = p.size(0), .cols = p.size(1),
          .norm_a = distance ? norm_a.const_data_ptr<T>() + i0 : nullptr,
          .norm_b = distance ? norm_b.const_data_ptr<T>() + j0 : nullptr,
          .x_a = given_a.const_data_ptr<T>() + i0 * d, .x_b = given_b.const_data_ptr<T>() + j0 * d, .d = d,
          .diagonal = diagonal, .skip_diagonal = spec.skip_diagonal, .kp = spec.params, .weight = 1.0,
          .partials = nullptr, .h = nullptr, .row_sums = nullptr};
}

// The forward on GEMM tiles; false (nothing done) where the precision setting allows no bound.
template <class R, class T>
bool gemm_forward(const MmdSpec& spec, const at::Tensor& x, const at::Tensor& y, at::Tensor& out,
                  const typename R::Stream& stream) {
  const GemmPrecision precision = gemm_precision<T>();
  if (precision == GemmPrecision::None) return false;
  const GemmInputs in = gemm_inputs(spec, x, y);
  const GemmOperand ox = GemmOperand::of(in.x, precision), oy = GemmOperand::of(in.y, precision);
  const int64_t tile = gemm_tile(x.size(1));
  const int64_t tiles_x = gemm_tiles_of(x.size(0), tile), tiles_y = gemm_tiles_of(y.size(0), tile);
  const int64_t largest = std::min(tile, std::max(x.size(0), y.size(0)));
  // one partial per epilogue block, in the order the combine kernel adds them: at most this many
  const int64_t max_partials = (tiles_x * (tiles_x + 1) / 2 + tiles_y * (tiles_y + 1) / 2 + tiles_x * tiles_y) *
                               gemm_blocks_of(largest);
  at::Tensor partials = at::empty({max_partials}, x.options().dtype(at::kDouble));
  at::Tensor workspace = at::empty({largest * largest}, x.options());
  struct Sum {
    bool a_is_x, b_is_x;
  };
  const Sum sums[3] = {{true, true}, {false, false}, {true, false}};  // S_xx, S_yy, S_xy
  int64_t counts[3] = {0, 0, 0}, offset = 0;
  for (int s = 0; s < 3; ++s) {
    const at::Tensor& a = sums[s].a_is_x ? in.x : in.y;
    const at::Tensor& b = sums[s].b_is_x ? in.x : in.y;
    const GemmOperand& oa = sums[s].a_is_x ? ox : oy;
    const GemmOperand& ob = sums[s].b_is_x ? ox : oy;
    const bool same = s < 2;
    for (int64_t t = 0; t < gemm_tiles_of(a.size(0), tile); ++t) {
      const int64_t i0 = t * tile, rows = std::min(tile, a.size(0) - i0);
      const GemmOperand a_rows = oa.rows(i0, rows);
      for (int64_t u = same ? t : 0; u < gemm_tiles_of(b.size(0), tile); ++u) {
        const int64_t j0 = u * tile, cols = std::min(tile, b.size(0) - j0);
        at::Tensor p = workspace.narrow(0, 0, rows * cols).view({rows, cols});
        gemm_products(p, a_rows, ob.rows(j0, cols));
        GemmTileParams<T> params = gemm_tile_params<T>(spec, p, in, sums[s].a_is_x, sums[s].b_is_x, i0, j0,
                                                       same && t == u);
        params.weight = same && u != t ? 2.0 : 1.0;
        params.partials = partials.mutable_data_ptr<double>() + offset;
        dispatch_enum(spec.kernel, [&](auto k) {
          constexpr Kernel K = decltype(k)::value;
          if constexpr (K == Kernel::Rbf || K == Kernel::Polynomial) {
            R::template launch<gemm_tile_sum_kernel<K, T>>(gemm_blocks_of(rows), kGemmThreads, stream, params);
          }
        });
        offset += gemm_blocks_of(rows);
        counts[s] += gemm_blocks_of(rows);
      }
    }
  }
  const GemmCombineParams<T> combine{.partials = partials.const_data_ptr<double>(),
                                     .counts = {counts[0], counts[1], counts[2]}, .w_xx = spec.w_xx,
                                     .w_yy = spec.w_yy, .w_xy = spec.w_xy, .out = out.mutable_data_ptr<T>()};
  R::template launch<gemm_combine_kernel<T>>(1, kGemmThreads, stream, combine);
  return true;
}

// The backward on GEMM tiles: for each of the four passes (x against x and y, y against y and x), per row tile of
// a, the slopes H of each column tile (products, then the epilogue), H B accumulated by a second GEMM, then the
// rows' gradient. false where the precision setting allows no bound.
template <class R, class T>
bool gemm_backward(const MmdSpec& spec, const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& y,
                   at::Tensor& grad_x, at::Tensor& grad_y, const typename R::Stream& stream) {
  const GemmPrecision precision = gemm_precision<T>();
  if (precision == GemmPrecision::None) return false;
  const GemmInputs in = gemm_inputs(spec, x, y);
  const GemmOperand ox = GemmOperand::of(in.x, precision), oy = GemmOperand::of(in.y, precision);
  const bool distance = in.norm_x.defined();
  const int64_t tile = gemm_tile(x.size(1));
  const int64_t d = x.size(1), largest = std::min(tile, std::max(x.size(0), y.size(0)));
  at::Tensor products = at::empty({largest * largest}, x.options());
  at::Tensor slopes = at::empty({largest * largest}, x.options());
  at::Tensor accumulator = at::empty({largest * d}, x.options());
  at::Tensor row_sums = at::empty({largest}, x.options().dtype(at::kDouble));
  struct Pass {
    bool a_is_x, b_is_x;
    double coef;
  };
  const Pass passes[4] = {{true, true, 2.0 * spec.w_xx}, {true, false, -2.0 * spec.w_xy},
                          {false, false, 2.0 * spec.w_yy}, {false, true, -2.0 * spec.w_xy}};
  for (const Pass& pass : passes) {
    const at::Tensor& a = pass.a_is_x ? in.x : in.y;
    const at::Tensor& b = pass.b_is_x ? in.x : in.y;
    const GemmOperand& oa = pass.a_is_x ? ox : oy;
    const GemmOperand& ob = pass.b_is_x ? ox : oy;
    const bool same = pass.a_is_x == pass.b_is_x;
    at::Tensor& grad = pass.a_is_x ? grad_x : grad_y;
    for (int64_t t = 0; t < gemm_tiles_of(a.size(0), tile); ++t) {
      const int64_t i0 = t * tile, rows = std::min(tile, a.size(0) - i0);
      const GemmOperand a_rows = oa.rows(i0, rows);
      at::Tensor hb = accumulator.narrow(0, 0, rows * d).view({rows, d});
      hb.zero_();
      at::Tensor sums = row_sums.narrow(0, 0, rows);
      sums.zero_();
      for (int64_t u = 0; u < gemm_tiles_of(b.size(0), tile); ++u) {
        const int64_t j0 = u * tile, cols = std::min(tile, b.size(0) - j0);
        const GemmOperand b_rows = ob.rows(j0, cols);
        at::Tensor p = products.narrow(0, 0, rows * cols).view({rows, cols});
        gemm_products(p, a_rows, b_rows);
        at::Tensor h = slopes.narrow(0, 0, rows * cols).view({rows, cols});
        GemmTileParams<T> params = gemm_tile_params<T>(spec, p, in, pass.a_is_x, pass.b_is_x, i0, j0,
                                                       same && t == u);
        params.h = h.mutable_data_ptr<T>();
        params.row_sums = sums.mutable_data_ptr<double>();
        dispatch_enum(spec.kernel, [&](auto k) {
          constexpr Kernel K = decltype(k)::value;
          if constexpr (K == Kernel::Rbf || K == Kernel::Polynomial) {
            R::template launch<gemm_tile_slopes_kernel<K, T>>(gemm_blocks_of(rows), kGemmThreads, stream, params);
          }
        });
        gemm_apply(hb, GemmOperand::of(h, precision), b_rows);
      }
      const GemmFinishParams<T> finish{.a = a.const_data_ptr<T>() + i0 * d, .hb = hb.const_data_ptr<T>(),
                                       .row_sums = sums.const_data_ptr<double>(), .rows = rows, .d = d,
                                       .grad_out = grad_out.const_data_ptr<T>(), .coef = pass.coef,
                                       .distance = distance, .grad = grad.mutable_data_ptr<T>() + i0 * d};
      const int64_t blocks = std::min<int64_t>(1024, (rows * d + kGemmThreads - 1) / kGemmThreads);
      R::template launch<gemm_finish_rows_kernel<T>>(static_cast<int>(std::max<int64_t>(1, blocks)), kGemmThreads,
                                                      stream, finish);
    }
  }
  return true;
}

}  // namespace
}  // namespace fastgan::mmd
