// The dtypes the per-ISA CPU kernels take (they see raw pointers, not Tensors), and the mapping from torch's.
#pragma once

#include <cstdint>

#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

namespace fastgan::cpu {

enum class DType : int8_t { Float, Double, Half, BFloat16 };

inline DType kernel_dtype(c10::ScalarType t, const char* op) {
  switch (t) {
    case c10::ScalarType::Float: return DType::Float;
    case c10::ScalarType::Double: return DType::Double;
    case c10::ScalarType::Half: return DType::Half;
    case c10::ScalarType::BFloat16: return DType::BFloat16;
    default: TORCH_CHECK_TYPE(false, op, ": expected float32, float64, float16 or bfloat16, got ", t);
  }
}

}  // namespace fastgan::cpu
