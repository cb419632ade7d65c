// Ops<Vectorized<T>>: lets the formulas of math.h run on at::vec lanes (CPU kernels only).
#pragma once

#include <ATen/cpu/vec/vec.h>
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#endif

#include <cmath>
#include <type_traits>

#include "math.h"

namespace fastgan::math {

template <class T>
struct Ops<at::vec::Vectorized<T>> {
  using V = at::vec::Vectorized<T>;
  using Mask = V;  // comparisons of Vectorized return all-ones / all-zeros lanes of the same type
  using Scalar = T;
  static V exp(const V& x) { return x.exp(); }
  static V log(const V& x) { return x.log(); }
  static V log1p(const V& x) { return x.log1p(); }
  static V abs(const V& x) { return x.abs(); }
  static V sqrt(const V& x) { return x.sqrt(); }
  static V sin(const V& x) { return x.sin(); }
  static V cos(const V& x) { return x.cos(); }
  static V erf(const V& x) { return x.erf(); }
  static V tan(const V& x) { return x.tan(); }
  static V select(const V& mask, const V& if_true, const V& if_false) { return V::blendv(if_false, if_true, mask); }
  static V round(const V& x) { return x.round(); }  // to the nearest integer, ties to even
  // x 2^(n + 64) for integer-valued n, rounded once, float32 (math.h's Ops<float>::scale2_biased says the range):
  // AVX-512's vscalefps does exactly that; AVX2 builds the normal power 2^(n + 64) from exponent bits.
  static V scale2_biased(const V& x, const V& n) {
    static_assert(std::is_same_v<T, float>, "scale2_biased: float32 only (exp_neg)");
#if defined(CPU_CAPABILITY_AVX512)
    return _mm512_scalef_ps(x, n + V(64.0f));
#elif defined(CPU_CAPABILITY_AVX2)
    const __m256i field = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127 + 64));
    return _mm256_mul_ps(x, _mm256_castsi256_ps(_mm256_slli_epi32(field, 23)));
#else
    alignas(64) T xs[V::size()], ns[V::size()];
    x.store(xs);
    n.store(ns);
    for (int i = 0; i < V::size(); ++i) xs[i] = Ops<float>::scale2_biased(xs[i], ns[i]);
    return V::loadu(xs);
#endif
  }
  static V fma(const V& x, const V& y, const V& z) {
#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
    return at::vec::fmadd(x, y, z);  // vfmadd: one rounding
#else
    // The portable Vectorized's fmadd is x * y + z, rounded twice; std::fma per lane rounds once (glibc picks the
    // hardware instruction at run time where there is one).
    alignas(64) T xs[V::size()], ys[V::size()], zs[V::size()];
    x.store(xs);
    y.store(ys);
    z.store(zs);
    for (int i = 0; i < V::size(); ++i) xs[i] = std::fma(xs[i], ys[i], zs[i]);
    return V::loadu(xs);
#endif
  }
};

// The sum of a vector's lanes, in index order and in double: the same bits for the same lanes, always.
template <class T>
double lane_sum(const at::vec::Vectorized<T>& v) {
  alignas(64) T lanes[at::vec::Vectorized<T>::size()];
  v.store(lanes);
  double total = 0;
  for (T lane : lanes) total += lane;
  return total;
}

}  // namespace fastgan::math
