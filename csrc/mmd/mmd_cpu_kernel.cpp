// CPU MMD kernels, compiled once per ISA. Tiles: kRowTile rows of a against kColTile columns of b^T, so the b tile
// (kColTile x d) stays in cache while every row of the a tile uses it. Lanes run over j (columns of b^T).
// Determinism: row tiles are a fixed partition, each tile's sum is formed in a fixed order and the tiles' sums
// are added in index order in double.
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <vector>

#include "../common/parallel.h"
#include "../common/vec_math.h"
#include "mmd_cpu_kernel.h"

namespace fastgan::mmd::cpu::FASTGAN_ISA {
namespace {

using math::lane_sum;

constexpr int64_t kRowTile = 16;
constexpr int64_t kColTile = 512;

// The pair statistic (d2, or the dot product) between row a and columns j .. j + lanes of b^T.
template <Kernel K, class T>
at::vec::Vectorized<T> statistic(const Pairs<T>& p, const T* a, int64_t j) {
  using Vec = at::vec::Vectorized<T>;
  Vec acc(T(0));
  for (int64_t k = 0; k < p.d; ++k) {
    const Vec b = Vec::loadu(p.bt + k * p.nb + j);
    if constexpr (uses_dot_product<K>) {
      acc = acc + Vec(a[k]) * b;
    } else {
      const Vec diff = Vec(a[k]) - b;
      acc = acc + diff * diff;
    }
  }
  return acc;
}

template <Kernel K, class T>
T statistic_scalar(const Pairs<T>& p, const T* a, int64_t j) {
  T acc = 0;
  for (int64_t k = 0; k < p.d; ++k) {
    const T b = p.bt[k * p.nb + j];
    if constexpr (uses_dot_product<K>) {
      acc += a[k] * b;
    } else {
      const T diff = a[k] - b;
      acc += diff * diff;
    }
  }
  return acc;
}

// v with lane `lane` set to 0: leaves the pair (i, i) out of a same-set sum (once per row and column tile).
template <class T>
at::vec::Vectorized<T> zero_lane(const at::vec::Vectorized<T>& v, int64_t lane) {
  alignas(64) T lanes[at::vec::Vectorized<T>::size()];
  v.store(lanes);
  lanes[lane] = T(0);
  return at::vec::Vectorized<T>::loadu(lanes);
}

// The lane of the skipped pair (i, i) among columns j .. j + lanes, or -1.
template <class T>
int64_t diagonal_lane(const Pairs<T>& p, int64_t i, int64_t j) {
  return p.same_set && p.skip_diagonal && i >= j && i < j + at::vec::Vectorized<T>::size() ? i - j : -1;
}

// A same-set sum is symmetric: each row visits only the columns after it (counted twice) and adds its diagonal
// term once (unless skipped), which halves the work of two of the forward's three sums.
template <Kernel K, class T>
double pair_sum_typed(const KernelParams& kp, const Pairs<T>& p) {
  using Vec = at::vec::Vectorized<T>;
  const int64_t tiles = (p.na + kRowTile - 1) / kRowTile;
  std::vector<double> partial(tiles, 0.0);
  fastgan::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = t * kRowTile, i1 = std::min(p.na, i0 + kRowTile);
      double tile_total = 0;
      for (int64_t j0 = p.same_set ? i0 / kColTile * kColTile : 0; j0 < p.nb; j0 += kColTile) {
        const int64_t j1 = std::min(p.nb, j0 + kColTile);
        for (int64_t i = i0; i < i1; ++i) {
          const T* a = p.a + i * p.d;
          Vec acc(T(0));
          int64_t j = p.same_set ? std::max(j0, i + 1) : j0;
          for (; j + Vec::size() <= j1; j += Vec::size()) acc = acc + kernel_value<K>(statistic<K>(p, a, j), kp);
          double row = lane_sum(acc);
          for (; j < j1; ++j) row += kernel_value<K>(statistic_scalar<K>(p, a, j), kp);
          tile_total += p.same_set ? 2 * row : row;
        }
      }
      if (p.same_set && !p.skip_diagonal) {
        for (int64_t i = i0; i < i1; ++i) tile_total += kernel_value<K>(statistic_scalar<K>(p, p.a + i * p.d, i), kp);
      }
      partial[t] = tile_total;
    }
  });
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

// grad_i += coef sum_j h_ij (a_i - b_j) for a distance kernel, accumulated as the differences themselves
// (H a_i - sum_j h b_j would cancel for data far from the origin); coef sum_j h_ij b_j for the polynomial kernel.
template <Kernel K, class T>
void pair_grad_typed(const KernelParams& kp, const Pairs<T>& p, double coef, T* grad) {
  using Vec = at::vec::Vectorized<T>;
  const int64_t tiles = (p.na + kRowTile - 1) / kRowTile;
  fastgan::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<Vec> acc(kRowTile * p.d);      // lanes of sum_j h (a_ik - b_jk), or of sum_j h b_jk
    std::vector<double> tail(kRowTile * p.d);  // the same for the columns past the last full vector
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = t * kRowTile, i1 = std::min(p.na, i0 + kRowTile);
      std::fill(acc.begin(), acc.end(), Vec(T(0)));
      std::fill(tail.begin(), tail.end(), 0.0);
      for (int64_t j0 = 0; j0 < p.nb; j0 += kColTile) {
        const int64_t j1 = std::min(p.nb, j0 + kColTile);
        for (int64_t i = i0; i < i1; ++i) {
          const T* a = p.a + i * p.d;
          Vec* w = acc.data() + (i - i0) * p.d;
          double* w_tail = tail.data() + (i - i0) * p.d;
          int64_t j = j0;
          for (; j + Vec::size() <= j1; j += Vec::size()) {
            Vec h = kernel_slope<K>(statistic<K>(p, a, j), kp);
            if (const int64_t lane = diagonal_lane(p, i, j); lane >= 0) h = zero_lane(h, lane);
            for (int64_t k = 0; k < p.d; ++k) {
              const Vec b = Vec::loadu(p.bt + k * p.nb + j);
              w[k] = w[k] + h * (uses_dot_product<K> ? b : Vec(a[k]) - b);
            }
          }
          for (; j < j1; ++j) {
            if (p.same_set && p.skip_diagonal && j == i) continue;
            const T h = kernel_slope<K>(statistic_scalar<K>(p, a, j), kp);
            for (int64_t k = 0; k < p.d; ++k) {
              const T b = p.bt[k * p.nb + j];
              w_tail[k] += h * (uses_dot_product<K> ? b : a[k] - b);
            }
          }
        }
      }
      for (int64_t i = i0; i < i1; ++i) {
        for (int64_t k = 0; k < p.d; ++k) {
          const int64_t at = (i - i0) * p.d + k;
          grad[i * p.d + k] += static_cast<T>(coef * (lane_sum(acc[at]) + tail[at]));
        }
      }
    }
  });
}

}  // namespace

double pair_sum(Kernel kernel, const KernelParams& kp, const Pairs<float>& p) {
  return dispatch_enum(kernel, [&](auto k) { return pair_sum_typed<decltype(k)::value>(kp, p); });
}
double pair_sum(Kernel kernel, const KernelParams& kp, const Pairs<double>& p) {
  return dispatch_enum(kernel, [&](auto k) { return pair_sum_typed<decltype(k)::value>(kp, p); });
}
void pair_grad(Kernel kernel, const KernelParams& kp, const Pairs<float>& p, double coef, float* grad) {
  dispatch_enum(kernel, [&](auto k) { pair_grad_typed<decltype(k)::value>(kp, p, coef, grad); });
}
void pair_grad(Kernel kernel, const KernelParams& kp, const Pairs<double>& p, double coef, double* grad) {
  dispatch_enum(kernel, [&](auto k) { pair_grad_typed<decltype(k)::value>(kp, p, coef, grad); });
}

}  // namespace fastgan::mmd::cpu::FASTGAN_ISA
