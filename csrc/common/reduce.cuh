// Deterministic block reductions: a fixed shuffle tree inside each warp, then the same fixed shuffle tree in warp 0
// over the warps' results. The tree's shape depends only on the block size, and there are no float atomics, so the
// same input gives the same bits on every run.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <cstdint>

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

// One launch, deterministic: the grid's sum of each block's totals v[0..N) (valid in thread 0 on entry, as after
// block_sum). Each block stores its totals in partials[block * N ..], and the last block to finish (an integer
// ticket, no float atomics) adds every block's partials in a fixed order: a fixed strided share per thread, then
// block_sum's fixed tree. So the bits depend only on the grid size, never on which block finishes last. Returns true
// in the last block only, where thread 0's v then holds the grid totals; every thread of every block must call it.
template <int kBlockThreads, int N, class T>
__device__ __forceinline__ bool grid_sum(T (&v)[N], T* partials, unsigned int* blocks_done) {
  __shared__ bool is_last;
  if (threadIdx.x == 0) {
#pragma unroll
    for (int k = 0; k < N; ++k) partials[blockIdx.x * N + k] = v[k];
    __threadfence();  // the partials are visible to every block before the ticket says so
    is_last = atomicAdd(blocks_done, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!is_last) return false;  // block-uniform
  __threadfence();
#pragma unroll
  for (int k = 0; k < N; ++k) v[k] = T(0);
  for (unsigned block = threadIdx.x; block < gridDim.x; block += blockDim.x) {
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] += __ldcg(&partials[block * N + k]);  // from L2, not a stale L1 line
  }
  block_sum<kBlockThreads>(v);
  return true;
}

// The device memory grid_sum needs for `blocks` blocks of N totals of type T: the partials, then the ticket counter,
// zeroed on `stream` (only the counter needs it). Keep `storage` alive until the launch is enqueued.
template <class T>
struct GridSumWorkspace {
  at::Tensor storage;
  T* partials = nullptr;
  unsigned int* blocks_done = nullptr;
};

template <class T>
GridSumWorkspace<T> grid_sum_workspace(int64_t blocks, int n, const at::TensorOptions& options, cudaStream_t stream) {
  const int64_t partial_bytes = blocks * n * static_cast<int64_t>(sizeof(T));
  GridSumWorkspace<T> w;
  w.storage = at::empty({partial_bytes + 16}, options.dtype(at::kByte));
  char* base = static_cast<char*>(w.storage.mutable_data_ptr());
  w.partials = reinterpret_cast<T*>(base);
  w.blocks_done = reinterpret_cast<unsigned int*>(base + partial_bytes);
  C10_CUDA_CHECK(cudaMemsetAsync(w.blocks_done, 0, sizeof(unsigned int), stream));
  return w;
}

}  // namespace fastgan::cuda
