// The gradient-penalty family's checks and per-device engine; the entry points are in penalty_ops.cpp.
#pragma once

#include <ATen/ATen.h>

#include <cmath>

#include "../common/checks.h"
#include "penalty.h"

namespace fastgan::penalty {

// A checked penalty: `weight / B * sum_i (|g_i| - centre)^2` over the rows of grads [B, F] (F: the trailing
// dimensions flattened).
struct PenaltySpec {
  double centre, weight;
  int64_t batch, features;
};

inline PenaltySpec make_spec(const at::Tensor& grads, double centre, double weight, const char* op) {
  check_float_tensor(grads, op, "grads");
  TORCH_CHECK_VALUE(grads.dim() >= 1 && grads.size(0) >= 1, op,
                    ": grads must be [B, ...] with B >= 1 samples (the penalty is a mean over them), got ",
                    grads.sizes());
  TORCH_CHECK_VALUE(std::isfinite(centre) && centre >= 0, op, ": centre must be finite and >= 0, got ", centre);
  TORCH_CHECK_VALUE(std::isfinite(weight) && weight >= 0, op, ": weight must be finite and >= 0, got ", weight);
  return {.centre = centre, .weight = weight, .batch = grads.size(0), .features = grads.numel() / grads.size(0)};
}

// What a device implements (registered with EngineTable<PenaltyEngine>). grads is contiguous [B, F].
struct PenaltyEngine {
  // penalty: 0-d, grads' dtype; norms: [B], the accumulate dtype: |g_i|
  void (*forward)(const PenaltySpec& spec, const at::Tensor& grads, at::Tensor& penalty, at::Tensor& norms);
  // grad: 0-d upstream gradient of the penalty (grads' dtype); out: shaped like grads,
  // grad * gradient_factor(|g_i|) * g_i
  void (*backward)(const PenaltySpec& spec, const at::Tensor& grad, const at::Tensor& grads, const at::Tensor& norms,
                   at::Tensor& out);
};

}  // namespace fastgan::penalty
