// The CPU gradient-penalty kernels, compiled once per ISA (see csrc/common/cpu_isa.h); raw pointers only.
#pragma once

#include <cstdint>

#include "../common/dtype.h"

namespace fastgan::penalty::cpu {

using fastgan::cpu::DType;

struct RowParams {
  DType dtype;           // of grads (and out)
  const void* grads;     // [rows, features]
  int64_t rows, features;
};

#define FASTGAN_PENALTY_CPU_KERNELS                                                                            \
  /* squares[i] = sum_j grads[i, j]^2 in double, deterministic for any thread count */                        \
  void row_squares(const RowParams& p, double* squares);                                                      \
  /* out[i, j] = factor[i] * grads[i, j] (out has grads' dtype) */                                            \
  void scale_rows(const RowParams& p, const double* factor, void* out);

namespace generic { FASTGAN_PENALTY_CPU_KERNELS }
namespace avx2 { FASTGAN_PENALTY_CPU_KERNELS }
namespace avx512 { FASTGAN_PENALTY_CPU_KERNELS }

}  // namespace fastgan::penalty::cpu
