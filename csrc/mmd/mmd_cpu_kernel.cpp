// CPU MMD kernels, compiled once per ISA. Tiles: kRowTile rows of a against kColTile columns of b^T, so the b tile
// (kColTile x d) stays in cache while every row of the a tile uses it. Lanes run over j (columns of b^T).
// Determinism: row tiles are a fixed partition, each tile's sum is formed in a fixed order and the tiles' sums
// are added in index order in double.
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <limits>
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
double pair_sum_typed(const KernelConstants& kp, const Pairs<T>& p) {
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

// Backward workspace, bounded whatever n, m and d (the scratch once grew with d: 16 rows x d vectors, 11.7 GB at
// d = 1e7): the slopes of a row tile against a block of up to kColumnBlock columns, then the gradient's lanes for a
// chunk of up to kCoordChunk coordinates at a time. Per task: rows x kColumnBlock values (4 MiB in float),
// rows x kCoordChunk vectors (64 KiB at AVX-512) and the rows' double accumulators, rows x d (the size of the
// gradient rows themselves).
constexpr int64_t kColumnBlock = 65536;
constexpr int64_t kCoordChunk = 64;

// grad_i += coef sum_j h_ij (a_i - b_j) for a distance kernel, accumulated as the differences themselves
// (H a_i - sum_j h b_j would cancel for data far from the origin); coef sum_j h_ij b_j for the polynomial kernel.
// Lanes run over j: within a column block, each (row, coordinate) sums its lanes in T, then in double across blocks.
template <Kernel K, class T>
void pair_grad_typed(const KernelConstants& kp, const Pairs<T>& p, double coef, T* grad) {
  using Vec = at::vec::Vectorized<T>;
  const int64_t tiles = (p.na + kRowTile - 1) / kRowTile;
  fastgan::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    const int64_t rows_max = std::min(kRowTile, p.na), block_max = std::min(kColumnBlock, p.nb);
    const int64_t chunk_max = std::min(kCoordChunk, p.d);
    std::vector<T> h(static_cast<size_t>(rows_max * block_max));     // slopes [row][column of the block]
    std::vector<Vec> acc(static_cast<size_t>(rows_max * chunk_max));  // lanes of sum_j h (a_ik - b_jk) [row][k]
    std::vector<double> total(static_cast<size_t>(rows_max * p.d));   // [row][k], over every block
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = t * kRowTile, rows = std::min(p.na, i0 + kRowTile) - i0;
      std::fill(total.begin(), total.end(), 0.0);
      for (int64_t b0 = 0; b0 < p.nb; b0 += kColumnBlock) {
        const int64_t b1 = std::min(p.nb, b0 + kColumnBlock), width = b1 - b0;
        const int64_t vector_end = b0 + (width / Vec::size()) * Vec::size();  // scalar columns after this
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = i0 + r;
          const T* a = p.a + i * p.d;
          T* hr = h.data() + r * width;
          for (int64_t j = b0; j < vector_end; j += Vec::size()) {
            Vec slope = kernel_slope<K>(statistic<K>(p, a, j), kp);
            if (const int64_t lane = diagonal_lane(p, i, j); lane >= 0) slope = zero_lane(slope, lane);
            slope.store(hr + (j - b0));
          }
          for (int64_t j = vector_end; j < b1; ++j) {
            const bool skipped = p.same_set && p.skip_diagonal && j == i;
            hr[j - b0] = skipped ? T(0) : kernel_slope<K>(statistic_scalar<K>(p, a, j), kp);
          }
        }
        for (int64_t k0 = 0; k0 < p.d; k0 += kCoordChunk) {
          const int64_t chunk = std::min(kCoordChunk, p.d - k0);
          std::fill(acc.begin(), acc.end(), Vec(T(0)));
          for (int64_t j0 = b0; j0 < b1; j0 += kColTile) {  // column tiles: b^T's slice stays in cache for all rows
            const int64_t j1 = std::min(b1, j0 + kColTile), j1_vector = std::min(j1, vector_end);
            for (int64_t r = 0; r < rows; ++r) {
              const T* a = p.a + (i0 + r) * p.d + k0;
              const T* hr = h.data() + r * width - b0;
              Vec* w = acc.data() + r * chunk_max;
              for (int64_t j = j0; j < j1_vector; j += Vec::size()) {
                const Vec hv = Vec::loadu(hr + j);
                for (int64_t k = 0; k < chunk; ++k) {
                  const Vec b = Vec::loadu(p.bt + (k0 + k) * p.nb + j);
                  w[k] = w[k] + hv * (uses_dot_product<K> ? b : Vec(a[k]) - b);
                }
              }
              double* tr = total.data() + r * p.d + k0;
              for (int64_t j = std::max(j0, vector_end); j < j1; ++j) {
                for (int64_t k = 0; k < chunk; ++k) {
                  const T b = p.bt[(k0 + k) * p.nb + j];
                  tr[k] += hr[j] * (uses_dot_product<K> ? b : a[k] - b);
                }
              }
            }
          }
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t k = 0; k < chunk; ++k) total[r * p.d + k0 + k] += lane_sum(acc[r * chunk_max + k]);
          }
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t k = 0; k < p.d; ++k) {
          grad[(i0 + r) * p.d + k] += static_cast<T>(coef * total[r * p.d + k]);
        }
      }
    }
  });
}

// ---- the GEMM path's epilogue: the pair statistic from a tile of products ----

template <Kernel K, class T>
T tile_statistic_scalar(const GemmTile<T>& t, int64_t r, int64_t c) {
  return gemm_pair_statistic<K>(t.p[r * t.cols + c], t.norm_a, r, t.norm_b, c, t.a + r * t.d, t.b + c * t.d, t.d);
}

// The statistic of row r against columns c .. c + lanes.
template <Kernel K, class T>
at::vec::Vectorized<T> tile_statistic(const GemmTile<T>& t, int64_t r, int64_t c) {
  using Vec = at::vec::Vectorized<T>;
  const Vec p = Vec::loadu(t.p + r * t.cols + c);
  if constexpr (uses_dot_product<K>) {
    return p;
  } else {
    const Vec norms = Vec(t.norm_a[r]) + Vec::loadu(t.norm_b + c);
    const Vec d2 = norms - Vec(T(2)) * p;
    const Vec holds = (d2 >= Vec(T(kNearFraction)) * norms) & (norms < Vec(std::numeric_limits<T>::infinity()));
    const int recompute = holds.zero_mask();  // the lanes where it does not hold (false compares to all zeros)
    if (recompute == 0) return d2;
    alignas(64) T lanes[Vec::size()];
    d2.store(lanes);
    for (int l = 0; l < Vec::size(); ++l) {
      if (recompute >> l & 1) lanes[l] = squared_distance(t.a + r * t.d, t.b + (c + l) * t.d, t.d);
    }
    return Vec::loadu(lanes);
  }
}

template <Kernel K, class T>
double tile_sum_typed(const KernelConstants& kp, const GemmTile<T>& t) {
  using Vec = at::vec::Vectorized<T>;
  double total = 0;
  for (int64_t r = 0; r < t.rows; ++r) {
    Vec acc(T(0));
    int64_t c = 0;
    for (; c + Vec::size() <= t.cols; c += Vec::size()) {
      Vec v = kernel_value<K>(tile_statistic<K>(t, r, c), kp);
      if (t.diagonal && r >= c && r < c + Vec::size()) v = zero_lane(v, r - c);
      acc = acc + v;
    }
    double row = lane_sum(acc);
    for (; c < t.cols; ++c) {
      if (!(t.diagonal && c == r)) row += kernel_value<K>(tile_statistic_scalar<K>(t, r, c), kp);
    }
    // the pair (i, i): d2 = 0 exactly; the polynomial kernel's a . a from the product
    if (t.diagonal && !t.skip_diagonal) row += kernel_value<K>(uses_dot_product<K> ? t.p[r * t.cols + r] : T(0), kp);
    total += row;
  }
  return total;
}

template <Kernel K, class T>
void tile_slopes_typed(const KernelConstants& kp, const GemmTile<T>& t, T* h, double* row_sums) {
  using Vec = at::vec::Vectorized<T>;
  // a distance kernel's pair (i, i) adds h (a_i - a_i) = 0: its slope is zeroed so that the product form adds 0 too
  const bool zero_diagonal = t.diagonal && (!uses_dot_product<K> || t.skip_diagonal);
  for (int64_t r = 0; r < t.rows; ++r) {
    T* hr = h + r * t.cols;
    Vec acc(T(0));
    int64_t c = 0;
    for (; c + Vec::size() <= t.cols; c += Vec::size()) {
      Vec v = kernel_slope<K>(tile_statistic<K>(t, r, c), kp);
      if (zero_diagonal && r >= c && r < c + Vec::size()) v = zero_lane(v, r - c);
      v.store(hr + c);
      acc = acc + v;
    }
    double row = lane_sum(acc);
    for (; c < t.cols; ++c) {
      hr[c] = zero_diagonal && c == r ? T(0) : kernel_slope<K>(tile_statistic_scalar<K>(t, r, c), kp);
      row += hr[c];
    }
    row_sums[r] += row;
  }
}

}  // namespace

double tile_sum(Kernel kernel, const KernelConstants& kp, const GemmTile<float>& t) {
  return dispatch_enum(kernel, [&](auto k) { return tile_sum_typed<decltype(k)::value>(kp, t); });
}
double tile_sum(Kernel kernel, const KernelConstants& kp, const GemmTile<double>& t) {
  return dispatch_enum(kernel, [&](auto k) { return tile_sum_typed<decltype(k)::value>(kp, t); });
}
void tile_slopes(Kernel kernel, const KernelConstants& kp, const GemmTile<float>& t, float* h, double* row_sums) {
  dispatch_enum(kernel, [&](auto k) { tile_slopes_typed<decltype(k)::value>(kp, t, h, row_sums); });
}
void tile_slopes(Kernel kernel, const KernelConstants& kp, const GemmTile<double>& t, double* h, double* row_sums) {
  dispatch_enum(kernel, [&](auto k) { tile_slopes_typed<decltype(k)::value>(kp, t, h, row_sums); });
}

double pair_sum(Kernel kernel, const KernelConstants& kp, const Pairs<float>& p) {
  return dispatch_enum(kernel, [&](auto k) { return pair_sum_typed<decltype(k)::value>(kp, p); });
}
double pair_sum(Kernel kernel, const KernelConstants& kp, const Pairs<double>& p) {
  return dispatch_enum(kernel, [&](auto k) { return pair_sum_typed<decltype(k)::value>(kp, p); });
}
void pair_grad(Kernel kernel, const KernelConstants& kp, const Pairs<float>& p, double coef, float* grad) {
  dispatch_enum(kernel, [&](auto k) { pair_grad_typed<decltype(k)::value>(kp, p, coef, grad); });
}
void pair_grad(Kernel kernel, const KernelConstants& kp, const Pairs<double>& p, double coef, double* grad) {
  dispatch_enum(kernel, [&](auto k) { pair_grad_typed<decltype(k)::value>(kp, p, coef, grad); });
}

}  // namespace fastgan::mmd::cpu::FASTGAN_ISA
