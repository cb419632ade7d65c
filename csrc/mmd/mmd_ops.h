// The MMD family's spec (checked arguments and the estimator's weights) and its per-device engine; the entry
// points are in mmd_ops.cpp.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "../common/checks.h"
#include "mmd.h"

namespace fastgan::mmd {

constexpr int kMaxDegree = 64;

struct MmdSpec {
  Kernel kernel;
  KernelConstants params;
  // MMD^2 = w_xx S_xx + w_yy S_yy - 2 w_xy S_xy, S the pair sums; the same-set sums skip the pairs (i, i) when
  // skip_diagonal (the unbiased estimator)
  double w_xx, w_yy, w_xy;
  bool skip_diagonal;
};


// kernel_params: the bandwidths for rbf and laplacian, nothing for energy, [degree, gamma, coef] for polynomial.
// wide: the kernels compute in float64 (else float32), where every coefficient they read must be finite.
inline KernelConstants make_kernel_params(Kernel kernel, at::ArrayRef<double> kernel_params, bool wide, const char* op) {
  KernelConstants kp{};
  const double largest = wide ? std::numeric_limits<double>::max() : std::numeric_limits<float>::max();
  switch (kernel) {
    case Kernel::Rbf:
    case Kernel::Laplacian:
      TORCH_CHECK_VALUE(!kernel_params.empty() && kernel_params.size() <= kMaxBandwidths, op, ": give 1 to ",
                        kMaxBandwidths, " bandwidths, got ", kernel_params.size());
      for (double s : kernel_params) {
        TORCH_CHECK_VALUE(std::isfinite(s) && s > 0, op, ": bandwidths must be finite and > 0, got ", s);
        const double coef = kernel == Kernel::Rbf ? -1.0 / (2.0 * s * s) : -1.0 / s;
        // the slope reads 2 coef: a bandwidth so small that it overflows would give 0 * inf = NaN at distance 0
        TORCH_CHECK_VALUE(std::isfinite(coef) && std::abs(2 * coef) <= largest, op, ": bandwidths: ", s,
                          " is too small for ", wide ? "float64" : "float32", " (its kernel's coefficient overflows)");
        kp.coef[kp.count++] = coef;
      }
      break;
    case Kernel::Energy:
      TORCH_CHECK_VALUE(kernel_params.empty(), op, ": the energy kernel takes no parameters, got ",
                        kernel_params.size());
      break;
    case Kernel::Polynomial: {
      TORCH_CHECK_VALUE(kernel_params.size() == 3, op,
                        ": the polynomial kernel takes [degree, gamma, coef], got ", kernel_params.size(), " values");
      const double degree = kernel_params[0], gamma = kernel_params[1], offset = kernel_params[2];
      // The power is a loop of multiplications (exact for integers, defined for a negative base): keep it short.
      TORCH_CHECK_VALUE(degree == std::floor(degree) && degree >= 1 && degree <= kMaxDegree, op,
                        ": degree must be an integer in [1, ", kMaxDegree, "], got ", degree);
      TORCH_CHECK_VALUE(std::isfinite(gamma) && gamma > 0, op, ": gamma must be finite and > 0, got ", gamma);
      TORCH_CHECK_VALUE(std::isfinite(offset), op, ": coef must be finite, got ", offset);
      kp.degree = static_cast<int>(degree);
      kp.gamma = gamma;
      kp.offset = offset;
      break;
    }
  }
  return kp;
}

inline MmdSpec make_spec(const at::Tensor& x, const at::Tensor& y, at::ArrayRef<double> kernel_params,
                         c10::string_view kernel, bool unbiased) {
  constexpr const char* op = "fastgan.mmd";
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
                   ": x must be float32 or float64 (float16/bfloat16 are promoted by fastgan.mmd), got ",
                   x.scalar_type());
  check_same_device_and_dtype(x, "x", y, "y", op);
  TORCH_CHECK_VALUE(x.dim() == 2 && y.dim() == 2, op, ": x and y must be [n, d] and [m, d], got ", x.sizes(),
                    " and ", y.sizes());
  TORCH_CHECK_VALUE(x.size(1) == y.size(1), op, ": x and y must have the same dimension d, got ", x.size(1),
                    " and ", y.size(1));
  TORCH_CHECK_VALUE(x.size(1) >= 1, op, ": x and y need d >= 1 dimensions, got [n, 0] samples");
  const int64_t n = x.size(0), m = y.size(0);
  const int64_t minimum = unbiased ? 2 : 1;
  TORCH_CHECK_VALUE(n >= minimum && m >= minimum, op, ": the ", unbiased ? "unbiased" : "biased",
                    " estimator needs at least ", minimum, " samples in x and in y, got ", n, " and ", m);
  MmdSpec spec{};
  spec.kernel = parse_name(kernel, name_table<Kernel>(), op, "kernel");
  spec.params = make_kernel_params(spec.kernel, kernel_params, x.scalar_type() == at::kDouble, op);
  const double dn = static_cast<double>(n), dm = static_cast<double>(m);
  spec.w_xx = unbiased ? 1.0 / (dn * (dn - 1)) : 1.0 / (dn * dn);
  spec.w_yy = unbiased ? 1.0 / (dm * (dm - 1)) : 1.0 / (dm * dm);
  spec.w_xy = 1.0 / (dn * dm);
  spec.skip_diagonal = unbiased;
  return spec;
}

// What a device implements (registered with EngineTable<MmdEngine>). x [n, d] and y [m, d] are contiguous, on the
// engine's device, of one dtype (float32 or float64).
// Whether the pair sums run on GEMM tiles (docs/DESIGN.md, section 10a): the rbf and polynomial kernels where d is
// at least the device's crossover (min_d: mmd_cpu.cpp's kGemmMinD, mmd_gemm.cuh's kCudaGemmMinD).
// FASTGAN_MMD_GEMM_MIN_D overrides it on every device (tests and A/B benchmarks; 1: always, a large value: never).
inline bool takes_gemm_path(const MmdSpec& spec, const at::Tensor& x, const at::Tensor& y, int64_t min_d) {
  const char* value = std::getenv("FASTGAN_MMD_GEMM_MIN_D");
  if (value != nullptr && *value != '\0') min_d = std::atoll(value);
  return (spec.kernel == Kernel::Rbf || spec.kernel == Kernel::Polynomial) && x.size(1) >= min_d &&
         x.size(0) > 0 && y.size(0) > 0;
}

struct MmdEngine {
  // out: 0-d, x's dtype
  void (*forward)(const MmdSpec& spec, const at::Tensor& x, const at::Tensor& y, at::Tensor& out);
  // grad: 0-d, x's dtype, on x's device; grad_x and grad_y: zeroed, shaped like x and y
  void (*backward)(const MmdSpec& spec, const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y,
                   at::Tensor& grad_x, at::Tensor& grad_y);
};

}  // namespace fastgan::mmd
