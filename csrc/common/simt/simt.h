// The SIMT emulator's device vocabulary: what a CUDA kernel source takes from nvcc (qualifiers, built-in indices,
// barriers, warp collectives, atomics, cached loads), for the host compiler. A kernel header written for nvcc
// compiles unchanged against it, and simt::launch (simt.cpp) runs the kernel with one fiber per CUDA thread.
// Included instead of <cuda_runtime.h> by common/device.cuh when the compiler is not nvcc.
#pragma once

#include <cstdint>
#include <cstring>
#include <source_location>
#include <string>
#include <type_traits>

// Kernels and device functions are host functions here. always_inline for __forceinline__: a device function of a
// shared header (reduce.cuh) compiled into two SIMT objects with different source (a test-only mutant) must not be
// merged by the linker into one copy.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
// Blocks run one after another on the launching thread, so a block's shared memory can be static storage. (It
// keeps what the previous block left there: GCC ignores section attributes on the statics of templates, so the
// emulator cannot find them to poison them; docs/DESIGN.md lists this among what it cannot see.)
#define __shared__ static

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

#define CUDART_NAN_F __builtin_nanf("")
#define CUDART_NAN __builtin_nan("")

namespace fastgan::simt {

// The built-in coordinates of the running CUDA thread; the scheduler rewrites them at every switch.
struct Coordinates {
  uint3 thread, block;
  dim3 block_dim, grid_dim;
};
extern Coordinates g_coordinates;

enum class Collective : uint8_t { Shfl, ShflUp, ShflDown, ShflXor, Ballot, SyncWarp };

// Switch points: the calling CUDA thread waits there until the barrier or the collective completes (or the launch
// fails with an error naming the kernel, block, thread and call sites).
void syncthreads(const std::source_location& site);
uint64_t warp_collective(Collective kind, unsigned int mask, uint64_t bits, int arg, int width,
                         const std::source_location& site);

template <class T>
T shuffle(Collective kind, unsigned int mask, T value, int arg, int width, const std::source_location& site) {
  static_assert(std::is_trivially_copyable_v<T> && (sizeof(T) == 4 || sizeof(T) == 8),
                "warp shuffles move 4- or 8-byte values");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = warp_collective(kind, mask, bits, arg, width, site);
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

}  // namespace fastgan::simt

#define threadIdx (static_cast<const uint3&>(::fastgan::simt::g_coordinates.thread))
#define blockIdx (static_cast<const uint3&>(::fastgan::simt::g_coordinates.block))
#define blockDim (static_cast<const dim3&>(::fastgan::simt::g_coordinates.block_dim))
#define gridDim (static_cast<const dim3&>(::fastgan::simt::g_coordinates.grid_dim))

inline void __syncthreads(const std::source_location& site = std::source_location::current()) {
  fastgan::simt::syncthreads(site);
}

inline void __syncwarp(unsigned int mask = 0xffffffffu,
                       const std::source_location& site = std::source_location::current()) {
  fastgan::simt::warp_collective(fastgan::simt::Collective::SyncWarp, mask, 0, 0, 32, site);
}

template <class T>
T __shfl_sync(unsigned int mask, T var, int src_lane, int width = 32,
              const std::source_location& site = std::source_location::current()) {
  return fastgan::simt::shuffle(fastgan::simt::Collective::Shfl, mask, var, src_lane, width, site);
}

template <class T>
T __shfl_up_sync(unsigned int mask, T var, unsigned int delta, int width = 32,
                 const std::source_location& site = std::source_location::current()) {
  return fastgan::simt::shuffle(fastgan::simt::Collective::ShflUp, mask, var, static_cast<int>(delta), width, site);
}

template <class T>
T __shfl_down_sync(unsigned int mask, T var, unsigned int delta, int width = 32,
                   const std::source_location& site = std::source_location::current()) {
  return fastgan::simt::shuffle(fastgan::simt::Collective::ShflDown, mask, var, static_cast<int>(delta), width, site);
}

template <class T>
T __shfl_xor_sync(unsigned int mask, T var, int lane_mask, int width = 32,
                  const std::source_location& site = std::source_location::current()) {
  return fastgan::simt::shuffle(fastgan::simt::Collective::ShflXor, mask, var, lane_mask, width, site);
}

inline unsigned int __ballot_sync(unsigned int mask, int predicate,
                                  const std::source_location& site = std::source_location::current()) {
  return static_cast<unsigned int>(
      fastgan::simt::warp_collective(fastgan::simt::Collective::Ballot, mask, predicate != 0, 0, 32, site));
}

// Blocks run one at a time and threads switch only at barriers and collectives, so an atomic is a plain
// read-modify-write and a fence has nothing to order (docs/DESIGN.md: what the emulator cannot see).
template <class T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}

inline void __threadfence() {}

template <class T>
T __ldg(const T* p) {
  return *p;
}

template <class T>
T __ldcg(const T* p) {
  return *p;
}
