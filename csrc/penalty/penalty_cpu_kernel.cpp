// CPU gradient-penalty kernels, compiled once per ISA. Determinism: every row is cut into fixed chunks of kChunk
// elements whatever the thread count, each chunk summed in a fixed lane order, the chunks of a row added in index
// order in double. So a penalty has the same bits with 1 thread or 64.
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <vector>

#include "../common/parallel.h"
#include "../common/vec_math.h"
#include "penalty_cpu_kernel.h"

namespace fastgan::penalty::cpu::FASTGAN_ISA {
namespace {

constexpr int64_t kChunk = 8192;  // unit of parallel work and of the deterministic partition
constexpr int64_t kBlock = 512;   // unit of dtype conversion (a stack buffer for float16 and bfloat16)

// Runs fn(row, begin, end, chunk index) over every fixed chunk of every row, in parallel.
template <class Fn>
void for_each_chunk(const RowParams& p, const Fn& fn) {
  const int64_t per_row = std::max<int64_t>(1, (p.features + kChunk - 1) / kChunk);
  fastgan::parallel_for(0, p.rows * per_row, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = t / per_row, begin = (t % per_row) * kChunk;
      fn(row, begin, std::min(p.features, begin + kChunk), t);
    }
  });
}

// x[0, m) as Acc<S>: in place, or converted into `buffer`.
template <class S>
const Acc<S>* as_acc(const S* x, int64_t m, Acc<S>* buffer) {
  if constexpr (std::is_same_v<S, Acc<S>>) {
    return x;
  } else {
    at::vec::convert(x, buffer, m);
    return buffer;
  }
}

template <class S>
void row_squares_typed(const RowParams& p, double* squares) {
  using T = Acc<S>;
  using Vec = at::vec::Vectorized<T>;
  const S* g = static_cast<const S*>(p.grads);
  const int64_t per_row = std::max<int64_t>(1, (p.features + kChunk - 1) / kChunk);
  std::vector<double> partial(static_cast<size_t>(p.rows * per_row));
  for_each_chunk(p, [&](int64_t row, int64_t begin, int64_t end, int64_t t) {
    alignas(64) T buffer[kBlock];
    Vec acc(T(0));
    double tail = 0;
    for (int64_t b = begin; b < end; b += kBlock) {
      const int64_t m = std::min(kBlock, end - b);
      const T* x = as_acc(g + row * p.features + b, m, buffer);
      int64_t j = 0;
      for (; j + Vec::size() <= m; j += Vec::size()) {
        const Vec v = Vec::loadu(x + j);
        acc = math::fma(v, v, acc);
      }
      for (; j < m; ++j) tail += static_cast<double>(x[j]) * x[j];
    }
    partial[static_cast<size_t>(t)] = math::lane_sum(acc) + tail;
  });
  for (int64_t row = 0; row < p.rows; ++row) {
    double total = 0;
    for (int64_t c = 0; c < per_row; ++c) total += partial[static_cast<size_t>(row * per_row + c)];
    squares[row] = total;
  }
}

template <class S>
void scale_rows_typed(const RowParams& p, const double* factor, void* out_ptr) {
  using T = Acc<S>;
  using Vec = at::vec::Vectorized<T>;
  const S* g = static_cast<const S*>(p.grads);
  S* out = static_cast<S*>(out_ptr);
  for_each_chunk(p, [&](int64_t row, int64_t begin, int64_t end, int64_t) {
    alignas(64) T in_buffer[kBlock], out_buffer[kBlock];
    const T f = static_cast<T>(factor[row]);
    for (int64_t b = begin; b < end; b += kBlock) {
      const int64_t m = std::min(kBlock, end - b), at = row * p.features + b;
      const T* x = as_acc(g + at, m, in_buffer);
      T* y = std::is_same_v<S, T> ? reinterpret_cast<T*>(out + at) : out_buffer;
      int64_t j = 0;
      for (; j + Vec::size() <= m; j += Vec::size()) (Vec(f) * Vec::loadu(x + j)).store(y + j);
      for (; j < m; ++j) y[j] = f * x[j];
      if constexpr (!std::is_same_v<S, T>) at::vec::convert(out_buffer, out + at, m);
    }
  });
}

}  // namespace

void row_squares(const RowParams& p, double* squares) {
  fastgan::cpu::dispatch_dtype(p.dtype, [&](auto tag) { row_squares_typed<decltype(tag)>(p, squares); });
}

void scale_rows(const RowParams& p, const double* factor, void* out) {
  fastgan::cpu::dispatch_dtype(p.dtype, [&](auto tag) { scale_rows_typed<decltype(tag)>(p, factor, out); });
}

}  // namespace fastgan::penalty::cpu::FASTGAN_ISA
