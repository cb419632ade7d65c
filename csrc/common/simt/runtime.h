// The SIMT runtime policy of the kernel headers (<family>_kernels.cuh): the same calls as the CUDA policy
// (common/cuda_runtime.cuh), answered by the emulator. Tensors are CPU tensors; the emulated device is small
// (config(): 4 SMs x 2 blocks by default), so persistent grids have several blocks and the grid ticket runs.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <source_location>
#include <string>
#include <tuple>

#include "cub.h"
#include "emulator.h"

namespace fastgan::simt {

// The one emulated stream.
struct Stream {
  c10::DeviceIndex device_index() const { return 0; }
  int64_t id() const { return 0; }
};

struct Runtime {
  using Stream = simt::Stream;

  struct Guard {
    explicit Guard(const c10::Device&) {}
  };

  static Stream current_stream(c10::DeviceIndex = -1) { return {}; }

  // kKernel<<<grid, block, 0, stream>>>(args...), emulated; each CUDA thread gets its own copy of the arguments.
  template <auto kKernel, class... Args>
  static void launch(dim3 grid, dim3 block, const Stream&, const Args&... args) {
    static const std::string name = kernel_name_from_signature(std::source_location::current().function_name());
    const std::tuple<Args...> packed(args...);
    simt::launch(name, grid, block,
                 [](const void* p) { std::apply(kKernel, *static_cast<const std::tuple<Args...>*>(p)); }, &packed);
  }

  template <auto kKernel>
  static int resident_blocks(int /*threads*/) {
    return config().sms * config().blocks_per_sm;
  }

  // The scratch of a grid reduction (cuda_runtime.cuh's stream_scratch): like the CUDA policy, one buffer for the
  // stream (per host thread here), reused by every launch and grown when a launch needs more, and the emulator's one ticket counter (which
  // simt::launch checks is back at 0 after every launch). The bytes are refilled with 0xff (NaN in float and
  // double) for every launch: a kernel that reads a partial no block of this launch wrote gets NaN, not a stale
  // value from an earlier launch.
  struct Scratch {
    void* bytes;
    unsigned int* ticket;
  };

  static Scratch stream_scratch(const Stream&, int64_t bytes, at::Tensor& keep_alive) {
    thread_local at::Tensor buffer;  // per host thread: another thread's call cannot refill it under a launch
    if (!buffer.defined() || buffer.numel() < bytes) buffer = at::empty({std::max<int64_t>(bytes, 4096)}, at::kByte);
    std::memset(buffer.mutable_data_ptr(), 0xff, static_cast<size_t>(bytes));
    keep_alive = buffer;
    return Scratch{buffer.mutable_data_ptr(), simt::stream_ticket()};
  }

  // cub::DeviceSelect::If over the items 0 .. n - 1 (simt::DeviceSelect, cub.h).
  template <class Pred>
  static void select_if(void* scratch, size_t& scratch_bytes, int64_t* selected, int64_t* selected_count, int64_t n,
                        const Pred& pred, const Stream&) {
    const SelectStatus status = DeviceSelect::If(scratch, scratch_bytes, CountingIterator<int64_t>{0}, selected,
                                                 selected_count, n, pred);
    TORCH_CHECK(status == SelectStatus::Success, "fastgan SIMT emulator: cub::DeviceSelect::If refused its ",
                scratch == nullptr ? "size query" : "arguments (scratch too small?)");
  }
};

// Fills outputs that a kernel must write entirely with bytes no correct result has: 0xff (NaN) in floating
// tensors, 0xa5 in the others (a negative int64, an invalid bool). A freshly allocated output may hold the right
// answer from an earlier call in its memory; poisoned, a kernel that skips an element shows it.
inline void poison(std::initializer_list<at::Tensor> outputs) {
  for (const at::Tensor& t : outputs) {
    if (!t.defined() || t.numel() == 0) continue;
    TORCH_CHECK(t.is_contiguous(), "fastgan SIMT emulator: poison() takes contiguous outputs");
    std::memset(t.mutable_data_ptr(), at::isFloatingType(t.scalar_type()) ? 0xff : 0xa5, t.nbytes());
  }
}

}  // namespace fastgan::simt
