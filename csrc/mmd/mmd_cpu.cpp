// The CPU MmdEngine: three tiled pair sums forward, four tiled pair passes backward. Two ways to visit the pairs:
// the tile kernels of mmd_cpu_kernel.cpp (the statistic summed coordinate by coordinate), and, for the rbf and
// polynomial kernels where d is large, the GEMM path: each tile's products a_i . b_j by at::mm (BLAS), then the
// kernel in an epilogue (docs/DESIGN.md, section 10a).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "../common/cpu_isa.h"
#include "../common/engine.h"
#include "../common/parallel.h"
#include "mmd_cpu_kernel.h"
#include "mmd_ops.h"

// MKL's mkl_set_num_threads_local (mkl_service.h maps the C name to this symbol; the lower-case one is the Fortran
// interface, which takes a pointer). torch exports it on x86; weak, so that a torch with another BLAS leaves it null.
extern "C" int MKL_Set_Num_Threads_Local(int threads) __attribute__((weak));

namespace fastgan::mmd {
namespace {

using at::Tensor;

// same_set: bt is a^T; skip_diagonal: the unbiased estimator leaves the pairs (i, i) of a same-set sum out.
template <class T>
cpu::Pairs<T> pairs(const Tensor& a, const Tensor& bt, bool same_set, bool skip_diagonal) {
  return {a.const_data_ptr<T>(), a.size(0), bt.const_data_ptr<T>(), bt.size(1), a.size(1), same_set, skip_diagonal};
}

// ---- the GEMM path ----

// Rows (and columns) of a GEMM tile: the products' workspace is kGemmTile^2 values per task (256 KiB in float).
constexpr int64_t kGemmTile = 256;
// The smallest d that takes the GEMM path: measured on an AMD EPYC (2 threads, AVX-512), forward+backward at
// n = 4096 (docs/DESIGN.md, section 10a).
constexpr int64_t kGemmMinD = 16;


// The GEMM path's inputs: for the distance kernels x and y less the mean of x and y in T (a shift, which leaves
// every distance unchanged and makes |a|^2 + |b|^2 - 2 a.b cancel as little as it can), and their squared norms
// (summed in double, rounded to T); the polynomial kernel's dot products are not shift-invariant: x and y as given.
struct GemmInputs {
  Tensor x, y, norm_x, norm_y;
};

template <class T>
Tensor squared_norms(const Tensor& a) {
  const int64_t rows = a.size(0), d = a.size(1);
  Tensor norms = at::empty({rows}, a.options());
  const T* pa = a.const_data_ptr<T>();
  T* out = norms.mutable_data_ptr<T>();
  at::parallel_for(0, rows, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      double total = 0;
      for (int64_t k = 0; k < d; ++k) total += static_cast<double>(pa[i * d + k]) * pa[i * d + k];
      out[i] = static_cast<T>(total);
    }
  });
  return norms;
}

// false: a non-finite mean (an inf or NaN input), where the tile kernels' semantics are kept. The mean is summed in
// double, one chunk of coordinates at a time (no n x d temporary, no d doubles: the shift is held in T).
template <class T>
bool gemm_inputs(const MmdSpec& spec, const Tensor& x, const Tensor& y, GemmInputs& in) {
  // detached: the GEMMs must record nothing for autograd (they run inside the op, on its saved inputs)
  const Tensor xd = x.detach(), yd = y.detach();
  if (spec.kernel == Kernel::Polynomial) {
    in = {xd, yd, Tensor(), Tensor()};
    return true;
  }
  const int64_t n = x.size(0), m = y.size(0), d = x.size(1);
  constexpr int64_t kChunk = 256;
  std::vector<T> shift(static_cast<size_t>(d));
  const T* px = xd.const_data_ptr<T>();
  const T* py = yd.const_data_ptr<T>();
  at::parallel_for(0, (d + kChunk - 1) / kChunk, 1, [&](int64_t c0, int64_t c1) {
    double total[kChunk];
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t k0 = c * kChunk, width = std::min(kChunk, d - k0);
      std::fill(total, total + width, 0.0);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t k = 0; k < width; ++k) total[k] += px[i * d + k0 + k];
      }
      for (int64_t j = 0; j < m; ++j) {
        for (int64_t k = 0; k < width; ++k) total[k] += py[j * d + k0 + k];
      }
      for (int64_t k = 0; k < width; ++k) shift[k0 + k] = static_cast<T>(total[k] / static_cast<double>(n + m));
    }
  });
  for (T v : shift) {
    if (!std::isfinite(v)) return false;
  }
  auto centred = [&](const Tensor& a) {
    Tensor out = at::empty_like(a);
    const T* pa = a.const_data_ptr<T>();
    T* po = out.mutable_data_ptr<T>();
    at::parallel_for(0, a.size(0), 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        for (int64_t k = 0; k < d; ++k) po[i * d + k] = pa[i * d + k] - shift[k];
      }
    });
    return out;
  };
  in.x = centred(xd);
  in.y = centred(yd);
  in.norm_x = squared_norms<T>(in.x);
  in.norm_y = squared_norms<T>(in.y);
  return true;
}

template <class T>
cpu::GemmTile<T> gemm_tile(const Tensor& p, const Tensor& a, const Tensor& norm_a, const Tensor& b,
                           const Tensor& norm_b, int64_t i0, int64_t j0, bool diagonal, bool skip_diagonal) {
  const int64_t d = a.size(1);
  const bool distance = norm_a.defined();
  return {p.const_data_ptr<T>(), p.size(0), p.size(1),
          distance ? norm_a.const_data_ptr<T>() + i0 : nullptr, distance ? norm_b.const_data_ptr<T>() + j0 : nullptr,
          a.const_data_ptr<T>() + i0 * d, b.const_data_ptr<T>() + j0 * d, d, diagonal, skip_diagonal};
}

// Each task's GEMMs run on its own thread alone: MKL would otherwise start threads of its own inside fastgan's
// parallel loop (measured: 9x slower at n = 1024, d = 16 on 2 threads), and a tile's bits could depend on how many.
class SerialBlas {
 public:
  SerialBlas() : saved_(MKL_Set_Num_Threads_Local != nullptr ? MKL_Set_Num_Threads_Local(1) : 0) {}
  ~SerialBlas() {
    if (MKL_Set_Num_Threads_Local != nullptr) MKL_Set_Num_Threads_Local(saved_);
  }
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;

 private:
  int saved_;
};

int64_t tiles_of(int64_t rows) { return (rows + kGemmTile - 1) / kGemmTile; }

// sum_{i,j} k(a_i, b_j) over GEMM tiles. A same-set sum visits the tiles on and above the diagonal (those above
// count twice). The (row tile, column tile) pairs are one flat list, split evenly among the threads; each pair's
// sum goes to its own slot and the slots are added in order: the same bits for any thread count.
template <class T>
double gemm_pair_sum(const MmdSpec& spec, const Tensor& a, const Tensor& norm_a, const Tensor& b,
                     const Tensor& norm_b, bool same) {
  std::vector<std::pair<int64_t, int64_t>> tiles;
  for (int64_t t = 0; t < tiles_of(a.size(0)); ++t) {
    for (int64_t u = same ? t : 0; u < tiles_of(b.size(0)); ++u) tiles.emplace_back(t, u);
  }
  std::vector<double> partial(tiles.size(), 0.0);
  fastgan::parallel_for(0, static_cast<int64_t>(tiles.size()), 1, [&](int64_t w0, int64_t w1) {
    const SerialBlas serial;
    Tensor workspace = at::empty({kGemmTile * kGemmTile}, a.options());
    for (int64_t w = w0; w < w1; ++w) {
      const auto [t, u] = tiles[w];
      const int64_t i0 = t * kGemmTile, j0 = u * kGemmTile;
      const int64_t rows = std::min(kGemmTile, a.size(0) - i0), cols = std::min(kGemmTile, b.size(0) - j0);
      Tensor p = workspace.narrow(0, 0, rows * cols).view({rows, cols});
      at::mm_out(p, a.narrow(0, i0, rows), b.narrow(0, j0, cols).t());
      const double s = FASTGAN_CPU_DISPATCH(cpu, tile_sum, spec.kernel, spec.params,
                                            gemm_tile<T>(p, a, norm_a, b, norm_b, i0, j0, same && t == u,
                                                         spec.skip_diagonal));
      partial[w] = same && u != t ? 2 * s : s;
    }
  });
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

// grad_i += coef sum_j h_ij (a_i - b_j) = coef ((sum_j h_ij) a_i - (H B)_i) for a distance kernel (a, b centred),
// coef (H B)_i for the polynomial kernel: per row tile, for each column tile the products (a GEMM), the slopes H
// (the epilogue), then H B added to the row tile's accumulator in T (a second GEMM, beta = 1). Per task: two
// kGemmTile^2 tiles (products, slopes) and kGemmTile x d values (the accumulator): O(tile^2 + tile d) per thread.
template <class T>
void gemm_pair_grad(const MmdSpec& spec, const Tensor& a, const Tensor& norm_a, const Tensor& b,
                    const Tensor& norm_b, bool same, double coef, Tensor& grad) {
  const int64_t na = a.size(0), nb = b.size(0), d = a.size(1);
  const bool distance = norm_a.defined();
  fastgan::parallel_for(0, tiles_of(na), 1, [&](int64_t t0, int64_t t1) {
    const SerialBlas serial;
    const int64_t rows_max = std::min(kGemmTile, na), cols_max = std::min(kGemmTile, nb);
    Tensor products = at::empty({rows_max * cols_max}, a.options());
    Tensor slopes = at::empty({rows_max * cols_max}, a.options());
    Tensor accumulator = at::empty({rows_max * d}, a.options());
    std::vector<double> row_sums(static_cast<size_t>(rows_max));
    const T* pa = a.const_data_ptr<T>();
    T* pg = grad.mutable_data_ptr<T>();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = t * kGemmTile, rows = std::min(kGemmTile, na - i0);
      std::fill(row_sums.begin(), row_sums.end(), 0.0);
      Tensor hb = accumulator.narrow(0, 0, rows * d).view({rows, d});
      hb.zero_();
      for (int64_t u = 0; u < tiles_of(nb); ++u) {
        const int64_t j0 = u * kGemmTile, cols = std::min(kGemmTile, nb - j0);
        Tensor p = products.narrow(0, 0, rows * cols).view({rows, cols});
        at::mm_out(p, a.narrow(0, i0, rows), b.narrow(0, j0, cols).t());
        Tensor h = slopes.narrow(0, 0, rows * cols).view({rows, cols});
        FASTGAN_CPU_DISPATCH(cpu, tile_slopes, spec.kernel, spec.params,
                             gemm_tile<T>(p, a, norm_a, b, norm_b, i0, j0, same && t == u, spec.skip_diagonal),
                             h.mutable_data_ptr<T>(), row_sums.data());
        hb.addmm_(h, b.narrow(0, j0, cols));
      }
      const T* phb = hb.const_data_ptr<T>();
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = i0 + r;
        for (int64_t k = 0; k < d; ++k) {
          const double sum = phb[r * d + k];
          const double g = distance ? row_sums[r] * pa[i * d + k] - sum : sum;
          pg[i * d + k] += static_cast<T>(coef * g);
        }
      }
    }
  });
}

void forward(const MmdSpec& spec, const Tensor& x, const Tensor& y, Tensor& out) {
  if (takes_gemm_path(spec, x, y, kGemmMinD)) {
    bool done = false;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd", [&] {
      GemmInputs in;
      if (!gemm_inputs<scalar_t>(spec, x, y, in)) return;
      auto sum = [&](const Tensor& a, const Tensor& na, const Tensor& b, const Tensor& nb, bool same) {
        return gemm_pair_sum<scalar_t>(spec, a, na, b, nb, same);
      };
      *out.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(
          spec.w_xx * sum(in.x, in.norm_x, in.x, in.norm_x, true) +
          spec.w_yy * sum(in.y, in.norm_y, in.y, in.norm_y, true) -
          2.0 * spec.w_xy * sum(in.x, in.norm_x, in.y, in.norm_y, false));
      done = true;
    });
    if (done) return;
  }
  const Tensor xt = x.t().contiguous(), yt = y.t().contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd", [&] {
    auto sum = [&](const Tensor& a, const Tensor& bt, bool same) {
      return FASTGAN_CPU_DISPATCH(cpu, pair_sum, spec.kernel, spec.params,
                                  pairs<scalar_t>(a, bt, same, spec.skip_diagonal));
    };
    *out.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(
        spec.w_xx * sum(x, xt, true) + spec.w_yy * sum(y, yt, true) - 2.0 * spec.w_xy * sum(x, yt, false));
  });
}

void backward(const MmdSpec& spec, const Tensor& grad, const Tensor& x, const Tensor& y, Tensor& grad_x,
              Tensor& grad_y) {
  if (takes_gemm_path(spec, x, y, kGemmMinD)) {
    bool done = false;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd_backward", [&] {
      GemmInputs in;
      if (!gemm_inputs<scalar_t>(spec, x, y, in)) return;
      const double g = static_cast<double>(*grad.const_data_ptr<scalar_t>());
      gemm_pair_grad<scalar_t>(spec, in.x, in.norm_x, in.x, in.norm_x, true, 2.0 * g * spec.w_xx, grad_x);
      gemm_pair_grad<scalar_t>(spec, in.x, in.norm_x, in.y, in.norm_y, false, -2.0 * g * spec.w_xy, grad_x);
      gemm_pair_grad<scalar_t>(spec, in.y, in.norm_y, in.y, in.norm_y, true, 2.0 * g * spec.w_yy, grad_y);
      gemm_pair_grad<scalar_t>(spec, in.y, in.norm_y, in.x, in.norm_x, false, -2.0 * g * spec.w_xy, grad_y);
      done = true;
    });
    if (done) return;
  }
  const Tensor xt = x.t().contiguous(), yt = y.t().contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd_backward", [&] {
    const double g = static_cast<double>(*grad.const_data_ptr<scalar_t>());
    // A same-set sum is symmetric in (i, j), so its gradient in a_i is twice the sum over j of d k(a_i, a_j)/d a_i.
    auto pass = [&](const Tensor& a, const Tensor& bt, bool same, double coef, Tensor& out) {
      FASTGAN_CPU_DISPATCH(cpu, pair_grad, spec.kernel, spec.params,
                           pairs<scalar_t>(a, bt, same, spec.skip_diagonal), coef, out.mutable_data_ptr<scalar_t>());
    };
    pass(x, xt, true, 2.0 * g * spec.w_xx, grad_x);
    pass(x, yt, false, -2.0 * g * spec.w_xy, grad_x);
    pass(y, yt, true, 2.0 * g * spec.w_yy, grad_y);
    pass(y, xt, false, -2.0 * g * spec.w_xy, grad_y);
  });
}

const MmdEngine kCpuEngine{&forward, &backward};
const bool kRegistered = EngineTable<MmdEngine>::add(c10::DeviceType::CPU, kCpuEngine);

}  // namespace

}  // namespace fastgan::mmd
