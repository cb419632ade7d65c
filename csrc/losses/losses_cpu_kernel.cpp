// CPU loss kernels, compiled once per ISA. Determinism: the input is cut into fixed chunks of kChunk elements
// whatever the thread count, each chunk is summed in a fixed lane order, and the chunk sums are added in index
// order in double. So the same input gives the same bits with 1 thread or 64.
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../common/parallel.h"
#include "../common/vec_math.h"
#include "losses_cpu_kernel.h"

namespace fastgan::losses::cpu::FASTGAN_ISA {
namespace {

using math::lane_sum;

constexpr int64_t kChunk = 16384;  // unit of parallel work and of the deterministic partition
constexpr int64_t kBlock = 512;    // unit of dtype conversion (stack buffers)

// One kBlock-element block of an input or an output as Acc<S>, through a stack buffer where S is not Acc<S> (half
// and bfloat16 are computed in float, as on CUDA: fastgan::Acc, common/dtype.h) and in place where it is.
template <class S>
class BlockBuffer {
  static constexpr bool kInPlace = std::is_same_v<S, Acc<S>>;
  alignas(64) Acc<S> data_[kInPlace ? 1 : kBlock];

 public:
  // x[0, m) as Acc<S>.
  const Acc<S>* read(const S* x, int64_t m) {
    if constexpr (kInPlace) return x;
    at::vec::convert(x, data_, m);
    return data_;
  }
  // Where to compute the m values of out[0, m) (null when out is); store() then puts them in out.
  Acc<S>* write_to(S* out) {
    if constexpr (kInPlace) return out;
    return out != nullptr ? data_ : nullptr;
  }
  void store(S* out, int64_t m) {
    if constexpr (!kInPlace) {
      if (out != nullptr) at::vec::convert(data_, out, m);
    }
  }
};

// p + offset, or null when p is (an optional output or upstream gradient).
template <class P>
P* at_offset(P* p, int64_t offset) { return p != nullptr ? p + offset : nullptr; }

// Runs chunk_fn(begin, end) -> std::array<double, N> over fixed chunks in parallel; adds the results in order.
template <size_t N, class ChunkFn>
std::array<double, N> reduce_chunks(int64_t n, const ChunkFn& chunk_fn) {
  std::array<double, N> total{};
  if (n <= 0) return total;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  if (chunks == 1) return chunk_fn(int64_t{0}, n);
  std::vector<std::array<double, N>> partial(chunks);
  fastgan::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) partial[c] = chunk_fn(c * kChunk, std::min(n, (c + 1) * kChunk));
  });
  for (const auto& p : partial)
    for (size_t k = 0; k < N; ++k) total[k] += p[k];
  return total;
}

// Sum of the term's loss and score over x[0, n); writes scale * loss per element when out is not null, and
// coef * f'(x) when grad is (the gradient computed with the loss: one pass over x, the exp and the division shared).
template <TermKind K, class S>
std::array<double, 2> forward_half_chunk(const S* x, int64_t n, Term term, S* out, S* grad, double coef) {
  using T = Acc<S>;
  using Vec = at::vec::Vectorized<T>;
  const Vec constant(static_cast<T>(term.constant)), scale(static_cast<T>(term.scale)), c(static_cast<T>(coef));
  Vec loss_acc(T(0)), score_acc(T(0));
  double tail_loss = 0, tail_score = 0;
  BlockBuffer<S> xbuf, obuf, gbuf;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t m = std::min(kBlock, n - start);
    const T* xs = xbuf.read(x + start, m);
    T* os = obuf.write_to(at_offset(out, start));
    T* gs = gbuf.write_to(at_offset(grad, start));
    int64_t i = 0;
    for (; i + Vec::size() <= m; i += Vec::size()) {
      const Vec v = Vec::loadu(xs + i);
      const auto r = TermFn<K>::value(v, constant);
      loss_acc = loss_acc + r.loss;
      score_acc = score_acc + r.score;
      if (os != nullptr) (r.loss * scale).store(os + i);
      if (gs != nullptr) (c * TermFn<K>::deriv(v, constant)).store(gs + i);
    }
    for (; i < m; ++i) {
      const auto r = TermFn<K>::value(xs[i], static_cast<T>(term.constant));
      tail_loss += r.loss;
      tail_score += r.score;
      if (os != nullptr) os[i] = r.loss * static_cast<T>(term.scale);
      if (gs != nullptr) gs[i] = static_cast<T>(coef) * TermFn<K>::deriv(xs[i], static_cast<T>(term.constant));
    }
    obuf.store(at_offset(out, start), m);
    gbuf.store(at_offset(grad, start), m);
  }
  return {lane_sum(loss_acc) + tail_loss, lane_sum(score_acc) + tail_score};
}

// Paired: the term of sign * (a - b); sums of loss, score(a), score(b); the gradients as in forward_half_chunk.
template <TermKind K, class S>
std::array<double, 3> forward_pair_chunk(const S* a, const S* b, int64_t n, Term term, float sign, S* out,
                                         S* grad_a, S* grad_b, double coef) {
  using T = Acc<S>;
  using Vec = at::vec::Vectorized<T>;
  const Vec constant(static_cast<T>(term.constant)), scale(static_cast<T>(term.scale)), sgn(static_cast<T>(sign));
  const Vec ca(static_cast<T>(coef * sign)), cb(static_cast<T>(-coef * sign));
  Vec loss_acc(T(0)), score_a_acc(T(0)), score_b_acc(T(0));
  double tail[3] = {0, 0, 0};
  BlockBuffer<S> abuf, bbuf, obuf, gabuf, gbbuf;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t m = std::min(kBlock, n - start);
    const T* as = abuf.read(a + start, m);
    const T* bs = bbuf.read(b + start, m);
    T* os = obuf.write_to(at_offset(out, start));
    T* ga = gabuf.write_to(at_offset(grad_a, start));
    T* gb = gbbuf.write_to(at_offset(grad_b, start));
    int64_t i = 0;
    for (; i + Vec::size() <= m; i += Vec::size()) {
      const Vec va = Vec::loadu(as + i), vb = Vec::loadu(bs + i), z = sgn * (va - vb);
      const auto r = TermFn<K>::value(z, constant);
      loss_acc = loss_acc + r.loss;
      score_a_acc = score_a_acc + TermFn<K>::score(va);
      score_b_acc = score_b_acc + TermFn<K>::score(vb);
      if (os != nullptr) (r.loss * scale).store(os + i);
      if (ga != nullptr || gb != nullptr) {
        const Vec d = TermFn<K>::deriv(z, constant);
        if (ga != nullptr) (ca * d).store(ga + i);
        if (gb != nullptr) (cb * d).store(gb + i);
      }
    }
    for (; i < m; ++i) {
      const T z = static_cast<T>(sign) * (as[i] - bs[i]);
      const auto r = TermFn<K>::value(z, static_cast<T>(term.constant));
      tail[0] += r.loss;
      tail[1] += TermFn<K>::score(as[i]);
      tail[2] += TermFn<K>::score(bs[i]);
      if (os != nullptr) os[i] = r.loss * static_cast<T>(term.scale);
      if (ga != nullptr || gb != nullptr) {
        const T d = TermFn<K>::deriv(z, static_cast<T>(term.constant));
        if (ga != nullptr) ga[i] = static_cast<T>(coef * sign) * d;
        if (gb != nullptr) gb[i] = static_cast<T>(-coef * sign) * d;
      }
    }
    obuf.store(at_offset(out, start), m);
    gabuf.store(at_offset(grad_a, start), m);
    gbbuf.store(at_offset(grad_b, start), m);
  }
  return {lane_sum(loss_acc) + tail[0], lane_sum(score_a_acc) + tail[1], lane_sum(score_b_acc) + tail[2]};
}

// grad[i] = coef * g[i] * f'(x[i]) over one chunk; g is null for a reduced loss (its value is folded into coef).
template <TermKind K, class S>
void backward_half_chunk(const S* x, const S* g, int64_t n, Term term, double coef, S* grad) {
  using T = Acc<S>;
  using Vec = at::vec::Vectorized<T>;
  const Vec constant(static_cast<T>(term.constant)), c(static_cast<T>(coef));
  BlockBuffer<S> xbuf, gbuf, obuf;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t m = std::min(kBlock, n - start);
    const T* xs = xbuf.read(x + start, m);
    const T* gs = g != nullptr ? gbuf.read(g + start, m) : nullptr;
    T* os = obuf.write_to(grad + start);
    int64_t i = 0;
    for (; i + Vec::size() <= m; i += Vec::size()) {
      Vec d = c * TermFn<K>::deriv(Vec::loadu(xs + i), constant);
      if (gs != nullptr) d = d * Vec::loadu(gs + i);
      d.store(os + i);
    }
    for (; i < m; ++i) {
      T d = static_cast<T>(coef) * TermFn<K>::deriv(xs[i], static_cast<T>(term.constant));
      os[i] = gs != nullptr ? d * gs[i] : d;
    }
    obuf.store(grad + start, m);
  }
}

template <TermKind K, class S>
void backward_pair_chunk(const S* a, const S* b, const S* g, int64_t n, Term term, float sign, double coef,
                         S* grad_a, S* grad_b) {
  using T = Acc<S>;
  using Vec = at::vec::Vectorized<T>;
  const Vec constant(static_cast<T>(term.constant)), sgn(static_cast<T>(sign));
  const Vec ca(static_cast<T>(coef * sign)), cb(static_cast<T>(-coef * sign));
  BlockBuffer<S> abuf, bbuf, gbuf, oabuf, obbuf;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t m = std::min(kBlock, n - start);
    const T* as = abuf.read(a + start, m);
    const T* bs = bbuf.read(b + start, m);
    const T* gs = g != nullptr ? gbuf.read(g + start, m) : nullptr;
    T* oa = oabuf.write_to(grad_a + start);
    T* ob = obbuf.write_to(grad_b + start);
    int64_t i = 0;
    for (; i + Vec::size() <= m; i += Vec::size()) {
      Vec d = TermFn<K>::deriv(sgn * (Vec::loadu(as + i) - Vec::loadu(bs + i)), constant);
      if (gs != nullptr) d = d * Vec::loadu(gs + i);
      (ca * d).store(oa + i);
      (cb * d).store(ob + i);
    }
    for (; i < m; ++i) {
      T d = TermFn<K>::deriv(static_cast<T>(sign) * (as[i] - bs[i]), static_cast<T>(term.constant));
      if (gs != nullptr) d = d * gs[i];
      oa[i] = static_cast<T>(coef * sign) * d;
      ob[i] = static_cast<T>(-coef * sign) * d;
    }
    oabuf.store(grad_a + start, m);
    obbuf.store(grad_b + start, m);
  }
}

template <class F>
void parallel_chunks(int64_t n, const F& chunk_fn) {
  if (n <= kChunk) {
    if (n > 0) chunk_fn(int64_t{0}, n);
    return;
  }
  fastgan::parallel_for(0, n, kChunk, [&](int64_t begin, int64_t end) { chunk_fn(begin, end); });
}

}  // namespace

ForwardSums loss_forward(const ForwardParams& args) {
  return dispatch_dtype(args.dtype, [&](auto tag) {
    using S = decltype(tag);
    return dispatch_enum(args.spec.kind, [&](auto kind) {
      constexpr TermKind K = decltype(kind)::value;
      const auto* a = static_cast<const S*>(args.a);
      const auto* b = static_cast<const S*>(args.b);
      auto* out = static_cast<S*>(args.per_element);
      auto* grad_a = static_cast<S*>(args.grad_a);
      auto* grad_b = static_cast<S*>(args.grad_b);
      ForwardSums sums;
      if (args.spec.layout == Layout::Paired) {
        const auto r = reduce_chunks<3>(args.nb, [&](int64_t begin, int64_t end) {
          return forward_pair_chunk<K>(a + begin, b + begin, end - begin, args.spec.real, args.spec.pair_sign,
                                       at_offset(out, begin), at_offset(grad_a, begin), at_offset(grad_b, begin),
                                       args.coef_a);
        });
        sums.loss_a = r[0];
        sums.score_a = r[1];
        sums.score_b = r[2];
        return sums;
      }
      const auto ra = reduce_chunks<2>(args.na, [&](int64_t begin, int64_t end) {
        return forward_half_chunk<K>(a + begin, end - begin, args.spec.real, at_offset(out, begin),
                                     at_offset(grad_a, begin), args.coef_a);
      });
      S* out_b = at_offset(out, args.na);
      const auto rb = reduce_chunks<2>(args.nb, [&](int64_t begin, int64_t end) {
        return forward_half_chunk<K>(b + begin, end - begin, args.spec.fake, at_offset(out_b, begin),
                                     at_offset(grad_b, begin), args.coef_b);
      });
      sums.loss_a = ra[0];
      sums.score_a = ra[1];
      sums.loss_b = rb[0];
      sums.score_b = rb[1];
      return sums;
    });
  });
}

void loss_backward(const BackwardParams& args) {
  dispatch_dtype(args.dtype, [&](auto tag) {
    using S = decltype(tag);
    dispatch_enum(args.spec.kind, [&](auto kind) {
      constexpr TermKind K = decltype(kind)::value;
      const auto* a = static_cast<const S*>(args.a);
      const auto* b = static_cast<const S*>(args.b);
      const auto* g = static_cast<const S*>(args.grad);
      auto* grad_a = static_cast<S*>(args.grad_a);
      auto* grad_b = static_cast<S*>(args.grad_b);
      if (args.spec.layout == Layout::Paired) {
        parallel_chunks(args.nb, [&](int64_t begin, int64_t end) {
          backward_pair_chunk<K>(a + begin, b + begin, at_offset(g, begin), end - begin,
                                 args.spec.real, args.spec.pair_sign, args.coef_a, grad_a + begin, grad_b + begin);
        });
        return;
      }
      parallel_chunks(args.na, [&](int64_t begin, int64_t end) {
        backward_half_chunk<K>(a + begin, at_offset(g, begin), end - begin, args.spec.real,
                               args.coef_a, grad_a + begin);
      });
      const S* g_b = at_offset(g, args.na);
      parallel_chunks(args.nb, [&](int64_t begin, int64_t end) {
        backward_half_chunk<K>(b + begin, at_offset(g_b, begin), end - begin, args.spec.fake,
                               args.coef_b, grad_b + begin);
      });
    });
  });
}

}  // namespace fastgan::losses::cpu::FASTGAN_ISA

namespace fastgan::losses::cpu::FASTGAN_ISA {
namespace {

// |value - exact| in units of float's spacing at exact (the subnormal spacing below float's smallest normal).
double ulp_error(float value, double exact) {
  if (std::isnan(exact)) return std::isnan(value) ? 0 : INFINITY;
  if (std::isinf(exact)) return value == exact ? 0 : INFINITY;
  const double magnitude = std::max(std::abs(exact), 0x1.0p-126);
  const double spacing = std::ldexp(1.0, std::ilogb(magnitude) - 23);
  return std::abs(static_cast<double>(value) - exact) / spacing;
}

void keep_worst(SweepError& worst, double ulps, float x) {
  if (ulps > worst.ulps) worst = {ulps, x};
}

}  // namespace

SoftplusSweep softplus_sweep(uint32_t first, uint32_t last, uint32_t stride) {
  using Vec = at::vec::Vectorized<float>;
  constexpr int kLanes = Vec::size();
  const int64_t count = (static_cast<int64_t>(last) - first) / stride + 1;
  const int64_t tasks = (count + 65535) / 65536;
  std::vector<SoftplusSweep> partial(static_cast<size_t>(tasks));
  fastgan::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      SoftplusSweep& r = partial[static_cast<size_t>(t)];
      const int64_t begin = t * 65536, end = std::min(count, begin + 65536);
      alignas(64) float xs[kLanes], sp[kLanes], sg[kLanes];
      for (int64_t i = begin; i < end; i += kLanes) {
        const int lanes = static_cast<int>(std::min<int64_t>(kLanes, end - i));
        for (int sign = 0; sign < 2; ++sign) {
          for (int k = 0; k < kLanes; ++k) {
            uint32_t bits = first + static_cast<uint32_t>((i + std::min(k, lanes - 1)) * stride);
            bits |= sign ? 0x80000000u : 0u;
            std::memcpy(&xs[k], &bits, sizeof(float));
          }
          const Vec x = Vec::loadu(xs);
          const math::Logistic<Vec> l(x);
          l.softplus_minus(x, Vec(0.0f)).store(sp);
          l.sigmoid().store(sg);
          for (int k = 0; k < lanes; ++k) {
            const double xd = xs[k], a = std::abs(xd);
            const double exact_softplus = std::isinf(xd) ? (xd > 0 ? INFINITY : 0.0)
                                                         : std::max(xd, 0.0) + std::log1p(std::exp(-a));
            const double exact_sigmoid = 1.0 / (1.0 + std::exp(-xd));
            const math::Logistic<float> s(xs[k]);
            const float scalar_softplus = s.softplus_minus(xs[k], 0.0f), scalar_sigmoid = s.sigmoid();
            keep_worst(r.softplus[0], ulp_error(sp[k], exact_softplus), xs[k]);
            keep_worst(r.softplus[1], ulp_error(scalar_softplus, exact_softplus), xs[k]);
            keep_worst(r.sigmoid[0], ulp_error(sg[k], exact_sigmoid), xs[k]);
            keep_worst(r.sigmoid[1], ulp_error(scalar_sigmoid, exact_sigmoid), xs[k]);
            const bool finite = std::isfinite(exact_softplus);
            r.non_finite_mismatches += (std::isfinite(sp[k]) != finite) + (std::isfinite(scalar_softplus) != finite);
            ++r.count;
          }
        }
      }
    }
  });
  SoftplusSweep total;
  for (const SoftplusSweep& r : partial) {
    for (int p = 0; p < 2; ++p) {
      keep_worst(total.softplus[p], r.softplus[p].ulps, r.softplus[p].at);
      keep_worst(total.sigmoid[p], r.sigmoid[p].ulps, r.sigmoid[p].at);
    }
    total.count += r.count;
    total.non_finite_mismatches += r.non_finite_mismatches;
  }
  return total;
}

}  // namespace fastgan::losses::cpu::FASTGAN_ISA
