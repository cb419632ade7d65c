// CPU samplers, compiled once per ISA. Work is cut into groups of kGroup elements aligned to the stream index (not
// to the output), each group computed whole with vector math into a buffer and the needed part copied out. So an
// element's bits depend only on its stream index: not on the offset, the output size or the thread count (a
// scalar tail would round differently from the vector lanes and break that).
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <type_traits>

#include "../common/vec_math.h"
#include "sampling_cpu_kernel.h"

namespace fastgan::sampling::cpu::FASTGAN_ISA {
namespace {

constexpr int64_t kGroup = 256;  // elements per group: 64 Philox blocks; a multiple of every vector width * 2

// Words g * kGroup .. g * kGroup + kGroup - 1 of the stream (a loop the compiler can vectorise).
void group_words(uint64_t seed, uint64_t stream, int64_t group, uint32_t* words) {
  const uint64_t first_block = static_cast<uint64_t>(group) * (kGroup / 4);
  for (int64_t q = 0; q < kGroup / 4; ++q) {
    const philox::Words w = philox::block(seed, stream, first_block + q);
    for (int k = 0; k < 4; ++k) words[4 * q + k] = w.w[k];
  }
}

// The kGroup values of one group, in the compute type T (float, or double for float64 output).
template <Dist D, class T>
void group_values(const FillArgs& args, int64_t group, T* values) {
  using Vec = at::vec::Vectorized<T>;
  alignas(64) uint32_t words[kGroup];
  group_words(args.seed, args.stream, group, words);
  const Vec a(static_cast<T>(args.a)), b(static_cast<T>(args.b));
  if constexpr (D == Dist::Normal) {
    alignas(64) T u1[kGroup / 2], u2[kGroup / 2], z0[kGroup / 2], z1[kGroup / 2];
    for (int64_t k = 0; k < kGroup / 2; ++k) {
      u1[k] = to_uniform<T>(words[2 * k], UniformKind::OpenLow);
      u2[k] = to_uniform<T>(words[2 * k + 1], UniformKind::ClosedLow);
    }
    for (int64_t k = 0; k < kGroup / 2; k += Vec::size()) {
      Vec r0, r1;
      box_muller(Vec::loadu(u1 + k), Vec::loadu(u2 + k), r0, r1);
      (a + b * r0).store(z0 + k);
      (a + b * r1).store(z1 + k);
    }
    for (int64_t k = 0; k < kGroup / 2; ++k) {
      values[2 * k] = z0[k];
      values[2 * k + 1] = z1[k];
    }
  } else {
    constexpr bool kPrecise = std::is_same_v<T, double>;
    alignas(64) T u[kGroup];
    for (int64_t i = 0; i < kGroup; ++i) u[i] = to_uniform<T>(words[i], uniform_kind(D));
    for (int64_t i = 0; i < kGroup; i += Vec::size())
      from_uniform<D, kPrecise>(Vec::loadu(u + i), a, b).store(values + i);
  }
}

template <Dist D, class S>
void fill_typed(const FillArgs& args) {
  using T = std::conditional_t<std::is_same_v<S, double>, double, float>;
  S* out = static_cast<S*>(args.out);
  const int64_t end = args.start + args.count;
  const int64_t first = args.start / kGroup, last = (end - 1) / kGroup;
  at::parallel_for(first, last + 1, 16, [&](int64_t g0, int64_t g1) {
    alignas(64) T values[kGroup];
    for (int64_t g = g0; g < g1; ++g) {
      group_values<D, T>(args, g, values);
      const int64_t lo = std::max(args.start, g * kGroup), hi = std::min(end, (g + 1) * kGroup);
      S* dst = out + (lo - args.start);
      const T* src = values + (lo - g * kGroup);
      if constexpr (std::is_same_v<S, T>) {
        std::copy(src, src + (hi - lo), dst);
      } else {
        at::vec::convert(src, dst, hi - lo);
      }
    }
  });
}

}  // namespace

void fill(const FillArgs& args) {
  if (args.count <= 0) return;
  dispatch_dist(args.dist, [&](auto dist) {
    constexpr Dist D = decltype(dist)::value;
    switch (args.dtype) {
      case DType::Float: return fill_typed<D, float>(args);
      case DType::Double: return fill_typed<D, double>(args);
      case DType::Half: return fill_typed<D, c10::Half>(args);
      case DType::BFloat16: return fill_typed<D, c10::BFloat16>(args);
    }
  });
}

void fill_words(uint64_t seed, uint64_t stream, int64_t start, int64_t count, int64_t* out) {
  if (count <= 0) return;
  const int64_t end = start + count;
  const int64_t first = start / kGroup, last = (end - 1) / kGroup;
  at::parallel_for(first, last + 1, 64, [&](int64_t g0, int64_t g1) {
    alignas(64) uint32_t words[kGroup];
    for (int64_t g = g0; g < g1; ++g) {
      group_words(seed, stream, g, words);
      const int64_t lo = std::max(start, g * kGroup), hi = std::min(end, (g + 1) * kGroup);
      for (int64_t e = lo; e < hi; ++e) out[e - start] = words[e - g * kGroup];
    }
  });
}

}  // namespace fastgan::sampling::cpu::FASTGAN_ISA
