// The CUDA runtime policy of the kernel headers (<family>_kernels.cuh): the few calls that differ between a real
// GPU and the SIMT emulator (simt/runtime.h, the same interface): the device guard, the current stream, the
// <<<>>> launch and its error check, the occupancy query, workspace and ticket memory (cub's select pass is in
// cuda_select.cuh). Everything else a launch computes (grids, partitions, alignment, parameters) is in the kernel
// header, shared.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

namespace fastgan::cuda {

struct Runtime {
  using Stream = c10::cuda::CUDAStream;
  using Guard = c10::cuda::CUDAGuard;

  static Stream current_stream(c10::DeviceIndex device = -1) { return c10::cuda::getCurrentCUDAStream(device); }

  template <auto kKernel, class... Args>
  static void launch(dim3 grid, dim3 block, const Stream& stream, const Args&... args) {
    kKernel<<<grid, block, 0, stream.stream()>>>(args...);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  // The number of blocks of kKernel (launched with `threads` threads and no dynamic shared memory) that the
  // current device runs at once: the size of a persistent grid. Cached per kernel and device.
  template <auto kKernel>
  static int resident_blocks(int threads) {
    constexpr int kMaxDevices = 64;
    static int cached[kMaxDevices] = {};  // 0: not yet known (a benign race: every writer stores the same value)
    int device = 0;
    C10_CUDA_CHECK(cudaGetDevice(&device));
    if (device < kMaxDevices && cached[device] > 0) return cached[device];
    int sms = 0, per_sm = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kKernel, threads, 0));
    const int blocks = sms * per_sm > 0 ? sms * per_sm : 1;
    if (device < kMaxDevices) cached[device] = blocks;
    return blocks;
  }

  static at::Tensor workspace(int64_t bytes, const at::TensorOptions& options) {
    return at::empty({bytes}, options.dtype(at::kByte));
  }

  // A zeroed ticket counter for launches on `stream`. In eager mode one counter per (device, stream) is kept for
  // the process's life and reused: last_block_done leaves it at 0, and launches on one stream run in order, so no
  // memset (a separate stream operation of ~1-2 us) is needed per launch. While the stream is being captured into
  // a CUDA graph, a fresh counter is allocated and zeroed in the graph (`keep_alive` holds it): a replay may run on
  // another stream, concurrently with eager launches.
  static unsigned int* stream_ticket(const Stream& stream, at::Tensor& keep_alive) {
    const auto options = at::TensorOptions(stream.device()).dtype(at::kInt);
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    C10_CUDA_CHECK(cudaStreamIsCapturing(stream.stream(), &capture));
    if (capture != cudaStreamCaptureStatusNone) {
      keep_alive = at::empty({1}, options);
      C10_CUDA_CHECK(cudaMemsetAsync(keep_alive.mutable_data_ptr(), 0, sizeof(unsigned int), stream.stream()));
      return static_cast<unsigned int*>(keep_alive.mutable_data_ptr());
    }
    // Leaked on purpose: CUDA memory must not be freed by static destructors after the runtime has shut down.
    static auto* counters = new std::map<std::pair<int, int64_t>, at::Tensor>();
    static std::mutex mutex;
    const std::lock_guard<std::mutex> lock(mutex);
    at::Tensor& counter = (*counters)[{stream.device_index(), stream.id()}];
    if (!counter.defined()) counter = at::zeros({1}, options);  // on the current stream, which is `stream`
    return static_cast<unsigned int*>(counter.mutable_data_ptr());
  }
};

}  // namespace fastgan::cuda
