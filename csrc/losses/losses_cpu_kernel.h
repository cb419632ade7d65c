// The CPU loss kernels, compiled once per ISA (see csrc/common/cpu_isa.h). They work on raw pointers so that the
// per-ISA objects need no Tensor headers and compile fast.
#pragma once

#include <cstdint>

#include "../common/dtype.h"
#include "losses.h"

namespace fastgan::losses::cpu {

using fastgan::cpu::DType;

struct ForwardArgs {
  LossSpec spec;
  DType dtype;
  const void* a;   // may be null when na == 0
  int64_t na;
  const void* b;
  int64_t nb;
  void* per_element;  // scaled per-element losses for Reduction::None, else null
};

// Unscaled sums over each term (Paired: loss_a holds the pair sum, score_a / score_b the real / fake scores).
struct ForwardSums {
  double loss_a = 0, loss_b = 0, score_a = 0, score_b = 0;
};

struct BackwardArgs {
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

// The largest error in float32 ulps of the float32 logistic functions (math.h: Logistic) against float64 over a set
// of floats, for the vector lanes of this ISA and for the scalar path (the CUDA kernels' arithmetic, exactly: fma,
// rint, scalbn and the division are correctly rounded on both), and the argument where it occurs.
struct SweepError {
  double ulps = 0;
  float at = 0;
};
struct SweepResult {
  SweepError softplus[2], sigmoid[2];  // [vector, scalar]: softplus(x) and sigmoid(x), for x and -x
  int64_t count = 0;
  int64_t non_finite_mismatches = 0;   // results that should be finite and are not, or the reverse
};

#define FASTGAN_LOSS_CPU_KERNELS                \
  ForwardSums loss_forward(const ForwardArgs&); \
  void loss_backward(const BackwardArgs&);      \
  /* every `stride`-th float with bits in [first, last] (non-negative floats), and its negation */ \
  SweepResult softplus_sweep(uint32_t first, uint32_t last, uint32_t stride);

namespace generic { FASTGAN_LOSS_CPU_KERNELS }
namespace avx2 { FASTGAN_LOSS_CPU_KERNELS }
namespace avx512 { FASTGAN_LOSS_CPU_KERNELS }

}  // namespace fastgan::losses::cpu
