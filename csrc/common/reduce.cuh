// Deterministic block reductions: a fixed shuffle tree inside each warp, then warp 0 adds the warps' results in
// order. No atomics on floats, so the same input gives the same bits on every run.
#pragma once

#include <cuda_runtime.h>

namespace fastgan::cuda {

constexpr int kWarp = 32;

// Sums each of v[0..N) over the block; the totals are valid in thread 0. Every thread of the block must call it.
template <int N, class T>
__device__ __forceinline__ void block_sum(T (&v)[N]) {
  __shared__ T warp_sums[N][kWarp];
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  const int warps = (blockDim.x + kWarp - 1) / kWarp;
#pragma unroll
  for (int k = 0; k < N; ++k) {
#pragma unroll
    for (int offset = kWarp / 2; offset > 0; offset /= 2) v[k] += __shfl_down_sync(0xffffffffu, v[k], offset);
  }
  if (lane == 0) {
#pragma unroll
    for (int k = 0; k < N; ++k) warp_sums[k][warp] = v[k];
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int k = 0; k < N; ++k) {
      v[k] = lane < warps ? warp_sums[k][lane] : T(0);
#pragma unroll
      for (int offset = kWarp / 2; offset > 0; offset /= 2) v[k] += __shfl_down_sync(0xffffffffu, v[k], offset);
    }
  }
  __syncthreads();  // warp_sums may be reused by a second call
}

}  // namespace fastgan::cuda
