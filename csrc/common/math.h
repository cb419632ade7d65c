// Building blocks of every elementwise formula, for host and device. Each formula is written once, as a template
// over a value type V: float or double (host and device), or at::vec::Vectorized<float|double> on the CPU.
// Primitive operations go through Ops<V>, a traits struct that vec_math.h specialises for Vectorized (a class
// specialisation is found at instantiation, where overloaded free functions declared later would not be).
// Every helper propagates NaN: a NaN input never turns into a finite output.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "macros.h"

namespace fastgan::math {

template <class V>
struct Ops;

// std::bit_cast for host and device code (it is not a device function; nvcc turns the memcpy into a move).
template <class To, class From>
FASTGAN_HD To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast: the types differ in size");
#if defined(__CUDA_ARCH__)
  To to;
  memcpy(&to, &from, sizeof(To));
  return to;
#else
  return std::bit_cast<To>(from);
#endif
}

template <class T>
struct ScalarOps {
  using Mask = bool;
  using Scalar = T;
  static FASTGAN_HD T select(bool mask, T if_true, T if_false) { return mask ? if_true : if_false; }
};

template <>
struct Ops<float> : ScalarOps<float> {
  static FASTGAN_HD float exp(float x) { return ::expf(x); }
  static FASTGAN_HD float log(float x) { return ::logf(x); }
  static FASTGAN_HD float log1p(float x) { return ::log1pf(x); }
  static FASTGAN_HD float abs(float x) { return ::fabsf(x); }
  static FASTGAN_HD float sqrt(float x) { return ::sqrtf(x); }
  static FASTGAN_HD float sin(float x) { return ::sinf(x); }
  static FASTGAN_HD float cos(float x) { return ::cosf(x); }
  static FASTGAN_HD float erf(float x) { return ::erff(x); }
  static FASTGAN_HD float tan(float x) { return ::tanf(x); }
  static FASTGAN_HD float fma(float x, float y, float z) { return ::fmaf(x, y, z); }
  static FASTGAN_HD float round(float x) { return ::rintf(x); }  // to the nearest integer, ties to even
  // x 2^(n + 64), rounded once, for integer-valued n with 2^(n + 64) normal (n in [-190, 63]). exp_neg's 2^n for n
  // in [-150, 0] reaches into the subnormals, where no power of two is a float; its polynomial carries the 2^-64 in
  // its coefficients instead, so that this one product rounds into them. 2^(n + 64) comes from the bits of
  // t = n + 1.5 2^23 (exact for |n| < 2^22; defined for a NaN n too, where a float-to-int cast would not be, and a
  // NaN n comes only with a NaN x, which the product keeps): t's low bits hold n in two's complement, and
  // 1.5 2^23's own bits vanish when shifted into the exponent field (0x4B400000 << 23 is 0 mod 2^32), so the power is
  // one shift-and-add (a LEA on CUDA). scalbnf's general range handling cost CUDA 15 instructions per call, this 3.
  static FASTGAN_HD float scale2_biased(float x, float n) {
    return x * bit_cast<float>((bit_cast<uint32_t>(n + 12582912.0f) << 23) + ((127u + 64u) << 23));
  }
};

template <>
struct Ops<double> : ScalarOps<double> {
  static FASTGAN_HD double exp(double x) { return ::exp(x); }
  static FASTGAN_HD double log(double x) { return ::log(x); }
  static FASTGAN_HD double log1p(double x) { return ::log1p(x); }
  static FASTGAN_HD double abs(double x) { return ::fabs(x); }
  static FASTGAN_HD double sqrt(double x) { return ::sqrt(x); }
  static FASTGAN_HD double sin(double x) { return ::sin(x); }
  static FASTGAN_HD double cos(double x) { return ::cos(x); }
  static FASTGAN_HD double erf(double x) { return ::erf(x); }
  static FASTGAN_HD double tan(double x) { return ::tan(x); }
  static FASTGAN_HD double fma(double x, double y, double z) { return ::fma(x, y, z); }
};

template <class V>
using Mask = typename Ops<V>::Mask;

template <class V>
FASTGAN_HD V exp(V x) { return Ops<V>::exp(x); }
template <class V>
FASTGAN_HD V log(V x) { return Ops<V>::log(x); }
template <class V>
FASTGAN_HD V log1p(V x) { return Ops<V>::log1p(x); }
template <class V>
FASTGAN_HD V abs(V x) { return Ops<V>::abs(x); }
template <class V>
FASTGAN_HD V sqrt(V x) { return Ops<V>::sqrt(x); }
template <class V>
FASTGAN_HD V sin(V x) { return Ops<V>::sin(x); }
template <class V>
FASTGAN_HD V cos(V x) { return Ops<V>::cos(x); }
template <class V>
FASTGAN_HD V erf(V x) { return Ops<V>::erf(x); }
template <class V>
FASTGAN_HD V tan(V x) { return Ops<V>::tan(x); }
// x * y + z rounded once, on every device and ISA. Where bits must agree across devices (the uniform map), formulas
// say fma explicitly: a compiler contracts x * y + z into an FMA on CUDA and AVX2 but cannot on the portable CPU
// build, which has no FMA instruction.
template <class V>
FASTGAN_HD V fma(V x, V y, V z) { return Ops<V>::fma(x, y, z); }
// round(x): the nearest integer, ties to even. scale2_biased(x, n): x 2^(n + 64) for an integer-valued n, rounded
// once (so into the subnormals correctly), float32 only, within the range its one caller needs (exp_neg; the scalar
// version says it).
template <class V>
FASTGAN_HD V round(V x) { return Ops<V>::round(x); }
template <class V>
FASTGAN_HD V scale2_biased(V x, V n) { return Ops<V>::scale2_biased(x, n); }
// select(mask, a, b): a where the mask holds, else b.
template <class V>
FASTGAN_HD V select(Mask<V> mask, V if_true, V if_false) { return Ops<V>::select(mask, if_true, if_false); }

// exp(x), but 0 where the result would be subnormal (x < -87 in float, -708 in double). On x86 a subnormal result
// takes a microcode assist (~100 cycles): kernel sums over many far-apart pairs (MMD) ran 3x slower with them.
// The flushed terms are below the smallest normal number (1.2e-38 in float), so sums do not notice.
template <class V>
FASTGAN_HD V exp_flush_subnormal(V x) {
  using Scalar = typename Ops<V>::Scalar;
  const V floor(std::is_same_v<Scalar, float> ? Scalar(-87.0f) : Scalar(-708.0));
  return select<V>(x < floor, V(0), exp(select<V>(x < floor, floor, x)));
}

// max(x, 0) that keeps NaN (x < 0 is false for NaN).
template <class V>
FASTGAN_HD V relu(V x) { return select<V>(x < V(0), V(0), x); }

// w x, but 0 where the weight w is 0, even for an infinite x (a zero-weighted term's limit; 0 * inf is NaN).
template <class V>
FASTGAN_HD V weighted(V w, V x) { return select<V>(w == V(0), V(0), w * x); }

// max(x, lo) that keeps NaN.
template <class V>
FASTGAN_HD V clamp_min(V x, V lo) { return select<V>(x < lo, lo, x); }

// c0 + x (c1 + x (c2 + ...)) by Horner's rule, one FMA per coefficient, highest first: the polynomials below (their
// coefficients in ascending order, as scripts/fit_softplus.py prints them).
template <class V>
FASTGAN_HD V horner(V, float c) { return V(c); }
template <class V, class... Rest>
FASTGAN_HD V horner(V x, float c, Rest... rest) { return fma(horner(x, rest...), x, V(c)); }

// ---- float32's softplus from FMAs: exp(-a) and log1p(e) as fixed-range polynomials ----
// A library exp and log cost most of the fused BCE (Sleef's on the CPU: ~60 vector instructions per 16 logits; on
// CUDA expf, logf and the IEEE division: ~70 SASS instructions per logit). These are the same functions, as
// accurate, from ~25 FMAs and a few selects. Coefficients: scripts/fit_softplus.py (weighted least squares of the
// part after the exact leading terms, rounded to float32, checked as the kernels evaluate them); accuracy:
// tests/test_softplus.py sweeps every float in ranges that cover each branch against float64.

// exp(-a) for a >= 0 (NaN stays NaN), float32 only, within 0.75 ulp: Cody-Waite reduction a = -m ln2 + r,
// |r| <= ln2 / 2, with ln2 in two parts so that r is exact to float's precision; exp(-r) = 1 - r + r^2 (1/2 + r Q(r))
// with the leading terms exact and Q of degree 3; then times 2^m, rounded once into the subnormals: the coefficients
// carry 2^-64 (every step of Horner's rule is then exactly 2^-64 times the unscaled one: no value comes near the
// subnormals) and scale2_biased multiplies by 2^(m + 64), a normal float. m = round(-a / ln2) <= 0 carries the sign,
// so no negation is spent on it (round and fma are symmetric: the bits of round(a / ln2) with the signs flipped).
// a is clamped at 104 (exp(-104) = 6.8e-46, below half float's smallest subnormal): an infinite a would otherwise
// give inf - inf = NaN in the reduction.
template <class V>
FASTGAN_HD V exp_neg(V a) {
  const V clamped = select<V>(a > V(104.0f), V(104.0f), a);
  const V m = round(clamped * V(-1.44269504088896341f));  // -a / ln2, rounded
  V r = fma(m, V(0.693145751953125f), clamped);            // a + m ln2_hi (exact: ln2_hi has 16 bits)
  r = fma(m, V(1.428606765330187e-06f), r);                // + m ln2_lo
  constexpr float s = 0x1p-64f;
  const V p_scaled = horner(r, s, -s, 0.5f * s, -0.166665181517601f * s, 0.041666850447654724f * s,
                            -0.00836889073252678f * s, 0.0013899194309487939f * s);
  return scale2_biased(p_scaled, m);
}

// log1p(e) for e in [0, 1], float32 only, within 0.9 ulp. Above e = 1/2 it is ln 2 + log1p(d), d = (e - 1) / 2 in
// [-1/4, 0] (exact), so one polynomial serves [-1/4, 1/2], well inside log1p's radius of convergence:
// log1p(a) = a + a (a S(a)), S(a) = -1/2 + a Q(a), Q of degree 7; the last step an FMA onto a itself (the correction
// is at most a third of the result, so its rounding errors shrink by that factor), and ln 2 added in two parts.
template <class V>
FASTGAN_HD V log1p_unit(V e) {
  const Mask<V> upper = e > V(0.5f);
  // e / 2 - 1/2 = (e - 1) / 2, exact for e in [1/2, 1], so the FMA that CUDA contracts it into gives the same bits
  const V a = select<V>(upper, e * V(0.5f) - V(0.5f), e);
  const V s = horner(a, -0.5f, 0.3333345651626587f, -0.25000056624412537f, 0.19990478456020355f,
                     -0.1664852648973465f, 0.14486181735992432f, -0.1315523386001587f, 0.10403130203485489f,
                     -0.044455185532569885f);
  const V log1p_a = fma(a, a * s, a);
  return select<V>(upper, V(0.693145751953125f) + (V(1.428606765330187e-06f) + log1p_a), log1p_a);
}

template <class V>
constexpr bool kSinglePrecision = std::is_same_v<typename Ops<V>::Scalar, float>;

// 1 / u for u in [1, 2] (or NaN), correctly rounded. On CUDA, float: the fast path of nvcc's IEEE reciprocal
// (MUFU.RCP, then one Newton step as FMAs: the same instructions `1.0f / u` runs for an operand of normal exponent,
// so the same bits) without its test for operands near the exponent range's ends, whose slow path (a CALL) this u
// never takes: 4 instructions instead of 11.
template <class V>
FASTGAN_HD V reciprocal_1_to_2(V u) {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<V, float>) {
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(u));
    return ::fmaf(r, ::fmaf(-u, r, 1.0f), r);
  } else {
    return V(1) / u;
  }
#else
  return V(1) / u;
#endif
}

// The shared pieces of softplus and sigmoid. e = exp(-|x|) lies in (0, 1], so nothing overflows for any x. In float32
// e and log1p(e) come from the polynomials above; in float64 from the library's exp and log (float64 is rare in
// training and its 4-ulp promise needs longer polynomials than they would save).
template <class V>
struct Logistic {
  V e;              // exp(-|x|)
  V u;              // 1 + e, rounded
  V inv;            // 1 / u
  Mask<V> positive; // x >= 0

  FASTGAN_HD explicit Logistic(V x)
      : e(exp_of_minus(math::abs(x))), u(V(1) + e), inv(reciprocal_1_to_2(u)), positive(x >= V(0)) {}

  static FASTGAN_HD V exp_of_minus(V a) {
    if constexpr (kSinglePrecision<V>) {
      return exp_neg(a);
    } else {
      return math::exp(V(0) - a);
    }
  }

  // log1p(e) for e in (0, 1]. float64: log(u) plus the first-order correction for the rounding of u = 1 + e, within
  // about an ulp at the price of a log (the division is shared with the sigmoid), where a general log1p costs
  // three logs' worth on the CPU (Sleef).
  FASTGAN_HD V log1p_e() const {
    if constexpr (kSinglePrecision<V>) {
      return log1p_unit(e);
    } else {
      return math::log(u) + (e - (u - V(1))) * inv;
    }
  }

  // sigmoid(x) and sigmoid(-x) = 1 - sigmoid(x), each without cancellation.
  FASTGAN_HD V sigmoid() const { return select<V>(positive, inv, e * inv); }
  FASTGAN_HD V sigmoid_neg() const { return select<V>(positive, e * inv, inv); }

  // softplus(x) - t * x = max(x, 0) - t * x + log1p(exp(-|x|)). The linear part is (1 - t) * x or -t * x, so
  // t = 1 gives exactly softplus(-x) (no 1e4 - 1e4 rounding) and t = 0 gives softplus(x). A zero coefficient
  // gives 0 even for an infinite x (the limit; 0 * inf would be NaN, which is what aten's BCE returns there).
  FASTGAN_HD V softplus_minus(V x, V t) const {
    const V coef = select<V>(positive, V(1) - t, V(0) - t);
    return weighted(coef, x) + log1p_e();
  }
};

// The sum of softplus_minus(x_i, t) over a short run of n logits with one log for the run instead of one per logit:
// sum_i log1p(e_i) = log1p(q) with q = prod_i (1 + e_i) - 1, carried minus one as q' = q + e + q e. Each step
// rounds relative to q' (not to 1 + q', where a run of e_i ~ 1e-5 would keep 5 of their digits), so q is within
// about 2 n roundings of its value, relative, and log1p(q) too (its absolute error is that times q / (1 + q), which
// is at most log1p(q)): about twice the bound of the per-logit losses summed in the same precision (n - 1 roundings
// of the sum, plus 2 ulp per term). The linear part, sum_i (1 - t) max(x_i, 0) - t min(x_i, 0), is accumulated as
// the sums of max(x_i, 0) and min(x_i, 0), whose weighted terms are both non-negative for t in [0, 1] (no
// cancellation), weighted once; a zero weight gives 0 even for an infinite sum, as softplus_minus does per logit.
// A NaN x makes e and so q NaN. q < 2^n: at most kMaxTerms logits per run, so that it never overflows.
template <class V>
struct SoftplusSum {
  static constexpr int kMaxTerms = 120;
  V excess = V(0);  // prod (1 + e_i) - 1
  V above = V(0);   // sum of max(x_i, 0)
  V below = V(0);   // sum of min(x_i, 0)

  FASTGAN_HD void add(V x, V e) {
    excess = fma(excess, e, excess + e);
    above += select<V>(x > V(0), x, V(0));
    below += select<V>(x < V(0), x, V(0));
  }

  FASTGAN_HD V value(V t) const {
    return weighted(V(1) - t, above) + weighted(V(0) - t, below) + log1p(excess);
  }
};

}  // namespace fastgan::math
