// fastgan's samplers as functions of Philox words (csrc/common/philox.h). Element e of a draw is made from word e
// of the stream (a normal from the pair of words e & ~1, e | 1, by Box-Muller), so an element depends only on
// (seed, stream, e): drawing rows a..b-1 with offset=a gives exactly those rows of the draw made from row 0, on
// any device and with any number of threads. Each formula is written once, templated over the value type, for
// CUDA threads and for the CPU's vector lanes.
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>

#include "../common/enum.h"
#include "../common/math.h"
#include "../common/philox.h"

namespace fastgan::sampling {

// Which uniform each distribution reads: [0, 1), (0, 1] (for a log), or (0, 1) (for an inverse CDF).
enum class UniformKind : int8_t { ClosedLow, OpenLow, Open };

// A parameter's domain, which fill_latent_ checks (sampling_ops.h: check_dist_params): finite; finite and > 0; in
// [0, 1]; unused (must be 0); or one of the pairs checked together (a uniform's bounds, a truncation's erf/erfc).
enum class Domain : int8_t { Finite, Positive, Probability, Unused, UniformBounds, TruncationErf };

// The distributions, each once: the enum, the names fill_latent_ parses, every dispatch, the uniform each reads and
// its parameters' names and domains come from this list. A new distribution is one row here and one branch of
// from_uniform below (a missing branch does not compile), plus its entry in fastgan/sampling.py's DISTRIBUTIONS
// (a test checks that the two tables agree). Normal draws its pair of uniforms itself (box_muller): its column is
// unused.
#define FASTGAN_DISTS(X)                                                                                            \
  /* value          name                uniform    a: name      domain          b: name      domain   */            \
  X(Normal,          "normal",           Open,      "mean",      Finite,         "std",       Positive)             \
  X(Uniform,         "uniform",          ClosedLow, "low",       UniformBounds,  "high",      UniformBounds)        \
  X(TruncatedNormal, "truncated_normal", Open,      "erf(t/√2)", TruncationErf,  "erfc(t/√2)", TruncationErf)       \
  X(Bernoulli,       "bernoulli",        ClosedLow, "p",         Probability,    "",          Unused)               \
  X(Exponential,     "exponential",      OpenLow,   "rate",      Positive,       "",          Unused)               \
  X(Logistic,        "logistic",         Open,      "loc",       Finite,         "scale",     Positive)             \
  X(Cauchy,          "cauchy",           Open,      "loc",       Finite,         "scale",     Positive)             \
  X(Laplace,         "laplace",          Open,      "loc",       Finite,         "scale",     Positive)             \
  X(Gumbel,          "gumbel",           Open,      "loc",       Finite,         "scale",     Positive)             \
  X(Weibull,         "weibull",          OpenLow,   "shape",     Positive,       "scale",     Positive)
FASTGAN_DEFINE_ENUM(Dist, FASTGAN_DISTS)

struct DistParam {
  std::string_view name;  // as fastgan's Python door names it ("" for an unused parameter)
  Domain domain;
};

struct DistInfo {
  std::string_view name;
  UniformKind uniform;
  DistParam a, b;
};

#define FASTGAN_DIST_INFO_(value, name, uniform, a_name, a_domain, b_name, b_domain) \
  DistInfo{name, UniformKind::uniform, {a_name, Domain::a_domain}, {b_name, Domain::b_domain}},
constexpr DistInfo kDistInfo[] = {FASTGAN_DISTS(FASTGAN_DIST_INFO_)};
#undef FASTGAN_DIST_INFO_

constexpr const DistInfo& dist_info(Dist d) { return kDistInfo[static_cast<int>(d)]; }

constexpr UniformKind uniform_kind(Dist d) { return dist_info(d).uniform; }

// The word -> uniform maps of philox.h, for float (24-bit) or double (32-bit) computation.
template <class T>
FASTGAN_HD T to_uniform(uint32_t w, UniformKind kind) {
  if constexpr (std::is_same_v<T, double>) {
    return kind == UniformKind::ClosedLow ? philox::uniform64(w)
           : kind == UniformKind::OpenLow ? philox::uniform64_open_low(w)
                                          : philox::uniform64_open(w);
  } else {
    return kind == UniformKind::ClosedLow ? philox::uniform(w)
           : kind == UniformKind::OpenLow ? philox::uniform_open_low(w)
                                          : philox::uniform_open(w);
  }
}

// Box-Muller: u1 in (0, 1], u2 in [0, 1) -> two independent N(0, 1). The angle is 2 pi u2 rounded once, in the
// compute type, on every device, so CPU and GPU differ only by their sin/cos/log rounding (a few ulps).
template <class V>
FASTGAN_HD void box_muller(V u1, V u2, V& z0, V& z1) {
  const V r = math::sqrt(V(-2) * math::log(u1));
  const V theta = V(6.283185307179586) * u2;
  z0 = r * math::cos(theta);
  z1 = r * math::sin(theta);
}

// erfinv(x) for |x| < 1. Single precision: M. Giles, "Approximating the erfinv function" (GPU Computing Gems,
// 2011), a rational-free polynomial in w = -log(1 - x^2) on two ranges. Double precision: that estimate refined
// by two Newton steps on erf(y) = x (each squares the relative error: 1e-7 -> 1e-14 -> rounding).
// one_minus_abs_x = 1 - |x| is passed separately, computed by the caller without cancellation: near |x| = 1,
// erfinv amplifies an error in x by sqrt(pi)/2 exp(erfinv(x)^2) (2000 at 3.9 sigma), so x itself rounded to
// float would cost 1e-4 relative in the tails.
template <class V>
FASTGAN_HD V erfinv_single(V x, V one_minus_abs_x) {
  V w = V(0) - math::log(one_minus_abs_x * (V(2) - one_minus_abs_x));
  // central range, w < 5
  V c = w - V(2.5);
  V p = V(2.81022636e-08f);
  p = V(3.43273939e-07f) + p * c;
  p = V(-3.5233877e-06f) + p * c;
  p = V(-4.39150654e-06f) + p * c;
  p = V(0.00021858087f) + p * c;
  p = V(-0.00125372503f) + p * c;
  p = V(-0.00417768164f) + p * c;
  p = V(0.246640727f) + p * c;
  p = V(1.50140941f) + p * c;
  // tails, w >= 5
  V t = math::sqrt(w) - V(3);
  V q = V(-0.000200214257f);
  q = V(0.000100950558f) + q * t;
  q = V(0.00134934322f) + q * t;
  q = V(-0.00367342844f) + q * t;
  q = V(0.00573950773f) + q * t;
  q = V(-0.0076224613f) + q * t;
  q = V(0.00943887047f) + q * t;
  q = V(1.00167406f) + q * t;
  q = V(2.83297682f) + q * t;
  return math::select<V>(w < V(5), p, q) * x;
}

// Two Newton steps on erf(y) = x: d/dy erf(y) = 2 / sqrt(pi) exp(-y^2).
template <class V>
FASTGAN_HD V refine_erfinv(V x, V y) {
  for (int step = 0; step < 2; ++step) {
    const V slope = V(1.1283791670955126) * math::exp(V(0) - y * y);
    y = y - (math::erf(y) - x) / slope;
  }
  return y;
}

// The uniform u that element w of a draw of D uses, for an output with kDigits significand bits. A Uniform draw into
// float16 or bfloat16 takes the dtype's own digits from the top of the word, u = (w >> (32 - digits)) 2^-digits, as
// torch.rand does: every u is then exact in the output, and a 24-bit u would round up to 1.0 (21 and 192 times in
// 100k draws). Every other draw uses the documented map of its compute type (to_uniform).
template <Dist D, int kDigits, class T>
FASTGAN_HD T draw_uniform(uint32_t w) {
  if constexpr (D == Dist::Uniform && kDigits < 24) {
    return static_cast<T>(w >> (32 - kDigits)) * (T(1) / static_cast<T>(1u << kDigits));
  } else {
    constexpr UniformKind kKind = uniform_kind(D);  // at compile time: the table is host data
    return to_uniform<T>(w, kKind);
  }
}

// One value from a uniform u; `precise` asks for float64-accurate inverse CDFs. a, b (and c) are the distribution's
// parameters as fill_latent_ checked them (sampling_ops.h: check_dist_params).
template <Dist D, bool kPrecise, class V>
FASTGAN_HD V from_uniform(V u, V a, V b, V c) {
  if constexpr (D == Dist::Uniform) {
    // One rounding on every device (uniforms are bit-identical everywhere), then at most c, the output dtype's
    // largest value below b: a + (b - a) u can round up to b itself (u = 1 - 2^-24, a = 0.5, b = 1 in float32).
    const V v = math::fma(b - a, u, a);
    return math::select<V>(v > c, c, v);
  } else if constexpr (D == Dist::Bernoulli) {
    return math::select<V>(u < a, V(1), V(0));
  } else if constexpr (D == Dist::TruncatedNormal) {
    // a = erf(t / sqrt2), b = erfc(t / sqrt2) = 1 - a. x = (2u - 1) a is uniform on (-a, a), and
    // 1 - |x| = b + a (1 - |2u - 1|) = b + 2 a min(u, 1 - u), exact in its parts for u on the uniform grid.
    const V x = (V(2) * u - V(1)) * a;
    const V one_minus_abs_x = b + V(2) * a * math::select<V>(u < V(0.5), u, V(1) - u);
    V y = erfinv_single(x, one_minus_abs_x);
    if constexpr (kPrecise) y = refine_erfinv(x, y);
    return V(1.4142135623730951) * y;
  } else if constexpr (D == Dist::Exponential) {
    return (V(0) - math::log(u)) / a;
  } else if constexpr (D == Dist::Logistic) {
    return a + b * math::log(u / (V(1) - u));
  } else if constexpr (D == Dist::Cauchy) {
    // tan(pi (u - 1/2)) = sign(u - 1/2) / tan(pi d), d = min(u, 1 - u): the argument stays away from the pole, so
    // the tails keep their relative accuracy (pi (u - 1/2) rounded next to pi/2 would not).
    const V d = math::select<V>(u < V(0.5), u, V(1) - u);
    const V magnitude = b / math::tan(V(3.141592653589793) * d);
    return a + math::select<V>(u < V(0.5), V(0) - magnitude, magnitude);
  } else if constexpr (D == Dist::Laplace) {
    // log(1 - 2 |u - 1/2|) = log(2 min(u, 1 - u)), an exact argument
    const V d = math::select<V>(u < V(0.5), u, V(1) - u);
    const V magnitude = V(0) - b * math::log(V(2) * d);
    return a + math::select<V>(u < V(0.5), V(0) - magnitude, magnitude);
  } else if constexpr (D == Dist::Gumbel) {
    return a - b * math::log(V(0) - math::log(u));
  } else if constexpr (D == Dist::Weibull) {
    // scale (-log u)^(1 / shape): -log u is an Exponential(1) draw, exact in its relative error for u on the (0, 1]
    // grid; at u = 1 it is 0, log gives -inf and the draw 0, the distribution's lower end
    return b * math::exp(math::log(V(0) - math::log(u)) / a);
  } else {
    // every distribution but Normal needs a branch above (a forgotten one must not silently return uniforms)
    static_assert(D == Dist::Normal && D != Dist::Normal, "from_uniform: no branch for this distribution (Normal: "
                  "normals come in pairs, use box_muller)");
    return u;
  }
}

// Inverse-transform sampling from one tabulated CDF row (non-decreasing, total = row[k - 1] > 0): the first index
// whose cumulative mass exceeds u * total. Bins of zero mass are never chosen (the comparison is strict).
// Branch-free (the loop count depends only on k; the select compiles to a conditional move), since the branch
// of a classic binary search mispredicts half the time.
template <class T>
FASTGAN_HD int64_t search_cdf(const T* row, int64_t k, T u) {
  const T target = u * row[k - 1];
  const T* first = row;
  int64_t length = k;
  while (length > 1) {
    const int64_t half = length / 2;
    first += static_cast<int64_t>(first[half - 1] <= target) * half;
    length -= half;
  }
  // first is the answer unless every earlier entry was <= target and so is *first (only when k == 1 or ties)
  return (first - row) + (*first <= target && (first - row) < k - 1 ? 1 : 0);
}

// Standard normals of a stream read in increasing element order by one thread, exactly as the CUDA `latent`
// kernel draws them (Box-Muller on the word pair e & ~1, e | 1): one Philox block per 4 elements and one
// Box-Muller per pair. (The CPU `latent` evaluates the same formula with vector math, which rounds sin/cos
// differently; CPU code that must match it draws through the vector fill instead.)
template <class T>
struct NormalCursor {
  philox::WordCursor words;
  uint64_t pair = ~uint64_t{0};
  T z[2]{};

  FASTGAN_HD NormalCursor(uint64_t seed, uint64_t stream) : words(seed, stream) {}

  FASTGAN_HD T operator()(uint64_t e) {
    if (e / 2 != pair) {
      pair = e / 2;
      box_muller(to_uniform<T>(words(2 * pair), UniformKind::OpenLow),
                 to_uniform<T>(words(2 * pair + 1), UniformKind::ClosedLow), z[0], z[1]);
    }
    return (e & 1u) ? z[1] : z[0];  // a select: z[e % 2] would put z in local memory on CUDA
  }
};

}  // namespace fastgan::sampling
