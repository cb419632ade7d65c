// The GAN loss families as per-element terms. A GAN loss (discriminator or generator step) is the sum of at most
// two reduced terms, one per input tensor:
//
//     loss = reduce_a(scale_a * f(a_i; param_a)) + reduce_b(scale_b * f(b_i; param_b))      (layout Halves)
//     loss = reduce(scale_a * f(sign * (a_i - b_i); param_a))                                  (layout Paired)
//
// where f is one of the term kinds below and reduce is a mean over that tensor's own elements, a sum, or nothing.
// Each kind gives its value, its derivative (for the fused backward) and the "score" D(x) that training loops log.
// CPU and CUDA kernels are only loops around these functions, so both devices compute the same math.
#pragma once

#include <cstdint>
#include <type_traits>

#include "../common/enum.h"
#include "../common/math.h"

namespace fastgan::losses {

// The per-element terms, each once: the enum and every dispatch come from this list (the names are for messages).
#define FASTGAN_TERM_KINDS(X)                                                                                    \
  X(BceLogits, "bce_logits") /* softplus(x) - t * x   = BCE-with-logits against target t */                       \
  X(BceProbs, "bce_probs")   /* -(t max(log p, -100) + (1 - t) max(log(1 - p), -100)) = nn.BCELoss, target t */  \
  X(Hinge, "hinge")          /* relu(1 + s * x)        (s = -1 for real, +1 for fake) */                          \
  X(Linear, "linear")        /* x */                                                                              \
  X(Square, "square")        /* (x - c)^2 / 2 */
FASTGAN_DEFINE_ENUM(TermKind, FASTGAN_TERM_KINDS)

enum class Layout : int8_t { Halves, Paired };
#define FASTGAN_REDUCTIONS(X) X(Mean, "mean") X(Sum, "sum") X(None, "none")
FASTGAN_DEFINE_ENUM(Reduction, FASTGAN_REDUCTIONS)

// f(x) = scale * kind(x; constant), the kind's constant being BCE's target, hinge's sign (-1 real, +1 fake) or
// least squares' centre (linear has none)
struct Term {
  double scale = 1.0;
  double constant = 0.0;
};

// Everything the kernels need to know about the loss, decided once on the host (loss_ops.cpp) from the user's
// arguments. For Halves, tensor a may be absent (the generator step only has fake logits): then it has 0 elements.
struct LossSpec {
  TermKind kind = TermKind::BceLogits;
  Layout layout = Layout::Halves;
  Reduction reduction = Reduction::Mean;
  Term real, fake;        // fake unused for Paired
  float pair_sign = 1.f;  // Paired: the term is applied to pair_sign * (a - b)
};

// Per-element results of the forward pass. Each kind also has score(x) alone, for the paired layout.
template <class V>
struct TermValue {
  V loss;
  V score;  // D's output as a probability for the BCE kinds, the raw score otherwise
};

// The functions of each kind, of x and the term's constant as a V. Derivatives follow PyTorch's own conventions
// at kinks (relu'(0) = 0) and nn.BCELoss's clamp of p (1 - p) at 1e-12, so results match the eager losses.
template <TermKind K>
struct TermFn;

template <>
struct TermFn<TermKind::BceLogits> {
  template <class V>
  static FASTGAN_HD TermValue<V> value(V x, V target) {
    math::Logistic<V> l(x);
    return {l.softplus_minus(x, target), l.sigmoid()};
  }
  template <class V>
  static FASTGAN_HD V score(V x) {
    return math::Logistic<V>(x).sigmoid();
  }
  // d/dx = sigmoid(x) - t, written as (1 - t) sigmoid(x) - t sigmoid(-x) so that neither t = 0 nor t = 1
  // loses the small tail to cancellation.
  template <class V>
  static FASTGAN_HD V deriv(V x, V target) {
    math::Logistic<V> l(x);
    return (V(1) - target) * l.sigmoid() - target * l.sigmoid_neg();
  }
};

template <>
struct TermFn<TermKind::BceProbs> {
  template <class V>
  static FASTGAN_HD TermValue<V> value(V p, V target) {
    // p outside [0, 1] makes a log argument negative: the loss is NaN, never silently clamped.
    V log_p = math::clamp_min(math::log(p), V(-100));
    V log_q = math::clamp_min(math::log1p(V(0) - p), V(-100));
    return {V(0) - (target * log_p + (V(1) - target) * log_q), p};
  }
  template <class V>
  static FASTGAN_HD V score(V p) {
    return p;
  }
  template <class V>
  static FASTGAN_HD V deriv(V p, V target) {
    V pq = p * (V(1) - p);
    V d = (p - target) / math::clamp_min(pq, V(1e-12));
    return math::select<V>(pq < V(0), V(NAN), d);  // out of [0, 1]: NaN like the loss
  }
};

template <>
struct TermFn<TermKind::Hinge> {
  template <class V>
  static FASTGAN_HD TermValue<V> value(V x, V sign) {
    return {math::relu(V(1) + sign * x), x};
  }
  template <class V>
  static FASTGAN_HD V score(V x) {
    return x;
  }
  template <class V>
  static FASTGAN_HD V deriv(V x, V sign) {
    return math::select<V>(V(1) + sign * x <= V(0), V(0), sign);
  }
};

template <>
struct TermFn<TermKind::Linear> {
  template <class V>
  static FASTGAN_HD TermValue<V> value(V x, V) {
    return {x, x};
  }
  template <class V>
  static FASTGAN_HD V score(V x) {
    return x;
  }
  template <class V>
  static FASTGAN_HD V deriv(V, V) {
    return V(1);
  }
};

template <>
struct TermFn<TermKind::Square> {
  template <class V>
  static FASTGAN_HD TermValue<V> value(V x, V centre) {
    V d = x - centre;
    return {V(0.5) * d * d, x};
  }
  template <class V>
  static FASTGAN_HD V score(V x) {
    return x;
  }
  template <class V>
  static FASTGAN_HD V deriv(V x, V centre) {
    return x - centre;
  }
};

}  // namespace fastgan::losses
