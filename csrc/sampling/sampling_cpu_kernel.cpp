// CPU samplers, compiled once per ISA. Work is cut into groups of kGroup elements aligned to the stream index (not
// to the output), each group computed whole with vector math into a buffer and the needed part copied out. So an
// element's bits depend only on its stream index: not on the offset, the output size or the thread count (a
// scalar tail would round differently from the vector lanes and break that).
#include <ATen/cpu/vec/vec.h>
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#endif

#include <algorithm>
#include <type_traits>

#include "../common/parallel.h"
#include "../common/vec_math.h"
#include "sampling_cpu_kernel.h"

namespace fastgan::sampling::cpu::FASTGAN_ISA {
namespace {

constexpr int64_t kGroup = 256;  // elements per group: 64 Philox blocks; a multiple of every vector width * 2

// Blocks first .. first + kBlocks - 1 of one stream into words[4 kBlocks], the same words as philox::block() one
// by one, computed across blocks in SIMD. (Here, in this file's per-ISA anonymous namespace, not in philox.h: a
// non-always_inline function in a header compiled once per ISA would be merged by the linker into one copy,
// perhaps the AVX-512 one, and run on every CPU.)
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
// Each 64-bit lane carries one block's 32-bit counter word in its low half. The multiply (vpmuludq) reads only the
// low halves, so the high halves may hold garbage until the words are packed: a round is 2 multiplies, 2 shifts and
// 4 xors for 8 (AVX-512) or 4 (AVX2) blocks.
#if defined(CPU_CAPABILITY_AVX512)
using Lanes = __m512i;
constexpr int kLanes = 8;
inline Lanes splat(uint64_t v) { return _mm512_set1_epi64(static_cast<int64_t>(v)); }
inline Lanes mul32(Lanes a, Lanes b) { return _mm512_mul_epu32(a, b); }
inline Lanes high32(Lanes a) { return _mm512_srli_epi64(a, 32); }
inline Lanes xor3(Lanes a, Lanes b, Lanes c) { return _mm512_ternarylogic_epi64(a, b, c, 0x96); }
inline Lanes counters(uint64_t first) {
  return _mm512_add_epi64(splat(first), _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
}
// Lane i of lo and hi as words 2i and 2i + 1 (little-endian 64-bit lanes).
inline Lanes pack(Lanes lo, Lanes hi) {
  return _mm512_or_si512(_mm512_and_si512(lo, splat(0xffffffffu)), _mm512_slli_epi64(hi, 32));
}
// Blocks' word pairs (w0, w1) in ab and (w2, w3) in cd -> 4 kLanes words in block order.
inline void store_blocks(Lanes ab, Lanes cd, uint32_t* out) {
  const __m512i first = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
  const __m512i second = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
  _mm512_storeu_si512(out, _mm512_permutex2var_epi64(ab, first, cd));
  _mm512_storeu_si512(out + 16, _mm512_permutex2var_epi64(ab, second, cd));
}
#else
using Lanes = __m256i;
constexpr int kLanes = 4;
inline Lanes splat(uint64_t v) { return _mm256_set1_epi64x(static_cast<int64_t>(v)); }
inline Lanes mul32(Lanes a, Lanes b) { return _mm256_mul_epu32(a, b); }
inline Lanes high32(Lanes a) { return _mm256_srli_epi64(a, 32); }
inline Lanes xor3(Lanes a, Lanes b, Lanes c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
inline Lanes counters(uint64_t first) { return _mm256_add_epi64(splat(first), _mm256_set_epi64x(3, 2, 1, 0)); }
inline Lanes pack(Lanes lo, Lanes hi) {
  return _mm256_or_si256(_mm256_and_si256(lo, splat(0xffffffffu)), _mm256_slli_epi64(hi, 32));
}
inline void store_blocks(Lanes ab, Lanes cd, uint32_t* out) {
  const __m256i even = _mm256_unpacklo_epi64(ab, cd), odd = _mm256_unpackhi_epi64(ab, cd);  // blocks 0, 2 | 1, 3
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permute2x128_si256(even, odd, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), _mm256_permute2x128_si256(even, odd, 0x31));
}
#endif

template <int kBlocks>
void philox_blocks(uint64_t seed, uint64_t stream, uint64_t first, uint32_t* words) {
  static_assert(kBlocks % kLanes == 0);
  const Lanes m0 = splat(philox::kM0), m1 = splat(philox::kM1);
  for (int q = 0; q < kBlocks; q += kLanes) {
    const Lanes j = counters(first + q);
    Lanes c0 = j, c1 = high32(j), c2 = splat(stream), c3 = high32(splat(stream));
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      const Lanes p0 = mul32(c0, m0), p1 = mul32(c2, m1);
      c0 = xor3(high32(p1), c1, splat(k0));
      c2 = xor3(high32(p0), c3, splat(k1));
      c1 = p1;
      c3 = p0;
      k0 += philox::kW0;
      k1 += philox::kW1;
    }
    store_blocks(pack(c0, c1), pack(c2, c3), words + 4 * q);
  }
}
#else
// Portable: block() one block at a time (only CPUs without AVX2 run this).
template <int kBlocks>
void philox_blocks(uint64_t seed, uint64_t stream, uint64_t first, uint32_t* words) {
  for (int q = 0; q < kBlocks; ++q) {
    const philox::Words w = philox::block(seed, stream, first + q);
    for (int k = 0; k < 4; ++k) words[4 * q + k] = w.w[k];
  }
}
#endif

// Words g * kGroup .. g * kGroup + kGroup - 1 of the stream.
void group_words(uint64_t seed, uint64_t stream, int64_t group, uint32_t* words) {
  philox_blocks<kGroup / 4>(seed, stream, static_cast<uint64_t>(group) * (kGroup / 4), words);
}

// The kGroup values of one group for an output of type S, in its compute type T = Acc<S> (float, or double for
// float64 output).
template <Dist D, class S, class T = Acc<S>>
void group_values(const FillParams& args, int64_t group, T* values) {
  using Vec = at::vec::Vectorized<T>;
  alignas(64) uint32_t words[kGroup];
  group_words(args.seed, args.stream, group, words);
  const Vec a(static_cast<T>(args.a)), b(static_cast<T>(args.b)), c(static_cast<T>(args.c));
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
    for (int64_t i = 0; i < kGroup; ++i) u[i] = draw_uniform<D, kDigits<S>, T>(words[i]);
    for (int64_t i = 0; i < kGroup; i += Vec::size())
      from_uniform<D, kPrecise>(Vec::loadu(u + i), a, b, c).store(values + i);
  }
}

// Elements start .. start + count - 1 of a stream, as the groups that hold them: in parallel (`grain` groups per
// task), group_fn(group, values) makes a group's kGroup values, then the part in range is converted into
// out[0, count). Bounds are inclusive (`last`, `g * kGroup + kGroup - 1`): the stream's last index is 2^63 - 1
// (philox.h), so an exclusive end could be 2^63 and overflow int64.
template <class T, class S, class GroupFn>
void for_each_group(int64_t start, int64_t count, int64_t grain, S* out, const GroupFn& group_fn) {
  const int64_t last = start + (count - 1);
  fastgan::parallel_for(start / kGroup, last / kGroup + 1, grain, [&](int64_t g0, int64_t g1) {
    alignas(64) T values[kGroup];
    for (int64_t g = g0; g < g1; ++g) {
      group_fn(g, values);
      const int64_t lo = std::max(start, g * kGroup), hi = std::min(last, g * kGroup + (kGroup - 1));
      const T* src = values + (lo - g * kGroup);
      if constexpr (std::is_same_v<S, T> || std::is_integral_v<S>) {
        std::copy(src, src + (hi - lo + 1), out + (lo - start));  // the same type, or words widened to int64
      } else {
        at::vec::convert(src, out + (lo - start), hi - lo + 1);  // float to half or bfloat16
      }
    }
  });
}

}  // namespace

void fill(const FillParams& args) {
  if (args.count <= 0) return;
  dispatch_enum(args.dist, [&](auto dist) {
    constexpr Dist D = decltype(dist)::value;
    dispatch_dtype(args.dtype, [&](auto storage) {
      using S = decltype(storage);
      for_each_group<Acc<S>>(args.start, args.count, 16, static_cast<S*>(args.out),
                             [&](int64_t group, Acc<S>* values) { group_values<D, S>(args, group, values); });
    });
  });
}

void fill_words(const WordsParams& args) {
  if (args.count <= 0) return;
  for_each_group<uint32_t>(args.start, args.count, 64, args.out,
                           [&](int64_t group, uint32_t* words) { group_words(args.seed, args.stream, group, words); });
}

}  // namespace fastgan::sampling::cpu::FASTGAN_ISA
