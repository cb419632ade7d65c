// Argument checks shared by every op entry point. Messages name the op and the argument, and say what was
// expected and what was given, so the user can fix the call without reading the source.
#pragma once

#include <ATen/ATen.h>



namespace fastgan {

inline bool is_supported_float(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

inline void check_float_tensor(const at::Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK_TYPE(is_supported_float(t.scalar_type()), op, ": ", arg,
                   " must be a float32, float64, float16 or bfloat16 tensor, got ", t.scalar_type());
}

inline void check_same_device_and_dtype(const at::Tensor& x, const char* x_name, const at::Tensor& y,
                                        const char* y_name, const char* op) {
  TORCH_CHECK_VALUE(x.device() == y.device(), op, ": ", x_name, " and ", y_name,
                    " must be on the same device, got ", x.device(), " and ", y.device());
  TORCH_CHECK_TYPE(x.scalar_type() == y.scalar_type(), op, ": ", x_name, " and ", y_name,
                   " must have the same dtype, got ", x.scalar_type(), " and ", y.scalar_type());
}

// The dtype reductions accumulate in: float64 for float64 inputs, float32 for everything narrower.
inline at::ScalarType accumulate_type(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace fastgan
