// The floating dtypes of fastgan's kernels: the type they compute in, and (CPU) the mapping from torch's dtype
// for the per-ISA kernels, which see raw pointers, not Tensors.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include "macros.h"

namespace fastgan {

// The dtype reductions accumulate and kernels compute in: float64 for float64 inputs, float32 for everything
// narrower (as aten does). The one rule, for dtypes (accumulate_type) and for C++ types (Acc<S>), every device.
// (Python's copy, for the fake kernels, is fastgan._args.accumulate_dtype; a test compares it with the ops' stats.)
constexpr c10::ScalarType accumulate_type(c10::ScalarType t) {
  return t == c10::ScalarType::Double ? c10::ScalarType::Double : c10::ScalarType::Float;
}

template <class S>
using Acc = std::conditional_t<accumulate_type(c10::CppTypeToScalarType<S>::value) == c10::ScalarType::Double,
                               double, float>;

// Significand bits of storage type S (11 for float16, 8 for bfloat16): what a uniform draw into S can hold exactly.
template <class S>
constexpr int kDigits = std::numeric_limits<S>::digits;

// `value` rounded to the compute type of S (float for the 16-bit types, which c10 then rounds with inf beyond their
// range), ±inf where it lies beyond float's range: IEEE's answer, where a C++ cast of an out-of-range double to
// float is undefined behaviour (UBSan's float-cast-overflow).
template <class S>
FASTGAN_HD Acc<S> to_acc(double value) {
  if constexpr (std::is_same_v<Acc<S>, float>) {
    constexpr double kLargest = std::numeric_limits<float>::max();
    if (value > kLargest || value < -kLargest) {
      // beyond the largest float, unless it rounds back to it (within half an ulp of float's largest)
      const double limit = kLargest + 0x1.0p103;  // FLT_MAX + half its ulp (2^104 / 2)
      if (value >= limit) return std::numeric_limits<float>::infinity();
      if (value <= -limit) return -std::numeric_limits<float>::infinity();
      return value > 0 ? std::numeric_limits<float>::max() : -std::numeric_limits<float>::max();
    }
  }
  return static_cast<Acc<S>>(value);
}

namespace cpu {

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

// fn(S{}) for the storage type S of dtype: the one dtype switch of the per-ISA kernels.
template <class Fn>
decltype(auto) dispatch_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::Float: return fn(float{});
    case DType::Double: return fn(double{});
    case DType::Half: return fn(c10::Half{});
    case DType::BFloat16: return fn(c10::BFloat16{});
  }
  __builtin_unreachable();
}

}  // namespace cpu
}  // namespace fastgan
