// Maximum mean discrepancy (Gretton et al. 2012; GMMN, Li et al. 2015) with a sum of kernels over bandwidths:
//
//   MMD^2 = w_xx sum_{i,j} k(x_i, x_j) + w_yy sum_{i,j} k(y_i, y_j) - 2 w_xy sum_{i,j} k(x_i, y_j)
//
// (the unbiased estimator drops the diagonals: w_xx = 1 / (n (n - 1)) and the n k(x, x) terms are subtracted).
// Kernels are functions of the squared distance d2 = sum_k (a_k - b_k)^2, computed as a sum of squared
// differences (never |a|^2 - 2ab + |b|^2, which cancels for close points):
//   rbf        k = sum_s exp(-d2 / (2 s^2))
//   laplacian  k = sum_s exp(-sqrt(d2) / s)
//   energy     k = -sqrt(d2)                    (MMD^2 is then the energy distance)
// The gradient is d k(a, b) / d a = h(d2) (a - b) with h = 2 dk/dd2; h is taken as 0 at d2 = 0, where a - b = 0.
// Every pass is a tiled sum over pairs: memory O((n + m) d), never O(n m).
#pragma once

#include <cstdint>
#include <type_traits>

#include "../common/math.h"

namespace fastgan::mmd {

enum class Kernel : int8_t { Rbf, Laplacian, Energy };

constexpr int kMaxBandwidths = 16;

// coef[s]: -1 / (2 s^2) for rbf, -1 / s for laplacian (unused for energy).
struct Bandwidths {
  int count = 0;
  double coef[kMaxBandwidths] = {};
};

template <Kernel K, class V>
FASTGAN_HD V kernel_value(V d2, const Bandwidths& bw) {
  if constexpr (K == Kernel::Energy) {
    return V(0) - math::sqrt(d2);
  } else {
    const V arg = K == Kernel::Rbf ? d2 : math::sqrt(d2);
    V total(0);
    for (int s = 0; s < bw.count; ++s) total = total + math::exp_flush_subnormal(arg * V(bw.coef[s]));
    return total;
  }
}

// h(d2) = 2 dk/dd2, so that d k(a, b) / d a = h (a - b).
template <Kernel K, class V>
FASTGAN_HD V kernel_slope(V d2, const Bandwidths& bw) {
  if constexpr (K == Kernel::Rbf) {
    V total(0);
    for (int s = 0; s < bw.count; ++s) total = total + V(2 * bw.coef[s]) * math::exp_flush_subnormal(d2 * V(bw.coef[s]));
    return total;
  } else {
    const V d = math::sqrt(d2);
    const V safe = math::select<V>(d2 > V(0), d, V(1));
    V total;
    if constexpr (K == Kernel::Energy) {
      total = V(-1) / safe;  // 2 d(-sqrt(d2))/dd2 = -1 / d
    } else {
      total = V(0);
      for (int s = 0; s < bw.count; ++s) total = total + V(bw.coef[s]) * math::exp_flush_subnormal(d * V(bw.coef[s]));
      total = total / safe;  // 2 d exp(c d)/dd2 = c exp(c d) / d
    }
    return math::select<V>(d2 > V(0), total, V(0));
  }
}

// k(a, a): what the unbiased estimator removes from each diagonal.
inline double kernel_at_zero(Kernel k, const Bandwidths& bw) { return k == Kernel::Energy ? 0.0 : bw.count; }

template <class Fn>
decltype(auto) dispatch_kernel(Kernel k, Fn&& fn) {
  switch (k) {
    case Kernel::Rbf: return fn(std::integral_constant<Kernel, Kernel::Rbf>{});
    case Kernel::Laplacian: return fn(std::integral_constant<Kernel, Kernel::Laplacian>{});
    case Kernel::Energy: return fn(std::integral_constant<Kernel, Kernel::Energy>{});
  }
  __builtin_unreachable();
}

}  // namespace fastgan::mmd
