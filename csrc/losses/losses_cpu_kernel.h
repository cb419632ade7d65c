// The CPU loss kernels, compiled once per ISA (see csrc/common/cpu_isa.h). They work on raw pointers so that the
// per-ISA objects need no Tensor headers and compile fast.
#pragma once

#include <cstdint>

#include "../common/dtype.h"
#include "../common/tables.h"
#include "losses.h"

namespace fastgan::losses::cpu {

using fastgan::cpu::DType;

struct ForwardParams {
  LossSpec spec;
  DType dtype;
  const void* a;   // may be null when na == 0
  int64_t na;
  const void* b;
  int64_t nb;
  void* per_element;  // scaled per-element losses for Reduction::None, else null
  // When not null, the gradients for a unit upstream gradient, from the same pass (the autograd forward on the CPU:
  // loss_autograd.cpp): grad_a = coef_a * f'(a), grad_b = coef_b * f'(b); Paired: coef_a * f'(sign * (a - b)) times
  // sign and -sign. Either may be null.
  void* grad_a = nullptr;
  void* grad_b = nullptr;
  double coef_a = 0, coef_b = 0;
};

// Unscaled sums over each term (Paired: loss_a holds the pair sum, score_a / score_b the real / fake scores).
struct ForwardSums {
  double loss_a = 0, loss_b = 0, score_a = 0, score_b = 0;
};

struct BackwardParams {
  LossSpec spec;
  DType dtype;
  const void* grad;  // per-element upstream gradient (Reduction::None), else null
  const void* a;
  int64_t na;
  const void* b;
  int64_t nb;
  void* grad_a;
  void* grad_b;
  double coef_a;  // grad_a = coef_a * g * f'(a) (Paired: coef_a * g * f'(sign * (a - b)), grad_b = coef_b * ...)
  double coef_b;
};

#define FASTGAN_LOSS_CPU_KERNELS                \
  ForwardSums loss_forward(const ForwardParams&); \
  void loss_backward(const BackwardParams&);      \
  /* every `stride`-th float with bits in [first, last] (non-negative floats), and its negation */ \
  SoftplusSweep softplus_sweep(uint32_t first, uint32_t last, uint32_t stride);

namespace generic { FASTGAN_LOSS_CPU_KERNELS }
namespace avx2 { FASTGAN_LOSS_CPU_KERNELS }
namespace avx512 { FASTGAN_LOSS_CPU_KERNELS }

}  // namespace fastgan::losses::cpu
