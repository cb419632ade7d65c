// The gradient penalty's kernels and launches, for both builds: nvcc compiles them for the GPU (penalty_cuda.cu,
// with the CUDA runtime policy) and the host compiler for the SIMT emulator (penalty_simt.cpp); see
// common/device.cuh. Forward: ONE launch; a block per item (a row's chunk of kChunk elements) sums its squares, and
// the last block (cuda::last_block_done's ticket) adds each row's chunks in order, writes the norms and the penalty.
// The partition is a function of the shape alone, so the bits are the same on every GPU. Backward: ONE launch,
// g scaled per row by the factor of its norm, the upstream gradient read on the device.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <algorithm>
#include <cstdint>

#include "../common/device.cuh"
#include "../common/dtype.h"
#include "../common/engine.h"
#include "../common/reduce.cuh"
#include "penalty_ops.h"

namespace fastgan::penalty {
namespace {

using at::Tensor;

constexpr int kThreads = 256;
constexpr int64_t kChunk = 4096;  // elements of a row per item: 16 per thread, summed in float, then in double

struct Items {
  int64_t rows, features, chunks_per_row;

  static Items of(const PenaltySpec& spec) {
    return {.rows = spec.batch, .features = spec.features,
            .chunks_per_row = std::max<int64_t>(1, (spec.features + kChunk - 1) / kChunk)};
  }
  FASTGAN_HD int64_t count() const { return rows * chunks_per_row; }
};

template <class S>
struct ForwardParams {
  const S* grads;             // [rows, features]
  Items items;
  double centre, weight_over_batch;
  S* penalty;                 // 0-d
  Acc<S>* norms;              // [rows]
  double* partials;           // [items]: each item's sum of squares
  unsigned int* blocks_done;  // the stream's ticket
};

template <class S>
__global__ void __launch_bounds__(kThreads) penalty_forward_kernel(ForwardParams<S> p) {
  using T = Acc<S>;
  const Items& items = p.items;
  for (int64_t item = blockIdx.x; item < items.count(); item += gridDim.x) {
    const int64_t row = item / items.chunks_per_row, begin = (item % items.chunks_per_row) * kChunk;
    const int64_t end = begin + kChunk < items.features ? begin + kChunk : items.features;
    const S* __restrict__ g = p.grads + row * items.features;
    T squares = T(0);
    for (int64_t j = begin + threadIdx.x; j < end; j += kThreads) {
      const T v = static_cast<T>(g[j]);
      squares = math::fma(v, v, squares);
    }
    double sum[1] = {static_cast<double>(squares)};
    cuda::block_sum<kThreads>(sum);
    if (threadIdx.x == 0) p.partials[item] = sum[0];
  }
  if (!cuda::last_block_done(p.blocks_done)) return;
  double total[1] = {0.0};
  for (int64_t row = threadIdx.x; row < items.rows; row += kThreads) {
    double s = 0;
    for (int64_t c = 0; c < items.chunks_per_row; ++c) s += __ldcg(&p.partials[row * items.chunks_per_row + c]);
    p.norms[row] = to_acc<S>(math::sqrt(s));
    total[0] += centred_square(s, p.centre);
  }
  cuda::block_sum<kThreads>(total);
  if (threadIdx.x == 0) *p.penalty = static_cast<S>(to_acc<S>(total[0] * p.weight_over_batch));
}

template <class S>
struct BackwardParams {
  const S* grad;          // 0-d: the upstream gradient of the penalty
  const S* grads;         // [rows, features]
  const Acc<S>* norms;    // [rows], the forward's
  Items items;
  Acc<S> centre, weight_over_batch;
  S* out;                 // [rows, features]
};

template <class S>
__global__ void __launch_bounds__(kThreads) penalty_backward_kernel(BackwardParams<S> p) {
  using T = Acc<S>;
  const Items& items = p.items;
  const T upstream = static_cast<T>(*p.grad);
  for (int64_t item = blockIdx.x; item < items.count(); item += gridDim.x) {
    const int64_t row = item / items.chunks_per_row, begin = (item % items.chunks_per_row) * kChunk;
    const int64_t end = begin + kChunk < items.features ? begin + kChunk : items.features;
    const T factor = upstream * gradient_factor(p.norms[row], p.centre, p.weight_over_batch);
    const S* __restrict__ g = p.grads + row * items.features;
    S* __restrict__ out = p.out + row * items.features;
    for (int64_t j = begin + threadIdx.x; j < end; j += kThreads) out[j] = static_cast<S>(factor * static_cast<T>(g[j]));
  }
}

// R: the runtime policy (common/cuda_runtime.cuh or common/simt/runtime.h).
template <class R>
void forward(const PenaltySpec& spec, const Tensor& grads, Tensor& penalty, Tensor& norms) {
  const typename R::Guard guard(grads.device());
  const auto stream = R::current_stream(grads.device().index());
  const Items items = Items::of(spec);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grads.scalar_type(), "gradient_penalty_cuda", [&] {
    using S = scalar_t;
    const auto workspace = cuda::grid_sum_workspace<R, double>(items.count(), 1, grads.options(), stream);
    const ForwardParams<S> p{.grads = grads.const_data_ptr<S>(), .items = items, .centre = spec.centre,
                             .weight_over_batch = spec.weight / static_cast<double>(spec.batch),
                             .penalty = penalty.mutable_data_ptr<S>(), .norms = norms.mutable_data_ptr<Acc<S>>(),
                             .partials = workspace.partials, .blocks_done = workspace.blocks_done};
    constexpr auto kKernel = penalty_forward_kernel<S>;
    const int64_t blocks = std::min<int64_t>(items.count(), R::template resident_blocks<kKernel>(kThreads));
    R::template launch<kKernel>(blocks, kThreads, stream, p);
  });
}

template <class R>
void backward(const PenaltySpec& spec, const Tensor& grad, const Tensor& grads, const Tensor& norms, Tensor& out) {
  const typename R::Guard guard(grads.device());
  const auto stream = R::current_stream(grads.device().index());
  const Items items = Items::of(spec);
  if (spec.features == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grads.scalar_type(), "gradient_penalty_backward_cuda", [&] {
    using S = scalar_t;
    using T = Acc<S>;
    const BackwardParams<S> p{.grad = grad.const_data_ptr<S>(), .grads = grads.const_data_ptr<S>(),
                              .norms = norms.const_data_ptr<T>(), .items = items,
                              .centre = static_cast<T>(spec.centre),
                              .weight_over_batch = static_cast<T>(spec.weight / static_cast<double>(spec.batch)),
                              .out = out.mutable_data_ptr<S>()};
    R::template launch<penalty_backward_kernel<S>>(std::min<int64_t>(items.count(), 65535), kThreads, stream, p);
  });
}

// The engine of runtime R: registered by penalty_cuda.cu (CUDA) and penalty_simt.cpp (the SIMT emulator).
template <class R>
const PenaltyEngine kEngine{&forward<R>, &backward<R>};

}  // namespace
}  // namespace fastgan::penalty
