// The emulator's own test kernels (tests/test_simt.py): collectives and barriers used correctly, with the results
// CUDA documents for them, and each kind of misuse the emulator must report instead of hanging.
#include <ATen/ATen.h>

#include <map>

#include "control.h"
#include "runtime.h"

namespace fastgan::simt {
namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kPerThread = 8;

// 2 warps; thread t writes out[8 t ..]: every shuffle kind and width, a ballot, disjoint half-warp shuffles at two
// call sites (legal: each mask's lanes meet at one site), shared memory across a barrier, a shuffled double.
__global__ void simt_collectives_kernel(int32_t* out) {
  __shared__ int squares[64];
  const int t = threadIdx.x, lane = t % 32;
  int32_t* mine = out + t * kPerThread;
  mine[0] = __shfl_xor_sync(kFull, lane, 1);
  mine[1] = __shfl_up_sync(kFull, lane, 1, 8);
  mine[2] = __shfl_down_sync(kFull, lane, 2, 16);
  mine[3] = __shfl_sync(kFull, lane * 10, 7);
  mine[4] = static_cast<int32_t>(__ballot_sync(kFull, lane % 3 == 0));
  if (lane < 16) {
    mine[5] = __shfl_sync(0x0000ffffu, lane, 15 - lane);
  } else {
    mine[5] = __shfl_sync(0xffff0000u, lane, 47 - lane);
  }
  __syncwarp();
  squares[t] = t * t;
  __syncthreads();
  mine[6] = squares[63 - t];
  mine[7] = static_cast<int32_t>(2.0 * __shfl_down_sync(kFull, lane + 0.5, 1));
}

__global__ void simt_exit_before_barrier_kernel(int32_t* out) {
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void simt_divergent_barrier_kernel(int32_t* out) {
  if (threadIdx.x % 2 == 0) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void simt_exited_lane_shuffle_kernel(int32_t* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_sync(kFull, static_cast<int>(threadIdx.x), 0);
}

__global__ void simt_crossed_shuffles_kernel(int32_t* out) {
  const int lane = threadIdx.x % 32;
  if (lane < 16) {
    out[threadIdx.x] = __shfl_sync(kFull, lane, 0);
  } else {
    out[threadIdx.x] = __shfl_sync(kFull, lane, 31);
  }
}

// 3 threads, each waiting for a pair that never meets: no arrival alone shows the cycle, the scheduler does.
__global__ void simt_deadlock_kernel(int32_t* out) {
  const int lane = threadIdx.x;
  if (lane == 0) out[0] = __shfl_sync(0x3u, lane, 1);
  if (lane == 1) out[1] = __shfl_sync(0x6u, lane, 2);
  if (lane == 2) out[2] = __shfl_sync(0x5u, lane, 0);
}

// Spins while out[0] != 0: an endless loop for the watchdog, or (out[0] == 0) a launch that ends at once.
__global__ void simt_runaway_kernel(int32_t* out) {
  const volatile int32_t* spin = out;
  while (spin[0] != 0) {
  }
  out[1] = 1;
}

}  // namespace

void selftest(const std::string& name, int32_t* out, int64_t count) {
  using Launch = void (*)(int32_t*);
  static const std::map<std::string, Launch> kKernels{
      {"collectives", [](int32_t* o) { Runtime::launch<simt_collectives_kernel>(1, 64, Stream{}, o); }},
      {"exit_before_barrier", [](int32_t* o) { Runtime::launch<simt_exit_before_barrier_kernel>(2, 64, Stream{}, o); }},
      {"divergent_barrier", [](int32_t* o) { Runtime::launch<simt_divergent_barrier_kernel>(1, 64, Stream{}, o); }},
      {"exited_lane_shuffle", [](int32_t* o) { Runtime::launch<simt_exited_lane_shuffle_kernel>(1, 32, Stream{}, o); }},
      {"crossed_shuffles", [](int32_t* o) { Runtime::launch<simt_crossed_shuffles_kernel>(1, 32, Stream{}, o); }},
      {"deadlock", [](int32_t* o) { Runtime::launch<simt_deadlock_kernel>(1, 3, Stream{}, o); }},
      {"runaway", [](int32_t* o) { Runtime::launch<simt_runaway_kernel>(1, 1, Stream{}, o); }},
  };
  const auto found = kKernels.find(name);
  TORCH_CHECK(found != kKernels.end(), "fastgan SIMT emulator: no selftest kernel '", name, "'");
  TORCH_CHECK(count >= 64 * kPerThread, "fastgan SIMT emulator: selftest needs ", 64 * kPerThread, " outputs");
  found->second(out);
}

}  // namespace fastgan::simt
