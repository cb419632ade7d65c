// Argument checks shared by every op entry point. Messages name the op and the argument, and say what was
// expected and what was given, so the user can fix the call without reading the source.
#pragma once

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>

#include <array>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dtype.h"
#include "enum.h"
#include "philox.h"

namespace fastgan {

// The value `name` stands for in `table`; otherwise a ValueError naming the op, the argument, every accepted
// name ("'a', 'b' or 'c'", or "one of 'a', 'b', ..." for more than three) and what was given. The one parser of
// every enum argument, so a new name is one table row and the message follows.
template <class E, size_t N>
E parse_name(std::string_view name, const NameTable<E, N>& table, const char* op, const char* arg) {
  for (const auto& [accepted, value] : table) {
    if (name == accepted) return value;
  }
  std::string names = N > 3 ? "one of " : "";
  for (size_t i = 0; i < N; ++i) {
    if (i > 0) names += (N <= 3 && i + 1 == N) ? " or " : ", ";
    names += "'" + std::string(table[i].first) + "'";
  }
  TORCH_CHECK_VALUE(false, op, ": ", arg, " must be ", names, ", got '", name, "'");
}

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

// A draw of `count` words (or elements) of a stream from index `first`: a ValueError unless every index lies in
// [0, 2^63), the stream's length (philox.h). Checked on the host before any kernel runs, so no index overflows.
inline void check_stream_range(int64_t first, int64_t count, const char* op, const char* first_name) {
  TORCH_CHECK_VALUE(first >= 0, op, ": ", first_name, " must be >= 0, got ", first);
  TORCH_CHECK_VALUE(philox::fits_stream(first, count), op, ": ", first_name, " ", first, " + ", count,
                    " draws runs past the end of the stream (its indices are 0 .. 2**63 - 1)");
}

// The tensors an op writes in place must not share memory with one another or with its other tensor arguments
// (a log_prob that returns the same buffer on every call would alias the MH step's current and proposed
// log-densities, and every move would be accepted), and must not be tensors autograd tracks: a raw in-place op has no
// derivative, so a write into a leaf that requires grad would go unrecorded.
using NamedTensors = std::vector<std::pair<const at::Tensor*, const char*>>;
inline void check_in_place(const NamedTensors& written, const NamedTensors& read, const char* op) {
  for (size_t i = 0; i < written.size(); ++i) {
    const auto& [w, w_name] = written[i];
    TORCH_CHECK_VALUE(!w->requires_grad(), op, ": ", w_name, " is written in place and must not require grad (the "
                      "op has no derivative); pass a tensor made under torch.no_grad(), or detach it");
    auto check = [&](const std::pair<const at::Tensor*, const char*>& other) {
      if (other.first->numel() == 0 || w->numel() == 0) return;
      TORCH_CHECK_VALUE(at::get_overlap_status(*w, *other.first) == at::MemOverlapStatus::No, op, ": ", w_name,
                        " and ", other.second, " share memory; each needs its own (clone one of them)");
    };
    for (size_t j = i + 1; j < written.size(); ++j) check(written[j]);
    for (const auto& other : read) check(other);
  }
}


}  // namespace fastgan
