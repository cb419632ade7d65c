// Deterministic block reductions: a fixed shuffle tree inside each warp, then the same fixed shuffle tree in warp 0
// over the warps' results. The tree's shape depends only on the block size, and there are no float atomics, so the
// same input gives the same bits on every run.
#pragma once

#include <cuda_runtime.h>

namespace fastgan::cuda {

constexpr int kWarp = 32;

// Sums each of v[0..N) over a block of kBlockThreads threads (the launch's block size; checked at compile time to be
// whole warps, as the full-mask shuffles need, and at most 32 warps, as warp 0's second tree needs). The totals are
// valid in thread 0. Every thread of the block must call it.
template <int kBlockThreads, int N, class T>
__device__ __forceinline__ void block_sum(T (&v)[N]) {
  static_assert(kBlockThreads % kWarp == 0 && kBlockThreads <= kWarp * kWarp,
                "block_sum: the block must be whole warps, at most 1024 threads");
  constexpr int warps = kBlockThreads / kWarp;
  __shared__ T warp_sums[N][kWarp];
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
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
