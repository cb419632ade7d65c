// The CPU sampler kernels, compiled once per ISA (see csrc/common/cpu_isa.h); raw pointers only.
#pragma once

#include <cstdint>

#include "../common/dtype.h"
#include "sampling.h"

namespace fastgan::sampling::cpu {

using fastgan::cpu::DType;

struct FillArgs {
  Dist dist;
  double a, b;      // the distribution's parameters (sampling.h)
  uint64_t seed, stream;
  int64_t start;    // stream index of out[0] (the element offset)
  int64_t count;
  DType dtype;
  void* out;
};

#define FASTGAN_SAMPLING_CPU_KERNELS                                                             \
  void fill(const FillArgs& args);                                                               \
  void fill_words(uint64_t seed, uint64_t stream, int64_t start, int64_t count, int64_t* out);

namespace generic { FASTGAN_SAMPLING_CPU_KERNELS }
namespace avx2 { FASTGAN_SAMPLING_CPU_KERNELS }
namespace avx512 { FASTGAN_SAMPLING_CPU_KERNELS }

}  // namespace fastgan::sampling::cpu
