// The SIMT emulator's host side: launching a kernel compiled against simt.h, and its settings (schedule, emulated
// device size, watchdog). Implemented in simt.cpp; used by the SIMT runtime policy (runtime.h) and control.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "simt.h"

namespace fastgan::simt {

// Which runnable CUDA thread runs next, and in which order the blocks run. LowestFirst resumes the lowest-indexed
// runnable thread (warp 0 runs ahead as far as the barriers let it, so a missing __syncthreads reads stale data
// the same way on every run); HighestFirst the highest (the other side of every race); Random a seeded choice.
enum class Schedule : int8_t { LowestFirst, HighestFirst, Random };

struct Config {
  Schedule schedule = Schedule::LowestFirst;
  uint64_t seed = 0;        // Random's
  int sms = 4;              // the emulated device: a small one, so that persistent grids have several blocks
  int blocks_per_sm = 2;    // the occupancy answer for every kernel
  double watchdog_seconds;  // a launch running longer aborts the process (simt.cpp: kDefaultWatchdogSeconds)
};
Config& config();

// Runs kernel(args) on grid x block emulated threads; `kernel` names it in errors and in the launch record. Raises
// c10::Error (a Python RuntimeError) on a launch that CUDA would refuse and on misuse the emulator detects.
using KernelThunk = void (*)(const void* args);
void launch(std::string_view kernel, dim3 grid, dim3 block, KernelThunk thunk, const void* args);

// The grid reduction's ticket counter of the emulated stream (there is one): every launch must leave it at 0
// (reduce.cuh: the last block resets it), and launch() raises an error naming the kernel that did not.
unsigned int* stream_ticket();

// "ns::kernel_name<args>" from the function name of Runtime::launch<kKernel> (std::source_location): GCC prints
// its template arguments as "[with auto kKernel = ns::kernel_name<args>; ...]", Clang as "[kKernel = &ns::...]".
std::string kernel_name_from_signature(std::string_view signature);

}  // namespace fastgan::simt
