// The CUDA MMD kernels and launches, for both builds: nvcc compiles them for the GPU (mmd_cuda.cu) and the host
// compiler for the SIMT emulator (mmd_simt.cpp); see common/device.cuh.
// CUDA MMD, tiled like a GEMM. A block computes the pair statistics (d2 or dot products) of a tile of rows of one
// set against a tile of rows of the other: the d coordinates are swept in slices staged in shared memory, and each
// thread accumulates a few pairs in registers (rows ty + 16 r, columns tx + 16 c of the tile: conflict-free shared
// reads). Any d; memory O((n + m) d).
//
// Forward: ONE launch over every tile of the three pair sums. A same-set sum visits only the tiles on and above
// the diagonal and counts the tiles above it twice. Each block's sum is formed in double in a fixed order and the
// blocks' sums are added by cuda::grid_sum (no float atomics: the same bits on every run).
// Backward: ONE launch; a block owns a tile of rows of x or y (so it alone writes their gradient rows) and sweeps
// the tiles of both sets: the slopes h of a tile go to shared memory, then the gradient is accumulated over that
// tile's rows in column chunks and added to the output rows. Each gradient element is written by one thread in a
// fixed order: deterministic. A same-set pair's statistic is computed twice, once by each row's block.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <climits>
#include <cmath>

#include "../common/device.cuh"
#include "../common/engine.h"
#include "../common/reduce.cuh"
#include "mmd_gemm.cuh"
#include "mmd_ops.h"

namespace fastgan::mmd {
namespace {

using at::Tensor;

constexpr int kSide = 16;                   // a block is kSide x kSide threads
constexpr int kThreads = kSide * kSide;
constexpr int kSlice = 16;                  // coordinates staged in shared memory per step of the d sweep
constexpr int kPad = 2;                     // shared rows of kTile + 2: the transposing stores hit distinct banks

// Pairs per thread, rows x columns, in the forward tiles: 8 x 8 in float (16 shared loads per 128 FP instructions),
// 4 x 4 in double (register pressure).
template <class T>
constexpr int kForwardPairs = sizeof(T) == 4 ? 8 : 4;
// The backward's tiles: 32 rows (2 per thread) against 64 (4 per thread); the gradient is accumulated in chunks of
// kChunk<T> columns (4 per thread in float, 2 in double: shared memory stays under the 48 KiB static limit).
constexpr int kBackwardRowPairs = 2;
constexpr int kBackwardColPairs = 4;
template <class T>
constexpr int kChunk = sizeof(T) == 4 ? 64 : 32;

// The staged slices of a kRows x kSlice block of A and a kCols x kSlice block of B, stored transposed.
template <class T, int kRows, int kCols>
struct Slices {
  T a[kSlice][kRows + kPad];
  T b[kSlice][kCols + kPad];
};

// rows [row0, row0 + kRows) x coordinates [k0, k0 + kSlice) of a [count, d] into dst[k][row], zero outside.
template <class T, int kRows>
__device__ __forceinline__ void stage_slice(const T* __restrict__ src, int64_t count, int64_t row0, int64_t d,
                                            int64_t k0, T (*dst)[kRows + kPad]) {
  for (int e = threadIdx.x; e < kRows * kSlice; e += kThreads) {
    const int row = e / kSlice, kk = e % kSlice;  // consecutive threads read consecutive coordinates of a row
    const int64_t i = row0 + row, k = k0 + kk;
    dst[kk][row] = i < count && k < d ? __ldg(src + i * d + k) : T(0);
  }
}

// acc[r][c] = the statistic between A row i0 + ty + kSide r and B row j0 + tx + kSide c (rows past the end give
// meaningless values that the caller masks). Every thread of the block must call it; it ends synchronised.
template <Kernel K, class T, int R, int C>
__device__ __forceinline__ void tile_statistics(const T* __restrict__ a, int64_t na, int64_t i0,
                                                const T* __restrict__ b, int64_t nb, int64_t j0, int64_t d,
                                                Slices<T, kSide * R, kSide * C>& s, T (&acc)[R][C]) {
  const int tx = threadIdx.x % kSide, ty = threadIdx.x / kSide;
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int c = 0; c < C; ++c) acc[r][c] = T(0);
  }
  for (int64_t k0 = 0; k0 < d; k0 += kSlice) {
    stage_slice<T, kSide * R>(a, na, i0, d, k0, s.a);
    stage_slice<T, kSide * C>(b, nb, j0, d, k0, s.b);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kSlice; ++kk) {  // the zero padding past d adds 0 to both statistics
      T av[R], bv[C];
#pragma unroll
      for (int r = 0; r < R; ++r) av[r] = s.a[kk][ty + kSide * r];
#pragma unroll
      for (int c = 0; c < C; ++c) bv[c] = s.b[kk][tx + kSide * c];
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int c = 0; c < C; ++c) {
          if constexpr (uses_dot_product<K>) {
            acc[r][c] = math::fma(av[r], bv[c], acc[r][c]);
          } else {
            const T diff = av[r] - bv[c];
            acc[r][c] = math::fma(diff, diff, acc[r][c]);
          }
        }
      }
    }
    __syncthreads();  // the slices are overwritten next
  }
}

// (it, jt) with it <= jt from t in [0, tiles (tiles + 1) / 2), enumerated column by column.
__device__ __forceinline__ void upper_triangle(int64_t t, int64_t& it, int64_t& jt) {
  jt = static_cast<int64_t>((sqrt(8.0 * static_cast<double>(t) + 1.0) - 1.0) / 2.0);
  while ((jt + 1) * (jt + 2) / 2 <= t) ++jt;  // the square root's rounding, either way
  while (jt * (jt + 1) / 2 > t) --jt;
  it = t - jt * (jt + 1) / 2;
}

__host__ __device__ __forceinline__ int64_t triangle(int64_t tiles) { return tiles * (tiles + 1) / 2; }

template <class T>
struct ForwardParams {
  const T* x;                    // [n, d]
  const T* y;                    // [m, d]
  int64_t n, m, d;
  int64_t tiles_x, tiles_y;      // row tiles of x and of y (kSide * kForwardPairs<T> rows each)
  KernelConstants kp;
  double w_xx, w_yy, w_xy;       // the estimator's weights of the three pair sums
  bool skip_diagonal;            // the same-set sums leave out the pairs (i, i)
  T* out;                        // 0-d MMD^2
  double* partials;              // [gridDim.x], cuda::grid_sum's workspace
  unsigned int* blocks_done;     // zeroed before the launch
};

template <Kernel K, class T>
__global__ void __launch_bounds__(kThreads) mmd_forward_kernel(ForwardParams<T> p) {
  constexpr int R = kForwardPairs<T>;
  constexpr int kTile = kSide * R;
  __shared__ Slices<T, kTile, kTile> slices;
  // blocks: the x-x triangle, then the x-y rectangle, then the y-y triangle
  int64_t t = blockIdx.x, it, jt;
  const T *a = p.x, *b = p.x;
  int64_t na = p.n, nb = p.n;
  double weight = p.w_xx;
  bool same = true;
  if (t < triangle(p.tiles_x)) {
    upper_triangle(t, it, jt);
  } else if ((t -= triangle(p.tiles_x)) < p.tiles_x * p.tiles_y) {
    it = t / p.tiles_y;
    jt = t % p.tiles_y;
    b = p.y;
    nb = p.m;
    weight = -2.0 * p.w_xy;
    same = false;
  } else {
    upper_triangle(t - p.tiles_x * p.tiles_y, it, jt);
    a = b = p.y;
    na = nb = p.m;
    weight = p.w_yy;
  }
  const int64_t i0 = it * kTile, j0 = jt * kTile;
  T acc[R][R];
  tile_statistics<K, T, R, R>(a, na, i0, b, nb, j0, p.d, slices, acc);
  const int tx = threadIdx.x % kSide, ty = threadIdx.x / kSide;
  const bool skip_diagonal = same && p.skip_diagonal && it == jt;
  double sum[1] = {0.0};
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int c = 0; c < R; ++c) {
      const int64_t i = i0 + ty + kSide * r, j = j0 + tx + kSide * c;
      if (i < na && j < nb && !(skip_diagonal && i == j)) {
        sum[0] += static_cast<double>(kernel_value<K>(acc[r][c], p.kp));
      }
    }
  }
  cuda::block_sum<kThreads>(sum);
  if (threadIdx.x == 0) sum[0] *= same && it < jt ? 2.0 * weight : weight;  // a tile above the diagonal and its mirror
  if (cuda::grid_sum<kThreads>(sum, p.partials, p.blocks_done) && threadIdx.x == 0) *p.out = static_cast<T>(sum[0]);
}

template <class T>
struct BackwardParams {
  const T* x;                    // [n, d]
  const T* y;                    // [m, d]
  int64_t n, m, d;
  int64_t tiles_x;               // row tiles of x (blocks [0, tiles_x) own x's rows, the rest y's)
  KernelConstants kp;
  const T* grad_out;             // 0-d: the gradient of MMD^2
  double coef_same_x, coef_same_y, coef_cross;  // 2 w_xx, 2 w_yy, -2 w_xy
  bool skip_diagonal;            // the same-set sums leave out the pairs (i, i)
  T* grad_x;                     // [n, d], zeroed before the launch
  T* grad_y;                     // [m, d], zeroed before the launch
};

template <Kernel K, class T>
__global__ void __launch_bounds__(kThreads) mmd_backward_kernel(BackwardParams<T> p) {
  constexpr int R = kBackwardRowPairs, C = kBackwardColPairs;
  constexpr int kRows = kSide * R, kCols = kSide * C;
  constexpr int kChunkCols = kChunk<T>, kChunkPairs = kChunkCols / kSide;
  // The slices are dead while a chunk of B is staged, and the other way round.
  __shared__ union {
    Slices<T, kRows, kCols> slices;
    T b[kCols][kChunkCols + 1];
  } stage;
  __shared__ T h[kRows][kCols + 1];
  const int tx = threadIdx.x % kSide, ty = threadIdx.x / kSide;
  const bool in_x = blockIdx.x < p.tiles_x;
  const int64_t i0 = (in_x ? blockIdx.x : blockIdx.x - p.tiles_x) * int64_t(kRows);
  const T* own = in_x ? p.x : p.y;
  const T* other = in_x ? p.y : p.x;
  const int64_t na = in_x ? p.n : p.m, n_other = in_x ? p.m : p.n;
  T* grad = in_x ? p.grad_x : p.grad_y;
  for (int sweep = 0; sweep < 2; ++sweep) {  // the row's own set, then the other set
    const bool same = sweep == 0;
    const T* b = same ? own : other;
    const int64_t nb = same ? na : n_other;
    // The upstream gradient is read again per sweep rather than held across both: in double, its two registers
    // live over the whole kernel made ptxas spill (-warn-spills, 12-40 bytes on sm_80 and sm_90).
    const double coef =
        static_cast<double>(*p.grad_out) * (same ? (in_x ? p.coef_same_x : p.coef_same_y) : p.coef_cross);
    for (int64_t j0 = 0; j0 < nb; j0 += kCols) {
      T acc[R][C];
      tile_statistics<K, T, R, C>(own, na, i0, b, nb, j0, p.d, stage.slices, acc);
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int c = 0; c < C; ++c) {
          const int64_t i = i0 + ty + kSide * r, j = j0 + tx + kSide * c;
          const bool valid = i < na && j < nb && !(same && p.skip_diagonal && i == j);
          h[ty + kSide * r][tx + kSide * c] = valid ? kernel_slope<K>(acc[r][c], p.kp) : T(0);
        }
      }
      for (int64_t k0 = 0; k0 < p.d; k0 += kChunkCols) {
        for (int e = threadIdx.x; e < kCols * kChunkCols; e += kThreads) {
          const int row = e / kChunkCols, kk = e % kChunkCols;
          const int64_t j = j0 + row, k = k0 + kk;
          stage.b[row][kk] = j < nb && k < p.d ? __ldg(b + j * p.d + k) : T(0);
        }
        __syncthreads();  // h and the chunk of B are visible
        T a_own[R][kChunkPairs], sum[R][kChunkPairs];
#pragma unroll
        for (int r = 0; r < R; ++r) {
#pragma unroll
          for (int c = 0; c < kChunkPairs; ++c) {
            const int64_t i = i0 + ty + kSide * r, k = k0 + tx + kSide * c;
            a_own[r][c] = i < na && k < p.d ? __ldg(own + i * p.d + k) : T(0);
            sum[r][c] = T(0);
          }
        }
        // sum_j h_ij (a_ik - b_jk), as differences (h a_i - sum_j h b_j would cancel far from the origin), or
        // sum_j h_ij b_jk for the polynomial kernel
        for (int jj = 0; jj < kCols; ++jj) {
#pragma unroll
          for (int r = 0; r < R; ++r) {
            const T hv = h[ty + kSide * r][jj];
#pragma unroll
            for (int c = 0; c < kChunkPairs; ++c) {
              const T bv = stage.b[jj][tx + kSide * c];
              sum[r][c] = math::fma(hv, uses_dot_product<K> ? bv : a_own[r][c] - bv, sum[r][c]);
            }
          }
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
#pragma unroll
          for (int c = 0; c < kChunkPairs; ++c) {
            const int64_t i = i0 + ty + kSide * r, k = k0 + tx + kSide * c;
            if (i < na && k < p.d) {
              T& out = grad[i * p.d + k];
              out = static_cast<T>(static_cast<double>(out) + coef * static_cast<double>(sum[r][c]));
            }
          }
        }
        __syncthreads();  // before the next chunk, or the next tile's slices, overwrite the stage
      }
    }
  }
}

// Launches are one-dimensional: the tiles must fit in gridDim.x.
int grid_size(int64_t blocks) {
  TORCH_CHECK_VALUE(blocks <= INT_MAX, "fastgan.mmd: ", blocks, " tiles exceed one CUDA grid");
  return static_cast<int>(blocks);
}

// R: the runtime policy (common/cuda_runtime.cuh or common/simt/runtime.h).
template <class R>
void forward(const MmdSpec& spec, const Tensor& x, const Tensor& y, Tensor& out) {
  const typename R::Guard guard(x.device());
  const auto stream = R::current_stream();
  if (takes_gemm_path(spec, x, y, kCudaGemmMinD)) {
    bool done = false;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd_cuda", [&] {
      done = gemm_forward<R, scalar_t>(spec, x, y, out, stream);
    });
    if (done) return;
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd_cuda", [&] {
    const int64_t tile = kSide * kForwardPairs<scalar_t>;
    const int64_t tiles_x = (x.size(0) + tile - 1) / tile, tiles_y = (y.size(0) + tile - 1) / tile;
    const int blocks = grid_size(triangle(tiles_x) + tiles_x * tiles_y + triangle(tiles_y));
    const auto workspace = cuda::grid_sum_workspace<R, double>(blocks, 1, x.options(), stream);
    const ForwardParams<scalar_t> p{.x = x.const_data_ptr<scalar_t>(), .y = y.const_data_ptr<scalar_t>(),
                                    .n = x.size(0), .m = y.size(0), .d = x.size(1), .tiles_x = tiles_x,
                                    .tiles_y = tiles_y, .kp = spec.params, .w_xx = spec.w_xx, .w_yy = spec.w_yy,
                                    .w_xy = spec.w_xy, .skip_diagonal = spec.skip_diagonal,
                                    .out = out.mutable_data_ptr<scalar_t>(), .partials = workspace.partials,
                                    .blocks_done = workspace.blocks_done};
    dispatch_enum(spec.kernel, [&](auto k) {
      R::template launch<mmd_forward_kernel<decltype(k)::value, scalar_t>>(blocks, kThreads, stream, p);
    });
  });
}

template <class R>
void backward(const MmdSpec& spec, const Tensor& grad, const Tensor& x, const Tensor& y, Tensor& grad_x,
              Tensor& grad_y) {
  const typename R::Guard guard(x.device());
  if (takes_gemm_path(spec, x, y, kCudaGemmMinD)) {
    bool done = false;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd_backward_cuda", [&] {
      done = gemm_backward<R, scalar_t>(spec, grad, x, y, grad_x, grad_y, R::current_stream());
    });
    if (done) return;
  }
  constexpr int64_t kRows = kSide * kBackwardRowPairs;
  const int64_t tiles_x = (x.size(0) + kRows - 1) / kRows, tiles_y = (y.size(0) + kRows - 1) / kRows;
  const int blocks = grid_size(tiles_x + tiles_y);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd_backward_cuda", [&] {
    const BackwardParams<scalar_t> p{.x = x.const_data_ptr<scalar_t>(), .y = y.const_data_ptr<scalar_t>(),
                                     .n = x.size(0), .m = y.size(0), .d = x.size(1), .tiles_x = tiles_x,
                                     .kp = spec.params, .grad_out = grad.const_data_ptr<scalar_t>(),
                                     .coef_same_x = 2.0 * spec.w_xx, .coef_same_y = 2.0 * spec.w_yy,
                                     .coef_cross = -2.0 * spec.w_xy, .skip_diagonal = spec.skip_diagonal,
                                     .grad_x = grad_x.mutable_data_ptr<scalar_t>(),
                                     .grad_y = grad_y.mutable_data_ptr<scalar_t>()};
    dispatch_enum(spec.kernel, [&](auto k) {
      R::template launch<mmd_backward_kernel<decltype(k)::value, scalar_t>>(blocks, kThreads, R::current_stream(),
                                                                            p);
    });
  });
}

// The engine of runtime R: registered by mmd_cuda.cu (CUDA) and mmd_simt.cpp (the SIMT emulator).
template <class R>
const MmdEngine kEngine{&forward<R>, &backward<R>};

}  // namespace

}  // namespace fastgan::mmd
