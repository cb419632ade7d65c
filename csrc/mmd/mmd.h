// Maximum mean discrepancy (Gretton et al. 2012; GMMN, Li et al. 2015) with a sum of kernels over bandwidths:
//
//   MMD^2 = w_xx sum_{i,j} k(x_i, x_j) + w_yy sum_{i,j} k(y_i, y_j) - 2 w_xy sum_{i,j} k(x_i, y_j)
//
// (the unbiased estimator drops the diagonals: w_xx = 1 / (n (n - 1)) and the n k(x, x) terms are subtracted).
// Each kernel is a function of one pair statistic s(a, b). The distance kernels use the squared distance
// d2 = sum_k (a_k - b_k)^2, computed as a sum of squared differences (|a|^2 - 2ab + |b|^2 cancels for close points;
// only the CPU's GEMM path uses it, on centred data, recomputing close pairs: mmd_cpu.cpp); the polynomial kernel
// uses the dot product p = sum_k a_k b_k:
//   rbf        k = sum_s exp(-d2 / (2 s^2))
//   laplacian  k = sum_s exp(-sqrt(d2) / s)
//   energy     k = -sqrt(d2)                    (MMD^2 is then the energy distance)
//   polynomial k = (gamma p + coef)^degree      (KID's kernel, Binkowski et al. 2018)
// The gradient d k(a, b) / d a is h (a - b) for a distance kernel, with h = 2 dk/dd2 (taken as 0 at d2 = 0, where
// a - b = 0), and h b for the polynomial kernel, with h = dk/dp. The unbiased estimator skips the pairs (i, i) of
// a same-set sum rather than subtracting their values afterwards: for the polynomial kernel k(a, a) depends on a.
// Every pass is a tiled sum over pairs: memory O((n + m) d), never O(n m).
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include "../common/enum.h"
#include "../common/math.h"

namespace fastgan::mmd {

// The kernels, each once: the enum, the names fastgan.mmd parses and every dispatch come from this list.
#define FASTGAN_MMD_KERNELS(X) X(Rbf, "rbf") X(Laplacian, "laplacian") X(Energy, "energy") X(Polynomial, "polynomial")
FASTGAN_DEFINE_ENUM(Kernel, FASTGAN_MMD_KERNELS)

constexpr int kMaxBandwidths = 16;

// What the kernel formulas read; which fields apply depends on the kernel.
struct KernelConstants {
  int count = 0;                       // rbf, laplacian: the number of bandwidths
  double coef[kMaxBandwidths] = {};    // rbf: -1 / (2 s^2) per bandwidth s; laplacian: -1 / s
  int degree = 0;                      // polynomial: (gamma p + offset)^degree
  double gamma = 0, offset = 0;
};

// The pair statistic: the dot product for the polynomial kernel, the squared distance for the others.
template <Kernel K>
constexpr bool uses_dot_product = K == Kernel::Polynomial;

// base^degree by repeated multiplication: exact for small integers, defined for a negative base, the same
// sequence of roundings on every device.
template <class V>
FASTGAN_HD V integer_power(V base, int degree) {
  V result = base;
  for (int e = 1; e < degree; ++e) result = result * base;
  return result;
}

// k as a function of the pair statistic (d2, or p for the polynomial kernel).
template <Kernel K, class V>
FASTGAN_HD V kernel_value(V stat, const KernelConstants& kp) {
  if constexpr (K == Kernel::Polynomial) {
    return integer_power(V(kp.gamma) * stat + V(kp.offset), kp.degree);
  } else if constexpr (K == Kernel::Energy) {
    return V(0) - math::sqrt(stat);
  } else {
    const V arg = K == Kernel::Rbf ? stat : math::sqrt(stat);
    V total(0);
    for (int s = 0; s < kp.count; ++s) total = total + math::exp_flush_subnormal(arg * V(kp.coef[s]));
    return total;
  }
}

// h(d2) = 2 dk/dd2, so that d k(a, b) / d a = h (a - b); for the polynomial kernel h(p) = dk/dp, so that
// d k(a, b) / d a = h b.
template <Kernel K, class V>
FASTGAN_HD V kernel_slope(V stat, const KernelConstants& kp) {
  if constexpr (K == Kernel::Polynomial) {
    const V base = V(kp.gamma) * stat + V(kp.offset);
    const V power = kp.degree == 1 ? V(1) : integer_power(base, kp.degree - 1);
    return V(kp.degree * kp.gamma) * power;
  } else if constexpr (K == Kernel::Rbf) {
    const V d2 = stat;
    V total(0);
    for (int s = 0; s < kp.count; ++s) {
      total = total + V(2 * kp.coef[s]) * math::exp_flush_subnormal(d2 * V(kp.coef[s]));
    }
    return total;
  } else {
    const V d2 = stat;
    const V d = math::sqrt(d2);
    const V safe = math::select<V>(d2 > V(0), d, V(1));
    V total;
    if constexpr (K == Kernel::Energy) {
      total = V(-1) / safe;  // 2 d(-sqrt(d2))/dd2 = -1 / d
    } else {
      total = V(0);
      for (int s = 0; s < kp.count; ++s) total = total + V(kp.coef[s]) * math::exp_flush_subnormal(d * V(kp.coef[s]));
      total = total / safe;  // 2 d exp(c d)/dd2 = c exp(c d) / d
    }
    return math::select<V>(d2 > V(0), total, V(0));
  }
}


// ---- the GEMM path's pair statistic (CPU: mmd_cpu_kernel.cpp; CUDA: mmd_gemm.cuh; docs/DESIGN.md, section 10a) ----

// Pairs with d2 below this fraction of |a|^2 + |b|^2 are recomputed as differences: the product form's relative
// error of d2 on the others is at most (2d + 10) u / kNearFraction.
constexpr double kNearFraction = 1.0 / 16;

// Whether the product form d2 = |a|^2 + |b|^2 - 2 a.b is kept: d2 at least kNearFraction of the norms, and the norms
// finite.
template <class T>
FASTGAN_HD bool product_form_holds(T d2, T norms) {
  return d2 >= T(kNearFraction) * norms && norms < std::numeric_limits<T>::infinity();
}

// |a - b|^2 as a sum of squared differences, coordinates in order, one FMA each (as the tile kernels).
template <class T>
FASTGAN_HD T squared_distance(const T* a, const T* b, int64_t d) {
  T acc = T(0);
  for (int64_t k = 0; k < d; ++k) {
    const T diff = a[k] - b[k];
    acc = math::fma(diff, diff, acc);
  }
  return acc;
}

// The statistic of a pair of the GEMM path from its product p = a . b: p itself for the polynomial kernel; for the
// distance kernels d2 in product form from the squared norms norm_a[r], norm_b[c] (null for the polynomial kernel,
// so indexed here only) where it holds, else recomputed from the rows a and b (d coordinates each).
template <Kernel K, class T>
FASTGAN_HD T gemm_pair_statistic(T p, const T* norm_a, int64_t r, const T* norm_b, int64_t c, const T* a,
                                 const T* b, int64_t d) {
  if constexpr (uses_dot_product<K>) {
    return p;
  } else {
    const T norms = norm_a[r] + norm_b[c];
    const T d2 = norms - T(2) * p;
    return product_form_holds(d2, norms) ? d2 : squared_distance(a, b, d);
  }
}

}  // namespace fastgan::mmd
