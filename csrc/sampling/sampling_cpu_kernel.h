// The CPU sampler kernels, compiled once per ISA (see csrc/common/cpu_isa.h); raw pointers only.
#pragma once

#include <cstdint>

#include "../common/dtype.h"
#include "sampling.h"

namespace fastgan::sampling::cpu {

using fastgan::cpu::DType;

// Draws of a distribution from one stream: out[i] from element start + i.
struct FillParams {
  Dist dist;
  double a, b, c;         // the distribution's parameters (sampling.h: from_uniform; sampling_ops.h: DistConstants)
  uint64_t seed, stream;  // the stream (philox.h)
  int64_t start;          // stream index of out[0] (the element offset)
  int64_t count;          // elements of out
  DType dtype;            // out's element type
  void* out;              // [count]
};

// The raw words of one stream: out[i] = word start + i (a uint32 held in an int64).
struct WordsParams {
  uint64_t seed, stream;  // the stream (philox.h)
  int64_t start;          // word index of out[0]
  int64_t count;          // elements of out
  int64_t* out;           // [count]
};

#define FASTGAN_SAMPLING_CPU_KERNELS                                                             \
  void fill(const FillParams& args);                                                               \
  void fill_words(const WordsParams& args);

namespace generic { FASTGAN_SAMPLING_CPU_KERNELS }
namespace avx2 { FASTGAN_SAMPLING_CPU_KERNELS }
namespace avx512 { FASTGAN_SAMPLING_CPU_KERNELS }

}  // namespace fastgan::sampling::cpu
