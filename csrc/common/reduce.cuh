// Deterministic block reductions: a fixed shuffle tree inside each warp, then the same fixed shuffle tree in warp 0
// over the warps' results. The tree's shape depends only on the block size, and there are no float atomics, so the
// same input gives the same bits on every run.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "device.cuh"

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

// The grid's ticket: every block calls it once after storing its partials; true in the last block to arrive (the
// partials of every block are then visible to it). That block resets the counter to 0, so a counter can be reused
// by the next launch on the same stream (stream_ticket). Every thread of the block must call it.
__device__ __forceinline__ bool last_block_done(unsigned int* blocks_done) {
  __shared__ bool is_last;
  if (threadIdx.x == 0) {
    __threadfence();  // this block's partials are visible to every block before the ticket says so
    is_last = atomicAdd(blocks_done, 1u) == gridDim.x - 1;
    if (is_last) *blocks_done = 0;  // every other block has taken its ticket
  }
  __syncthreads();
  if (is_last) __threadfence();
  return is_last;  // block-uniform
}

// v[k] = the sum of partials[p * N + k] over p in [0, count), in a fixed order: a fixed strided share per thread,
// then block_sum's fixed tree; valid in thread 0. The bits depend only on count and kBlockThreads.
template <int kBlockThreads, int N, class T>
__device__ __forceinline__ void sum_partials(T (&v)[N], const T* partials, int64_t count) {
#pragma unroll
  for (int k = 0; k < N; ++k) v[k] = T(0);
  for (int64_t part = threadIdx.x; part < count; part += kBlockThreads) {
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] += __ldcg(&partials[part * N + k]);  // from L2, not a stale L1 line
  }
  block_sum<kBlockThreads>(v);
}

// One launch, deterministic: the grid's sum of each block's totals v[0..N) (valid in thread 0 on entry, as after
// block_sum). Each block stores its totals in partials[block * N ..], and the last block to finish (an integer
// ticket, no float atomics) adds every block's partials with sum_partials. So the bits depend only on the grid
// size, never on which block finishes last. Returns true in the last block only, where thread 0's v then holds the
// grid totals; every thread of every block must call it.
template <int kBlockThreads, int N, class T>
__device__ __forceinline__ bool grid_sum(T (&v)[N], T* partials, unsigned int* blocks_done) {
  if (threadIdx.x == 0) {
#pragma unroll
    for (int k = 0; k < N; ++k) partials[blockIdx.x * N + k] = v[k];
  }
  if (!last_block_done(blocks_done)) return false;
  sum_partials<kBlockThreads>(v, partials, gridDim.x);
  return true;
}

// The device memory grid_sum needs for `blocks` partials of N totals of type T, and the ticket counter of the
// current stream (which must be `stream`), from the runtime policy R's stream_scratch (cuda_runtime.cuh,
// simt/runtime.h): in eager mode one buffer per stream, reused by every launch without an allocation or a memset
// (the last block resets the ticket in-kernel), and under CUDA graph capture the graph's own. The partials are
// scratch for ONE launch: the next launch on the stream may overwrite them. Keep the workspace alive until the
// launch is enqueued.
template <class T>
struct GridSumWorkspace {
  at::Tensor storage;
  T* partials = nullptr;
  unsigned int* blocks_done = nullptr;
};

template <class R, class T>
GridSumWorkspace<T> grid_sum_workspace(int64_t blocks, int n, const at::TensorOptions& /*options*/,
                                       const typename R::Stream& stream) {
  GridSumWorkspace<T> w;
  const auto scratch = R::stream_scratch(stream, blocks * n * static_cast<int64_t>(sizeof(T)), w.storage);
  w.partials = static_cast<T*>(scratch.bytes);
  w.blocks_done = scratch.ticket;
  return w;
}

}  // namespace fastgan::cuda
