// CUDA MMD: a warp per row a of one sample set, sweeping all rows b of a set. Lanes take 32 rows b at a time and
// compute their squared distances (the row a lives in registers, its coordinate k in lane k % 32, broadcast by
// shuffles). Forward: ONE launch for the three pair sums, each warp's sum reduced in a fixed order and the
// blocks' sums added by the last block (no float atomics: deterministic). Backward: ONE launch; the lanes then
// split the coordinates, accumulating sum_b h (a_k - b_k) in registers, so d <= 32 * kMaxChunks on CUDA.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../common/reduce.cuh"
#include "mmd_ops.h"

namespace fastgan::mmd {
namespace {

using at::Tensor;

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kMaxChunks = 8;  // coordinates per lane: d <= 256
constexpr unsigned kFull = 0xffffffffu;

template <class T>
struct Sets {
  const T* x;
  const T* y;
  int64_t n, m, d;
};

// The row's coordinates k = lane + 32 c, in registers.
template <class T>
__device__ __forceinline__ void load_row(const T* row, int64_t d, int lane, T (&a)[kMaxChunks]) {
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    const int64_t k = lane + kWarp * c;
    a[c] = k < d ? row[k] : T(0);
  }
}

// ||a - b||^2 for this lane's row b (or 0 when the lane has none), a spread over the warp.
template <class T>
__device__ __forceinline__ T lane_distance(const T (&a)[kMaxChunks], const T* b_row, bool has_b, int64_t d) {
  T d2 = 0;
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    if (kWarp * c >= d) break;
    const int64_t width = d - kWarp * c < kWarp ? d - kWarp * c : kWarp;
    for (int64_t l = 0; l < width; ++l) {
      const T ak = __shfl_sync(kFull, a[c], static_cast<int>(l));
      if (has_b) {
        const T diff = ak - b_row[kWarp * c + l];
        d2 += diff * diff;
      }
    }
  }
  return d2;
}

template <class T>
struct ForwardParams {
  Sets<T> s;                       // x [n, d], y [m, d]
  Bandwidths bw;                   // the kernel's per-bandwidth coefficients
  double w_xx, w_yy, w_xy;         // the estimator's weights of the three pair sums
  double diag;                     // subtracted at the end: the diagonal terms the unbiased estimator drops
  T* out;                          // 0-d MMD^2
  double* partials;                // [gridDim.x], cuda::grid_sum's workspace
  unsigned int* blocks_done;       // zeroed before the launch
};

template <Kernel K, class T>
__global__ void __launch_bounds__(kWarp * kWarpsPerBlock) mmd_forward_kernel(ForwardParams<T> p) {
  const Sets<T>& s = p.s;
  const Bandwidths& bw = p.bw;
  const double w_xx = p.w_xx, w_yy = p.w_yy, w_xy = p.w_xy;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  // blocks [0, bx): x vs x; [bx, 2 bx): x vs y; [2 bx, 2 bx + by): y vs y
  const int64_t bx = (s.n + kWarpsPerBlock - 1) / kWarpsPerBlock;
  int64_t block = blockIdx.x;
  const T* rows = s.x;
  const T* others = s.x;
  int64_t count = s.n, other_count = s.n;
  double weight = w_xx;
  if (block >= 2 * bx) {
    block -= 2 * bx;
    rows = others = s.y;
    count = other_count = s.m;
    weight = w_yy;
  } else if (block >= bx) {
    block -= bx;
    others = s.y;
    other_count = s.m;
    weight = -2.0 * w_xy;
  }
  const int64_t i = block * kWarpsPerBlock + warp;
  double sum = 0;
  if (i < count) {  // the whole warp takes this branch together
    T a[kMaxChunks];
    load_row(rows + i * s.d, s.d, lane, a);
    for (int64_t j0 = 0; j0 < other_count; j0 += kWarp) {
      const int64_t j = j0 + lane;
      const bool has_b = j < other_count;
      const T d2 = lane_distance(a, others + (has_b ? j : 0) * s.d, has_b, s.d);
      if (has_b) sum += static_cast<double>(kernel_value<K>(d2, bw));
    }
  }
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) sum += __shfl_down_sync(kFull, sum, offset);
  __shared__ double warp_sums[kWarpsPerBlock];
  if (lane == 0) warp_sums[warp] = weight * sum;
  __syncthreads();
  double total[1] = {0.0};  // the block's total, in thread 0: its warps in order
  if (threadIdx.x == 0) {
    for (int w = 0; w < kWarpsPerBlock; ++w) total[0] += warp_sums[w];
  }
  if (cuda::grid_sum<kWarp * kWarpsPerBlock>(total, p.partials, p.blocks_done) && threadIdx.x == 0)
    *p.out = static_cast<T>(total[0] - p.diag);
}

template <Kernel K, class T>
__global__ void __launch_bounds__(kWarp * kWarpsPerBlock)
    mmd_backward_kernel(Sets<T> s, Bandwidths bw, const T* grad_out, double coef_same_x, double coef_same_y,
                        double coef_cross, T* grad_x, T* grad_y) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + warp;
  if (row >= s.n + s.m) return;  // whole warps leave together
  const bool in_x = row < s.n;
  const int64_t i = in_x ? row : row - s.n;
  const T* a_row = (in_x ? s.x : s.y) + i * s.d;
  const double g = static_cast<double>(*grad_out);
  T a[kMaxChunks];
  load_row(a_row, s.d, lane, a);
  double acc[kMaxChunks] = {};
  // sweep 0: the row's own set (coefficient 2 w_same); sweep 1: the other set (-2 w_xy)
  for (int sweep = 0; sweep < 2; ++sweep) {
    const bool other_is_x = (sweep == 0) == in_x;
    const T* others = other_is_x ? s.x : s.y;
    const int64_t other_count = other_is_x ? s.n : s.m;
    const double coef = g * (sweep == 0 ? (in_x ? coef_same_x : coef_same_y) : coef_cross);
    for (int64_t j0 = 0; j0 < other_count; j0 += kWarp) {
      const int64_t j = j0 + lane;
      const bool has_b = j < other_count;
      const T d2 = lane_distance(a, others + (has_b ? j : 0) * s.d, has_b, s.d);
      const double h = has_b ? coef * static_cast<double>(kernel_slope<K>(d2, bw)) : 0.0;
      const int64_t valid = other_count - j0 < kWarp ? other_count - j0 : kWarp;
      for (int64_t l = 0; l < valid; ++l) {  // lanes now split the coordinates
        const double h_l = __shfl_sync(kFull, h, static_cast<int>(l));
        const T* b_row = others + (j0 + l) * s.d;
#pragma unroll
        for (int c = 0; c < kMaxChunks; ++c) {
          const int64_t k = lane + kWarp * c;
          if (k < s.d) acc[c] += h_l * static_cast<double>(a[c] - b_row[k]);
        }
      }
    }
  }
  T* out = (in_x ? grad_x : grad_y) + i * s.d;
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    const int64_t k = lane + kWarp * c;
    if (k < s.d) out[k] = static_cast<T>(acc[c]);
  }
}

void check_cuda_dimension(const Tensor& x) {
  TORCH_CHECK_VALUE(x.size(1) <= kWarp * kMaxChunks, "fastgan.mmd: on CUDA the dimension d must be <= ",
                    kWarp * kMaxChunks, ", got ", x.size(1), " (the CPU kernel has no limit)");
}

Tensor mmd_forward(const Tensor& x_in, const Tensor& y_in, at::ArrayRef<double> bandwidths, c10::string_view kernel,
                   bool unbiased) {
  const MmdSpec spec = make_spec(x_in, y_in, bandwidths, kernel, unbiased);
  check_cuda_dimension(x_in);
  const Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const c10::cuda::CUDAGuard guard(x.device());
  auto stream = c10::cuda::getCurrentCUDAStream();
  const int64_t bx = (x.size(0) + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const int64_t by = (y.size(0) + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const int64_t blocks = 2 * bx + by;
  Tensor out = at::empty({}, x.options());
  const auto workspace = cuda::grid_sum_workspace<double>(blocks, 1, x.options(), stream);
  const double diag = spec.w_xx * spec.diag_x + spec.w_yy * spec.diag_y;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd_cuda", [&] {
    const Sets<scalar_t> sets{x.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(), x.size(0), y.size(0),
                              x.size(1)};
    dispatch_kernel(spec.kernel, [&](auto k) {
      const ForwardParams<scalar_t> p{sets, spec.bw, spec.w_xx, spec.w_yy, spec.w_xy, diag,
                                      out.mutable_data_ptr<scalar_t>(), workspace.partials, workspace.blocks_done};
      mmd_forward_kernel<decltype(k)::value, scalar_t><<<blocks, kWarp * kWarpsPerBlock, 0, stream>>>(p);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return out;
}

std::tuple<Tensor, Tensor> mmd_backward(const Tensor& grad, const Tensor& x_in, const Tensor& y_in,
                                        at::ArrayRef<double> bandwidths, c10::string_view kernel, bool unbiased) {
  const MmdSpec spec = make_spec(x_in, y_in, bandwidths, kernel, unbiased);
  check_cuda_dimension(x_in);
  const Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const Tensor g = grad.to(x.scalar_type()).contiguous();
  const c10::cuda::CUDAGuard guard(x.device());
  Tensor grad_x = at::empty_like(x), grad_y = at::empty_like(y);
  const int64_t blocks = (x.size(0) + y.size(0) + kWarpsPerBlock - 1) / kWarpsPerBlock;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd_backward_cuda", [&] {
    const Sets<scalar_t> sets{x.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(), x.size(0), y.size(0),
                              x.size(1)};
    dispatch_kernel(spec.kernel, [&](auto k) {
      mmd_backward_kernel<decltype(k)::value, scalar_t>
          <<<blocks, kWarp * kWarpsPerBlock, 0, c10::cuda::getCurrentCUDAStream()>>>(
              sets, spec.bw, g.const_data_ptr<scalar_t>(), 2.0 * spec.w_xx, 2.0 * spec.w_yy, -2.0 * spec.w_xy,
              grad_x.mutable_data_ptr<scalar_t>(), grad_y.mutable_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {grad_x, grad_y};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CUDA, m) {
  m.impl("mmd", &mmd_forward);
  m.impl("mmd_backward", &mmd_backward);
}

}  // namespace fastgan::mmd
