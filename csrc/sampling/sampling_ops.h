// The sampler family's argument parsing and checks and its per-device engine; the entry points are in
// sampling_ops.cpp.
#pragma once

#include <ATen/ATen.h>

#include "../common/checks.h"
#include "sampling.h"

namespace fastgan::sampling {

inline Dist parse_dist(c10::string_view name) {
  return parse_name(name, name_table<Dist>(), "fastgan::fill_latent_", "dist");
}

inline void check_fill(const at::Tensor& out, int64_t offset, const std::optional<at::Tensor>& offset_tensor,
                       const char* op) {
  TORCH_CHECK_VALUE(out.is_contiguous(), op, ": out must be contiguous");
  check_stream_range(offset, out.numel(), op, "offset");
  if (offset_tensor.has_value()) {
    TORCH_CHECK_TYPE(offset_tensor->scalar_type() == at::kLong && offset_tensor->numel() == 1, op,
                     ": offset_tensor must be a one-element int64 tensor");
    TORCH_CHECK_VALUE(offset_tensor->device() == out.device(), op, ": offset_tensor must be on ", out.device(),
                      ", got ", offset_tensor->device());
  }
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
}

// A fill_latent_ call, checked: draws of `dist` (parameters a, b) from stream (seed, stream), element offset .. (plus
// the offset tensor's value, read on the device, when the call gives one).
struct LatentSpec {
  Dist dist;
  double a, b;
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
