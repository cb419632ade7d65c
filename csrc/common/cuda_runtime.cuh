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

  // The scratch memory of one grid reduction on `stream` (reduce.cuh: grid_sum_workspace): `bytes` of partials and
  // a zeroed ticket counter. The bytes are scratch for one launch (its blocks write them, its last block reads
  // them), so every launch on one stream may use the same: launches on a stream run in order.
  //
  // Eager mode: NO allocation in the steady state. One buffer per (device, stream) is kept for the process's life
  // and reused, [ticket | pad to 256 bytes | partials]; it grows (rounded up to a power of two, so a few times in
  // all) when a launch needs more. The ticket needs no memset per launch either: last_block_done resets it to 0
  // in-kernel, so the next launch on the stream finds it zeroed; only a new buffer is zeroed, on `stream`, before
  // any launch can use it. A buffer replaced while a launch may still use it is freed to the caching allocator on
  // this stream, which reuses it only for work ordered after that launch; `keep_alive` holds the buffer while the
  // caller enqueues.
  //
  // CUDA graph capture: a fresh buffer, allocated from the graph's private pool at capture (none at replay), with
  // a memset node of its ticket at the head of the captured work. The graph must not bake in the eager buffer: a
  // replay may run on another stream, concurrently with eager launches on this one, and the eager buffer may grow
  // (be freed) after capture. Each replay finds the ticket at 0 (the memset node; and the last block of the
  // previous replay also reset it in-kernel, so a graph whose memset node were dropped would still replay right).
  struct Scratch {
    void* bytes;
    unsigned int* ticket;
  };
  static constexpr int64_t kTicketBytes = 256;  // the partials start 256-byte aligned

  static Scratch stream_scratch(const Stream& stream, int64_t bytes, at::Tensor& keep_alive) {
    const auto options = at::TensorOptions(stream.device()).dtype(at::kByte);
    auto scratch_of = [](const at::Tensor& buffer) {
      auto* base = static_cast<unsigned char*>(buffer.mutable_data_ptr());
      return Scratch{base + kTicketBytes, reinterpret_cast<unsigned int*>(base)};
    };
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    C10_CUDA_CHECK(cudaStreamIsCapturing(stream.stream(), &capture));
    if (capture != cudaStreamCaptureStatusNone) {
      keep_alive = at::empty({kTicketBytes + bytes}, options);
      C10_CUDA_CHECK(cudaMemsetAsync(keep_alive.mutable_data_ptr(), 0, sizeof(unsigned int), stream.stream()));
      return scratch_of(keep_alive);
    }
    // Leaked on purpose: CUDA memory must not be freed by static destructors after the runtime has shut down.
    static auto* buffers = new std::map<std::pair<int, int64_t>, at::Tensor>();
    static std::mutex mutex;
    const std::lock_guard<std::mutex> lock(mutex);
    at::Tensor& buffer = (*buffers)[{stream.device_index(), stream.id()}];
    if (!buffer.defined() || buffer.numel() < kTicketBytes + bytes) {
      int64_t size = 4096;
      while (size < kTicketBytes + bytes) size *= 2;
      buffer = at::empty({size}, options);  // on the current stream, which is `stream`
      C10_CUDA_CHECK(cudaMemsetAsync(buffer.mutable_data_ptr(), 0, sizeof(unsigned int), stream.stream()));
    }
    keep_alive = buffer;
    return scratch_of(buffer);
  }
};

}  // namespace fastgan::cuda
