// The CUDA samplers' kernels and launches, for both builds: nvcc compiles them for the GPU (sampling_cuda.cu)
// and the host compiler for the SIMT emulator (sampling_simt.cpp); see common/device.cuh.
// ONE launch per call. Thread j computes Philox block j (4 words -> 4 elements) and writes them, 16 bytes at a
// time for aligned float output. The element offset may live on the device (offset_tensor), so the
// launch covers one extra block of slack and each thread finds its elements from the offset it reads.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../common/device.cuh"
#include "../common/dtype.h"
#include "../common/engine.h"
#include "sampling_ops.h"

namespace fastgan::sampling {
namespace {

using at::Tensor;

constexpr int kThreads = 256;

struct StreamParams {
  uint64_t seed, stream;
  int64_t offset;                // element offset known on the host (checked: offset + count <= 2^63)
  const int64_t* device_offset;  // added to offset when not null (checked in the kernel: philox::device_start)
  int64_t count;
};

template <Dist D, class S, class T = Acc<S>>
__device__ __forceinline__ void block_values(const philox::Words& w, T a, T b, T c, T (&v)[4]) {
  if constexpr (D == Dist::Normal) {
    T z0, z1, z2, z3;
    box_muller(to_uniform<T>(w.w[0], UniformKind::OpenLow), to_uniform<T>(w.w[1], UniformKind::ClosedLow), z0, z1);
    box_muller(to_uniform<T>(w.w[2], UniformKind::OpenLow), to_uniform<T>(w.w[3], UniformKind::ClosedLow), z2, z3);
    v[0] = a + b * z0;
    v[1] = a + b * z1;
    v[2] = a + b * z2;
    v[3] = a + b * z3;
  } else {
    constexpr bool kPrecise = std::is_same_v<T, double>;
#pragma unroll
    for (int k = 0; k < 4; ++k) v[k] = from_uniform<D, kPrecise>(draw_uniform<D, kDigits<S>, T>(w.w[k]), a, b, c);
  }
}

template <Dist D, class S>
__global__ void __launch_bounds__(kThreads) fill_kernel(S* __restrict__ out, StreamParams s, Acc<S> a, Acc<S> b,
                                                        Acc<S> c, bool aligned_out) {
  using T = Acc<S>;
  if (s.count <= 0) return;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t start;
  if (!philox::device_start(s.offset, s.device_offset != nullptr ? *s.device_offset : 0, s.count, start)) {
    // a position outside the stream (see fill_latent): NaN, since a kernel cannot raise
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < s.count; i += stride)
      out[i] = static_cast<S>(CUDART_NAN_F);
    return;
  }
  const int64_t first_block = start / 4, last_block = (start + (s.count - 1)) / 4;
  for (int64_t j = first_block + int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j <= last_block; j += stride) {
    T v[4];
    block_values<D, S>(philox::block(s.seed, s.stream, static_cast<uint64_t>(j)), a, b, c, v);
    const int64_t base = 4 * j - start;  // index in out of the block's first element
    if constexpr (std::is_same_v<S, float>) {
      if (aligned_out && base >= 0 && base + 4 <= s.count && (base & 3) == 0) {
        reinterpret_cast<float4*>(out + base)[0] = make_float4(v[0], v[1], v[2], v[3]);
        continue;
      }
    }
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t i = base + k;
      if (i >= 0 && i < s.count) out[i] = static_cast<S>(v[k]);
    }
  }
}

__global__ void __launch_bounds__(kThreads) words_kernel(int64_t* __restrict__ out, StreamParams s) {
  if (s.count <= 0) return;
  const int64_t start = s.offset;  // checked on the host: the words lie in the stream
  const int64_t first_block = start / 4, last_block = (start + (s.count - 1)) / 4;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t j = first_block + int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j <= last_block; j += stride) {
    const philox::Words w = philox::block(s.seed, s.stream, static_cast<uint64_t>(j));
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t i = 4 * j - start + k;
      if (i >= 0 && i < s.count) out[i] = static_cast<int64_t>(w.w[k]);
    }
  }
}

template <class T>
struct SampleCdfParams {
  const T* cdf;          // [rows, bins], each row non-decreasing
  int64_t rows, bins;
  int64_t n;             // samples per row
  uint64_t seed, stream; // row r draws from stream + r
  int64_t offset;        // index of the first sample within each row's stream
  int64_t* out;          // [rows, n] bin indices
};

// A thread per Philox block of a row's stream: its 4 words are 4 samples (sample i of row r is word offset + i of
// stream + r, on the closed-low uniform grid), so each block is computed once, and the 4 searches are independent
// (their dependent loads overlap).
template <class T>
__global__ void __launch_bounds__(kThreads) sample_cdf_kernel(SampleCdfParams<T> p) {
  const int64_t first_block = p.offset / 4;
  const int64_t blocks_per_row = (p.offset + (p.n - 1)) / 4 - first_block + 1;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t item = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; item < p.rows * blocks_per_row;
       item += stride) {
    const int64_t r = item / blocks_per_row, j = first_block + item % blocks_per_row;
    const philox::Words w = philox::block(p.seed, p.stream + r, static_cast<uint64_t>(j));
    const T* row = p.cdf + r * p.bins;
    int64_t* out = p.out + r * p.n;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t i = 4 * j + k - p.offset;
      if (i >= 0 && i < p.n) out[i] = search_cdf(row, p.bins, to_uniform<T>(w.w[k], UniformKind::ClosedLow));
    }
  }
}

int64_t grid_for(int64_t count) {
  const int64_t blocks_of_four = count / 4 + 2;  // + slack for an offset not known on the host
  return std::max<int64_t>(1, std::min<int64_t>((blocks_of_four + kThreads - 1) / kThreads, 65535 * 4));
}

// R: the runtime policy (common/cuda_runtime.cuh or common/simt/runtime.h).
template <class R>
void fill_random_bits(Tensor& out, uint64_t seed, uint64_t stream, int64_t offset) {
  const typename R::Guard guard(out.device());
  const StreamParams s{.seed = seed, .stream = stream, .offset = offset, .device_offset = nullptr, .count = out.numel()};
  R::template launch<words_kernel>(grid_for(out.numel()), kThreads, R::current_stream(),
                                   out.mutable_data_ptr<int64_t>(), s);
}

template <class R>
void fill_latent(Tensor& out, const LatentSpec& spec, const std::optional<Tensor>& offset_tensor) {
  const typename R::Guard guard(out.device());
  const StreamParams s{.seed = spec.seed, .stream = spec.stream, .offset = spec.offset,
                     .device_offset = offset_tensor.has_value() ? offset_tensor->const_data_ptr<int64_t>() : nullptr,
                     .count = out.numel()};
  const bool aligned = reinterpret_cast<uintptr_t>(out.data_ptr()) % 16 == 0;
  const auto stream_handle = R::current_stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(), "fill_latent_cuda", [&] {
    using S = scalar_t;
    using T = Acc<S>;
    dispatch_enum(spec.dist, [&](auto dist_tag) {
      constexpr Dist D = decltype(dist_tag)::value;
      R::template launch<fill_kernel<D, S>>(grid_for(out.numel()), kThreads, stream_handle,
                                            out.mutable_data_ptr<S>(), s, static_cast<T>(spec.params.a),
                                            static_cast<T>(spec.params.b), static_cast<T>(spec.params.c), aligned);
    });
  });
}

template <class R>
void sample_cdf(const Tensor& cdf, Tensor& out, uint64_t seed, uint64_t stream, int64_t offset) {
  const typename R::Guard guard(out.device());
  const int64_t items = out.size(0) * (out.size(1) / 4 + 2);  // Philox blocks: at most n / 4 + 2 per row
  const int64_t blocks = std::min<int64_t>((items + kThreads - 1) / kThreads, 65535 * 4);
  AT_DISPATCH_FLOATING_TYPES(cdf.scalar_type(), "sample_cdf_cuda", [&] {
    using T = scalar_t;
    const SampleCdfParams<T> p{.cdf = cdf.const_data_ptr<T>(), .rows = out.size(0), .bins = cdf.size(1),
                               .n = out.size(1), .seed = seed, .stream = stream, .offset = offset,
                               .out = out.mutable_data_ptr<int64_t>()};
    R::template launch<sample_cdf_kernel<T>>(blocks, kThreads, R::current_stream(), p);
  });
}

// The engine of runtime R: registered by sampling_cuda.cu (CUDA) and sampling_simt.cpp (the SIMT emulator).
template <class R>
const SamplingEngine kEngine{&fill_random_bits<R>, &fill_latent<R>, &sample_cdf<R>};

}  // namespace

}  // namespace fastgan::sampling
