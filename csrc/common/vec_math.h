// Ops<Vectorized<T>>: lets the formulas of math.h run on at::vec lanes (CPU kernels only).
#pragma once

#include <ATen/cpu/vec/vec.h>

#include "math.h"

namespace fastgan::math {

template <class T>
struct Ops<at::vec::Vectorized<T>> {
  using V = at::vec::Vectorized<T>;
  using Mask = V;  // comparisons of Vectorized return all-ones / all-zeros lanes of the same type
  static V exp(const V& x) { return x.exp(); }
  static V log(const V& x) { return x.log(); }
  static V log1p(const V& x) { return x.log1p(); }
  static V abs(const V& x) { return x.abs(); }
  static V select(const V& mask, const V& if_true, const V& if_false) { return V::blendv(if_false, if_true, mask); }
};

}  // namespace fastgan::math
