// The CUDA engine. Forward: ONE launch reads both tensors once, writes the reduced loss and the logged statistics
// (and the per-element losses for reduction='none'). Backward: ONE elementwise launch that reads the upstream
// gradient on the device. No host synchronisation in either; reductions are deterministic (see below).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cmath>
#include <type_traits>

#include "../common/dtype.h"
#include "../common/reduce.cuh"
#include "loss_ops.h"

namespace fastgan::losses {
namespace {

using at::Tensor;


constexpr int kThreads = 256;
constexpr int kUnroll = 4;             // independent loads in flight per thread
constexpr int64_t kPerBlock = 4096;    // elements per block before a second block is used
constexpr int64_t kMaxBlocks = 1024;

// The grid is a function of the element count only (not of the GPU), so the partition, and with it every bit of
// the result, is the same on any device.
int64_t reduction_blocks(int64_t n) { return std::max<int64_t>(1, std::min(kMaxBlocks, (n + kPerBlock - 1) / kPerBlock)); }

template <class S>
struct ForwardParams {
  const S* a;
  const S* b;
  int64_t na, nb;  // Paired: nb pairs, na unused
  Term ta, tb;
  float pair_sign;
  S* per_element;            // Reduction::None, else null
  S* loss;                   // reduced loss (0-d), or null for Reduction::None
  Acc<S>* stats;             // [4]
  Acc<S> loss_weight[2];     // OutputWeights::loss (loss_ops.h)
  Acc<S> stat_weight[4];     // OutputWeights::stats
  Acc<S>* partials;          // [gridDim.x][4] when gridDim.x > 1
  unsigned int* blocks_done; // zeroed before the launch when gridDim.x > 1
};

// Accumulates term(x[i]) over the thread's grid-stride share of [0, n), writing scaled per-element losses if asked.
template <TermKind K, class S, class T>
__device__ __forceinline__ void accumulate_half(const S* __restrict__ x, int64_t n, Term term, S* __restrict__ out,
                                                T& loss_sum, T& score_sum) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const T param = static_cast<T>(term.param), scale = static_cast<T>(term.scale);
  for (int64_t base = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; base < n; base += stride * kUnroll) {
    T v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + u * stride;
      v[u] = i < n ? static_cast<T>(x[i]) : T(0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + u * stride;
      if (i < n) {
        const auto r = TermFn<K>::value(v[u], param);
        loss_sum += r.loss;
        score_sum += r.score;
        if (out != nullptr) out[i] = static_cast<S>(r.loss * scale);
      }
    }
  }
}

template <TermKind K, class S, class T>
__device__ __forceinline__ void accumulate_pairs(const ForwardParams<S>& p, T (&sums)[4]) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const T param = static_cast<T>(p.ta.param), scale = static_cast<T>(p.ta.scale);
  const T sign = static_cast<T>(p.pair_sign);
  for (int64_t base = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; base < p.nb; base += stride * kUnroll) {
    T va[kUnroll], vb[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + u * stride;
      va[u] = i < p.nb ? static_cast<T>(p.a[i]) : T(0);
      vb[u] = i < p.nb ? static_cast<T>(p.b[i]) : T(0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + u * stride;
      if (i < p.nb) {
        const auto r = TermFn<K>::value(sign * (va[u] - vb[u]), param);
        sums[0] += r.loss;
        sums[2] += TermFn<K>::score(va[u]);
        sums[3] += TermFn<K>::score(vb[u]);
        if (p.per_element != nullptr) p.per_element[i] = static_cast<S>(r.loss * scale);
      }
    }
  }
}

template <class S, class T>
__device__ __forceinline__ void write_results(const ForwardParams<S>& p, const T (&sums)[4]) {
  if (p.loss != nullptr) *p.loss = static_cast<S>(sums[0] * p.loss_weight[0] + sums[1] * p.loss_weight[1]);
#pragma unroll
  for (int k = 0; k < 4; ++k) p.stats[k] = sums[k] * p.stat_weight[k];
}

// One launch: block sums, then across blocks cuda::grid_sum (common/reduce.cuh), deterministic; a single block
// (n <= kPerBlock) needs no workspace.
// Occupancy (issue 13, item 5): at the default 37-40 registers a thread, 6 blocks of 256 fit an SM, so the 1024
// blocks of a large input take 1.29 waves on 132 SMs. __launch_bounds__(kThreads, 8) (<= 32 registers) was tried:
// ptxas then spills in the paired float16/bfloat16 and every float64 instantiation (make cuda-check fails on it),
// so the fix is the persistent grid, not a register cap; to be measured on a GPU.
template <TermKind K, class S, bool kPaired>
__global__ void __launch_bounds__(kThreads) loss_forward_kernel(ForwardParams<S> p) {
  using T = Acc<S>;
  T sums[4] = {T(0), T(0), T(0), T(0)};  // loss a, loss b, score a, score b
  if constexpr (kPaired) {
    accumulate_pairs<K>(p, sums);
  } else {
    accumulate_half<K>(p.a, p.na, p.ta, p.per_element, sums[0], sums[2]);
    accumulate_half<K>(p.b, p.nb, p.tb, p.per_element != nullptr ? p.per_element + p.na : nullptr, sums[1], sums[3]);
  }
  cuda::block_sum<kThreads>(sums);
  if (gridDim.x == 1) {
    if (threadIdx.x == 0) write_results(p, sums);
    return;
  }
  if (cuda::grid_sum<kThreads>(sums, p.partials, p.blocks_done) && threadIdx.x == 0) write_results(p, sums);
}

template <class S>
struct BackwardParams {
  const S* grad;  // [0] for a reduced loss, per element for Reduction::None
  bool grad_per_element;
  const S* a;
  const S* b;
  int64_t na, nb;  // Paired: nb pairs
  Term ta, tb;
  float pair_sign;
  Acc<S> coef_a, coef_b;  // scale * reduction weight (the upstream gradient multiplies on the device)
  S* grad_a;
  S* grad_b;
};

template <TermKind K, class S, bool kPaired>
__global__ void __launch_bounds__(kThreads) loss_backward_kernel(BackwardParams<S> p) {
  using T = Acc<S>;
  const int64_t n = kPaired ? p.nb : p.na + p.nb;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const T g0 = p.grad_per_element ? T(0) : static_cast<T>(p.grad[0]);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T g = p.grad_per_element ? static_cast<T>(p.grad[i]) : g0;
    if constexpr (kPaired) {
      const T sign = static_cast<T>(p.pair_sign);
      const T d = g * p.coef_a * TermFn<K>::deriv(sign * (static_cast<T>(p.a[i]) - static_cast<T>(p.b[i])),
                                                   static_cast<T>(p.ta.param));
      p.grad_a[i] = static_cast<S>(sign * d);
      p.grad_b[i] = static_cast<S>(-sign * d);
    } else if (i < p.na) {
      p.grad_a[i] = static_cast<S>(g * p.coef_a * TermFn<K>::deriv(static_cast<T>(p.a[i]), static_cast<T>(p.ta.param)));
    } else {
      const int64_t j = i - p.na;
      p.grad_b[j] = static_cast<S>(g * p.coef_b * TermFn<K>::deriv(static_cast<T>(p.b[j]), static_cast<T>(p.tb.param)));
    }
  }
}

template <class Fn>
void dispatch_dtype(at::ScalarType type, Fn&& fn) {
  switch (type) {
    case at::kFloat: return fn(float{});
    case at::kDouble: return fn(double{});
    case at::kHalf: return fn(at::Half{});
    case at::kBFloat16: return fn(at::BFloat16{});
    default: TORCH_CHECK(false, "fastgan: unsupported dtype ", type);
  }
}

void forward(const LossSpec& spec, const Tensor& a, const Tensor& b, Tensor& loss, Tensor& stats) {
  const c10::cuda::CUDAGuard guard(b.device());
  const bool paired = spec.layout == Layout::Paired;
  const OutputWeights w = output_weights(spec, a, b);
  const int64_t blocks = reduction_blocks(paired ? w.nb : w.na + w.nb);
  auto stream = c10::cuda::getCurrentCUDAStream(b.device().index());
  dispatch_dtype(b.scalar_type(), [&](auto tag) {
    using S = decltype(tag);
    using T = Acc<S>;
    ForwardParams<S> p{};
    p.a = a.defined() ? a.const_data_ptr<S>() : nullptr;
    p.b = b.const_data_ptr<S>();
    p.na = w.na;
    p.nb = w.nb;
    p.ta = spec.a;
    p.tb = spec.b;
    p.pair_sign = spec.pair_sign;
    p.per_element = spec.reduction == Reduction::None ? loss.mutable_data_ptr<S>() : nullptr;
    p.loss = spec.reduction == Reduction::None ? nullptr : loss.mutable_data_ptr<S>();
    p.stats = stats.mutable_data_ptr<T>();
    for (int k = 0; k < 2; ++k) p.loss_weight[k] = static_cast<T>(w.loss[k]);
    for (int k = 0; k < 4; ++k) p.stat_weight[k] = static_cast<T>(w.stats[k]);
    cuda::GridSumWorkspace<T> workspace;
    if (blocks > 1) {
      workspace = cuda::grid_sum_workspace<T>(blocks, 4, b.options(), stream);
      p.partials = workspace.partials;
      p.blocks_done = workspace.blocks_done;
    }
    dispatch_kind(spec.kind, [&](auto kind) {
      constexpr TermKind K = decltype(kind)::value;
      if (paired) {
        loss_forward_kernel<K, S, true><<<blocks, kThreads, 0, stream>>>(p);
      } else {
        loss_forward_kernel<K, S, false><<<blocks, kThreads, 0, stream>>>(p);
      }
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

void backward(const LossSpec& spec, const Tensor& grad, const Tensor& a, const Tensor& b, Tensor& grad_a,
              Tensor& grad_b) {
  const c10::cuda::CUDAGuard guard(b.device());
  const bool paired = spec.layout == Layout::Paired;
  const OutputWeights w = output_weights(spec, a, b);
  const int64_t n = paired ? w.nb : w.na + w.nb;
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>((n + kThreads * kUnroll - 1) / (kThreads * kUnroll), 65535);
  auto stream = c10::cuda::getCurrentCUDAStream(b.device().index());
  dispatch_dtype(b.scalar_type(), [&](auto tag) {
    using S = decltype(tag);
    using T = Acc<S>;
    BackwardParams<S> p{};
    p.grad = grad.const_data_ptr<S>();
    p.grad_per_element = spec.reduction == Reduction::None;
    p.a = a.defined() ? a.const_data_ptr<S>() : nullptr;
    p.b = b.const_data_ptr<S>();
    p.na = w.na;
    p.nb = w.nb;
    p.ta = spec.a;
    p.tb = spec.b;
    p.pair_sign = spec.pair_sign;
    p.coef_a = static_cast<T>(w.grad[0]);
    p.coef_b = static_cast<T>(w.grad[1]);
    p.grad_a = grad_a.defined() ? grad_a.mutable_data_ptr<S>() : nullptr;
    p.grad_b = grad_b.mutable_data_ptr<S>();
    dispatch_kind(spec.kind, [&](auto kind) {
      constexpr TermKind K = decltype(kind)::value;
      if (paired) {
        loss_backward_kernel<K, S, true><<<blocks, kThreads, 0, stream>>>(p);
      } else {
        loss_backward_kernel<K, S, false><<<blocks, kThreads, 0, stream>>>(p);
      }
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

const LossEngine kCudaEngine{&forward, &backward};
const bool kRegistered = (register_cuda_engine(kCudaEngine), true);

}  // namespace
}  // namespace fastgan::losses
