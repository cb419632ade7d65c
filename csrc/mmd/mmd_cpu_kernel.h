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

// One tile of the GEMM path (mmd_cpu.cpp): p [rows, cols] (row-major) holds the products a_i . b_j of rows
// i0 .. i0 + rows of a and j0 .. j0 + cols of b, computed by a GEMM. For the distance kernels a and b are centred
// (the mean of x and y subtracted) and norm_a, norm_b hold their squared norms, so that d2 = |a|^2 + |b|^2 - 2 p;
// a pair whose d2 is not at least kNearFraction (|a|^2 + |b|^2) (or not finite) is recomputed as a sum of squared
// differences of the rows a, b ([rows, d] and [cols, d], row-major), where the product form would cancel.
template <class T>
struct GemmTile {
  const T* p;
  int64_t rows, cols;
  const T* norm_a;  // distance kernels only
  const T* norm_b;
  const T* a;
  const T* b;
  int64_t d;
  bool diagonal;       // a tile on the diagonal of a same-set sum: the pair (r, r) is (i, i)
  bool skip_diagonal;  // with diagonal: the pairs (i, i) are left out (the unbiased estimator)
};

#define FASTGAN_MMD_CPU_KERNELS                                                                               \
  /* sum_{i,j} k(a_i, b_j), deterministic for any thread count */                                             \
  double pair_sum(Kernel kernel, const KernelConstants& kp, const Pairs<float>& p);                              \
  double pair_sum(Kernel kernel, const KernelConstants& kp, const Pairs<double>& p);                             \
  /* grad_i += coef * sum_j d k(a_i, b_j) / d a_i, grad [na, d] */                                            \
  void pair_grad(Kernel kernel, const KernelConstants& kp, const Pairs<float>& p, double coef, float* grad);     \
  void pair_grad(Kernel kernel, const KernelConstants& kp, const Pairs<double>& p, double coef, double* grad);     \
  /* GEMM path: sum over a tile's pairs of k (the pairs (i, i) of a diagonal tile once, or not) */            \
  double tile_sum(Kernel kernel, const KernelConstants& kp, const GemmTile<float>& t);                           \
  double tile_sum(Kernel kernel, const KernelConstants& kp, const GemmTile<double>& t);                          \
  /* GEMM path: h [rows, cols] = the slopes (0 for the pairs (i, i) that add nothing or are skipped); */       \
  /* row_sums[r] += sum_c h[r][c] */                                                                          \
  void tile_slopes(Kernel kernel, const KernelConstants& kp, const GemmTile<float>& t, float* h, double* row_sums); \
  void tile_slopes(Kernel kernel, const KernelConstants& kp, const GemmTile<double>& t, double* h, double* row_sums);

namespace generic { FASTGAN_MMD_CPU_KERNELS }
namespace avx2 { FASTGAN_MMD_CPU_KERNELS }
namespace avx512 { FASTGAN_MMD_CPU_KERNELS }

}  // namespace fastgan::mmd::cpu
