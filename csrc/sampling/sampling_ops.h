// The sampler family's argument parsing and checks and its per-device engine; the entry points are in
// sampling_ops.cpp.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../common/checks.h"
#include "../common/dtype.h"
#include "sampling.h"

namespace fastgan::sampling {

inline Dist parse_dist(c10::string_view name) {
  return parse_name(name, name_table<Dist>(), "fastgan::fill_latent_", "dist");
}

inline void check_fill(const at::Tensor& out, int64_t offset, const std::optional<at::Tensor>& offset_tensor,
                       const char* op) {
  TORCH_CHECK_VALUE(out.is_contiguous(), op, ": out must be contiguous");
  check_stream_range(offset, out.numel(), op, "offset");
  NamedTensors read;
  if (offset_tensor.has_value()) {
    TORCH_CHECK_TYPE(offset_tensor->scalar_type() == at::kLong && offset_tensor->numel() == 1, op,
                     ": offset_tensor must be a one-element int64 tensor");
    TORCH_CHECK_VALUE(offset_tensor->device() == out.device(), op, ": offset_tensor must be on ", out.device(),
                      ", got ", offset_tensor->device());
    read.emplace_back(&*offset_tensor, "offset_tensor");
  }
  check_in_place({{&out, "out"}}, read, op);
}

inline void check_sample_cdf(const at::Tensor& cdf, const at::Tensor& out) {
  constexpr const char* op = "fastgan::sample_cdf_";
  TORCH_CHECK_TYPE(cdf.scalar_type() == at::kFloat || cdf.scalar_type() == at::kDouble, op,
                   ": cdf must be float32 or float64, got ", cdf.scalar_type());
  TORCH_CHECK_VALUE(cdf.dim() == 2 && cdf.size(1) > 0 && cdf.is_contiguous(), op,
                    ": cdf must be a contiguous [rows, bins] tensor with bins > 0, got ", cdf.sizes());
  TORCH_CHECK_TYPE(out.scalar_type() == at::kLong, op, ": out must be int64");
  TORCH_CHECK_VALUE(out.dim() == 2 && out.size(0) == cdf.size(0) && out.is_contiguous(), op,
                    ": out must be a contiguous [rows, n] tensor with the rows of cdf");
  TORCH_CHECK_VALUE(out.device() == cdf.device(), op, ": out and cdf must be on the same device");
  check_in_place({{&out, "out"}}, {{&cdf, "cdf"}}, op);
}

// A distribution's parameters as the kernels read them (sampling.h: from_uniform): a and b, and for uniform c, the
// largest value of the output dtype below b. Each exactly representable in the compute type.
struct DistConstants {
  double a, b, c;
};

// The largest value of S below `value`, a finite value of S (as a double): for the uniform's upper clamp.
template <class S>
double next_below(double value) {
  if constexpr (std::is_same_v<S, float> || std::is_same_v<S, double>) {
    return std::nextafter(static_cast<S>(value), -std::numeric_limits<S>::infinity());
  } else {  // float16 / bfloat16: step the sign-magnitude bits once towards -inf
    uint16_t bits = static_cast<S>(static_cast<float>(value)).x;
    bits = (bits & 0x7fffu) == 0 ? 0x8001u : (bits & 0x8000u) ? bits + 1 : bits - 1;
    return static_cast<float>(S(bits, S::from_bits()));
  }
}

// fill_latent_'s parameters (a, b) for `dist` into an output of `dtype`, checked against the distribution's row of
// FASTGAN_DISTS: a ValueError naming the parameter unless each is finite in the kernels' compute type and in its
// domain. So every op checks its values in C++, as fastgan/_args.py promises, and no parameter can make the draws
// NaN or infinite. A uniform's bounds are first rounded to the output dtype (what the draw can hold) and must stay
// apart there.
inline DistConstants check_dist_params(Dist dist, double a, double b, at::ScalarType dtype) {
  constexpr const char* op = "fastgan::fill_latent_";
  const DistInfo& info = dist_info(dist);
  const bool wide = dtype == at::kDouble;
  auto representable = [&](double v) { return wide ? std::isfinite(v) : std::isfinite(static_cast<float>(v)); };
  auto check = [&](double v, const DistParam& param, const char* raw) {
    switch (param.domain) {
      case Domain::Finite:
      case Domain::Positive:
        TORCH_CHECK_VALUE(representable(v), op, ": ", info.name, "'s ", param.name, " (", raw, ") must be finite in ",
                          wide ? "float64" : "float32", " (the draw's compute type), got ", v);
        TORCH_CHECK_VALUE(param.domain != Domain::Positive || v > 0, op, ": ", info.name, " needs ", param.name,
                          " > 0 (", raw, "), got ", v);
        break;
      case Domain::Probability:
        TORCH_CHECK_VALUE(v >= 0 && v <= 1, op, ": ", info.name, " needs 0 <= ", param.name, " <= 1 (", param.name,
                          " is ", raw, "), got ", v);
        break;
      case Domain::Unused:
        TORCH_CHECK_VALUE(v == 0, op, ": ", info.name, " has one parameter (a); ", raw, " must be 0, got ", v);
        break;
      case Domain::UniformBounds:
      case Domain::TruncationErf:
        break;  // checked as a pair below
    }
  };
  check(a, info.a, "a");
  check(b, info.b, "b");
  if (info.a.domain == Domain::TruncationErf) {
    // a = erf(t / sqrt 2) and b = erfc(t / sqrt 2) of the truncation t > 0: fastgan.latent computes them in float64
    TORCH_CHECK_VALUE(a > 0 && a <= 1 && b >= 0 && b < 1 && std::abs(a + b - 1) <= 1e-12, op, ": ", info.name,
                      " takes a = erf(t / sqrt(2)) and b = erfc(t / sqrt(2)) of a truncation t > 0 (a in (0, 1], "
                      "b = 1 - a), got a = ", a, " and b = ", b);
  }
  if (info.a.domain != Domain::UniformBounds) return {a, b, 0};
  TORCH_CHECK_VALUE(representable(a), op, ": uniform's low (a) must be finite in ", wide ? "float64" : "float32",
                    ", got ", a);
  TORCH_CHECK_VALUE(representable(b), op, ": uniform's high (b) must be finite in ", wide ? "float64" : "float32",
                    ", got ", b);
  return AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "uniform bounds", [&] {
    const double lo = wide ? a : static_cast<float>(static_cast<scalar_t>(a));
    const double hi = wide ? b : static_cast<float>(static_cast<scalar_t>(b));
    TORCH_CHECK_VALUE(std::isfinite(lo) && std::isfinite(hi) && lo < hi, op, ": uniform needs finite low < high in ",
                      dtype, ", got low = ", a, " and high = ", b, " (", lo, " and ", hi, " in ", dtype, ")");
    TORCH_CHECK_VALUE(representable(hi - lo), op, ": uniform's high - low overflows the compute type, got low = ",
                      a, " and high = ", b);
    return DistConstants{lo, hi, next_below<scalar_t>(hi)};
  });
}

// A fill_latent_ call, checked: draws of `dist` (parameters a, b, c: check_dist_params) from stream (seed, stream),
// element offset .. (plus the offset tensor's value, read on the device, when the call gives one).
struct LatentSpec {
  Dist dist;
  DistConstants params;
  uint64_t seed, stream;
  int64_t offset;
};

// What a device implements (registered with EngineTable<SamplingEngine>). Outputs are contiguous, non-empty, on the
// engine's device.
struct SamplingEngine {
  // out: int64, words offset .. of stream (seed, stream)
  void (*fill_random_bits)(at::Tensor& out, uint64_t seed, uint64_t stream, int64_t offset);
  // out: float32, float64, float16 or bfloat16; offset_tensor: one int64 on out's device, or none (a sampler
  // object keeps its position there, so a captured CUDA graph draws anew on each replay); a total offset below 0
  // fills out with NaN on every device (the CUDA kernel cannot raise)
  void (*fill_latent)(at::Tensor& out, const LatentSpec& spec, const std::optional<at::Tensor>& offset_tensor);
  // cdf [rows, bins] float32/float64, out [rows, n] int64: row r draws words offset .. of stream + r
  void (*sample_cdf)(const at::Tensor& cdf, at::Tensor& out, uint64_t seed, uint64_t stream, int64_t offset);
};

}  // namespace fastgan::sampling
