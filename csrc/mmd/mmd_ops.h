// Argument checks of the MMD ops and the estimator's weights, shared by the CPU and CUDA entry points.
#pragma once

#include <ATen/ATen.h>

#include <cmath>

#include "../common/checks.h"
#include "mmd.h"

namespace fastgan::mmd {

struct MmdSpec {
  Kernel kernel;
  Bandwidths bw;
  // MMD^2 = w_xx (S_xx - diag_x) + w_yy (S_yy - diag_y) - 2 w_xy S_xy, S the pair sums over all (i, j)
  double w_xx, w_yy, w_xy, diag_x, diag_y;
};

inline constexpr NameTable<Kernel, 3> kKernelNames{
    {{"rbf", Kernel::Rbf}, {"laplacian", Kernel::Laplacian}, {"energy", Kernel::Energy}}};

inline MmdSpec make_spec(const at::Tensor& x, const at::Tensor& y, at::ArrayRef<double> bandwidths,
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
  const int64_t n = x.size(0), m = y.size(0);
  const int64_t minimum = unbiased ? 2 : 1;
  TORCH_CHECK_VALUE(n >= minimum && m >= minimum, op, ": the ", unbiased ? "unbiased" : "biased",
                    " estimator needs at least ", minimum, " samples in x and in y, got ", n, " and ", m);
  MmdSpec spec{};
  spec.kernel = parse_name(kernel, kKernelNames, op, "kernel");
  if (spec.kernel != Kernel::Energy) {
    TORCH_CHECK_VALUE(!bandwidths.empty() && bandwidths.size() <= kMaxBandwidths, op, ": give 1 to ",
                      kMaxBandwidths, " bandwidths, got ", bandwidths.size());
    for (double s : bandwidths) {
      TORCH_CHECK_VALUE(std::isfinite(s) && s > 0, op, ": bandwidths must be finite and > 0, got ", s);
      spec.bw.coef[spec.bw.count++] = spec.kernel == Kernel::Rbf ? -1.0 / (2.0 * s * s) : -1.0 / s;
    }
  }
  const double dn = static_cast<double>(n), dm = static_cast<double>(m);
  const double k0 = kernel_at_zero(spec.kernel, spec.bw);
  spec.w_xx = unbiased ? 1.0 / (dn * (dn - 1)) : 1.0 / (dn * dn);
  spec.w_yy = unbiased ? 1.0 / (dm * (dm - 1)) : 1.0 / (dm * dm);
  spec.w_xy = 1.0 / (dn * dm);
  spec.diag_x = unbiased ? dn * k0 : 0.0;
  spec.diag_y = unbiased ? dm * k0 : 0.0;
  return spec;
}

}  // namespace fastgan::mmd
