// The CPU MMD kernels, compiled once per ISA (see csrc/common/cpu_isa.h); raw pointers only.
#pragma once

#include <cstdint>

#include "mmd.h"

namespace fastgan::mmd::cpu {

// Pairs of rows a_i (of a [na, d], row-major) and b_j (given transposed: bt [d, nb], so that lanes run over j).
template <class T>
struct Pairs {
  const T* a;
  int64_t na;
  const T* bt;
  int64_t nb;
  int64_t d;
  bool same_set;       // a and b are the same set (b^T = a^T): the sum is symmetric
  bool skip_diagonal;  // with same_set: the pairs (i, i) are left out (the unbiased estimator)
};

#define FASTGAN_MMD_CPU_KERNELS                                                                               \
  /* sum_{i,j} k(a_i, b_j), deterministic for any thread count */                                             \
  double pair_sum(Kernel kernel, const KernelConstants& kp, const Pairs<float>& p);                              \
  double pair_sum(Kernel kernel, const KernelConstants& kp, const Pairs<double>& p);                             \
  /* grad_i += coef * sum_j d k(a_i, b_j) / d a_i, grad [na, d] */                                            \
  void pair_grad(Kernel kernel, const KernelConstants& kp, const Pairs<float>& p, double coef, float* grad);     \
  void pair_grad(Kernel kernel, const KernelConstants& kp, const Pairs<double>& p, double coef, double* grad);

namespace generic { FASTGAN_MMD_CPU_KERNELS }
namespace avx2 { FASTGAN_MMD_CPU_KERNELS }
namespace avx512 { FASTGAN_MMD_CPU_KERNELS }

}  // namespace fastgan::mmd::cpu
