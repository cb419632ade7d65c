// Ops<Vectorized<T>>: lets the formulas of math.h run on at::vec lanes (CPU kernels only).
#pragma once

#include <ATen/cpu/vec/vec.h>

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
