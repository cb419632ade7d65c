// Gradient penalties as a per-sample function of the discriminator's input gradient g_i (one row of a [B, F] tensor):
//
//     penalty = weight / B * sum_i (|g_i| - centre)^2
//
// centre 0 is R1 / R2 (Mescheder et al. 2018: weight = gamma / 2, times StyleGAN2's lazy interval) and the
// zero-centred GP; centre 1 is WGAN-GP (Gulrajani et al. 2017: weight = lambda). The row sums of squares are the
// kernels' work; these are the formulas around them, once for every device.
#pragma once

#include "../common/math.h"

namespace fastgan::penalty {

// (|g| - centre)^2 from s = |g|^2. Centre 0 is s itself: no square root, so no rounding and no sqrt'(0).
template <class T>
FASTGAN_HD T centred_square(T s, T centre) {
  if (centre == T(0)) return s;
  const T d = math::sqrt(s) - centre;
  return d * d;
}

// d penalty / d g_i = factor * g_i: weight / B * 2 (|g| - centre) / |g|, from the forward's norm |g|. At |g| = 0
// with centre > 0 the gradient of |g| is undefined (the direction g / |g|); the factor is 0 there, the
// minimum-norm subgradient, where the hand-written torch.sqrt(sum g^2) gives NaN.
template <class T>
FASTGAN_HD T gradient_factor(T norm, T centre, T weight_over_batch) {
  if (centre == T(0)) return T(2) * weight_over_batch;
  if (norm == T(0)) return T(0);
  return T(2) * weight_over_batch * (norm - centre) / norm;  // NaN and inf norms give NaN: NaN in, NaN out
}

}  // namespace fastgan::penalty
