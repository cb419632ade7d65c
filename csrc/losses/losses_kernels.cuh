// The CUDA engine's kernels and launches, for both builds: nvcc compiles them for the GPU (losses_cuda.cu, with
// the CUDA runtime policy) and the host compiler for the SIMT emulator (losses_simt.cpp); see common/device.cuh.
// Forward: ONE launch reads both tensors once, writes the reduced loss and the logged statistics
// (and the per-element losses for reduction='none'). Backward: ONE elementwise launch that reads the upstream
// gradient on the device. No host synchronisation in either; reductions are deterministic (see Partition and
// loss_forward_kernel). Both use 16-byte loads and stores where the pointers allow, with the same element-to-thread
// assignment either way, so alignment never changes a bit.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../common/device.cuh"
#include "../common/dtype.h"
#include "../common/reduce.cuh"
#include "loss_ops.h"

namespace fastgan::losses {
namespace {

using at::Tensor;

constexpr int kThreads = 256;

// Elements per vector access: 16 bytes of float32 or float64; 4 bytes (2 elements) of float16/bfloat16, whose
// 8- and 4-element packs made ptxas spill the backward (-Xptxas -v: 4-16 bytes; make cuda-check fails on it).
template <class S>
constexpr int kPack = sizeof(S) == 2 ? 2 : 16 / static_cast<int>(sizeof(S));

template <class S>
struct alignas(sizeof(S) * kPack<S>) Pack {
  S v[kPack<S>];
};

// The forward's packs per thread at most, all loaded before any arithmetic: 16-byte loads in flight per thread and
// tensor. 8 for one tensor of 32- or 64-bit values (a chunk's block reduction, ~80 instructions, then spreads over
// 32 float32 logits per thread, not 16); 4 for pairs (both tensors' packs are held: 8 spilled at the bound of
// loss_forward_kernel) and for 16-bit types (their bound is 40 registers).
template <class S, bool kPaired>
constexpr int kMaxPacks = sizeof(S) >= 4 && !kPaired ? 8 : 4;

// Every pointer is checked against 16 bytes, the widest pack, whatever the dtype.
bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The forward's partition: chunks of kThreads x kPack x packs_per_thread elements of each tensor, as a function of
// the element count only (never of the GPU), so the bits of every sum are the same on any device. Large inputs get
// up to kMaxPacks packs per thread (at 4M float32 logits 8: 512 chunks, one round of an H200's 528 resident
// blocks); mid sizes get 1 so that, e.g., a 64 x 30 x 30 PatchGAN map (57,600 logits) is 57 chunks rather than 15
// blocks. The chunks are processed by a persistent grid sized from the device.
struct Partition {
  int packs_per_thread;
  int64_t chunk_elems;
  int64_t chunks_a, chunks;  // Halves: chunks of a first, then of b; Paired: chunks of the pairs

  template <class S>
  static Partition of(int64_t na, int64_t nb, bool paired) {
    constexpr int64_t kTargetChunks = 512;
    const int64_t total = paired ? nb : na + nb;
    const int64_t per_pack_round = int64_t(kThreads) * kPack<S>;
    const int64_t wanted = (total + kTargetChunks * per_pack_round - 1) / (kTargetChunks * per_pack_round);
    Partition p{};
    const int64_t max_packs = paired ? kMaxPacks<S, true> : kMaxPacks<S, false>;
    p.packs_per_thread = static_cast<int>(std::clamp<int64_t>(wanted, 1, max_packs));
    p.chunk_elems = per_pack_round * p.packs_per_thread;
    auto chunks_of = [&](int64_t n) { return (n + p.chunk_elems - 1) / p.chunk_elems; };
    p.chunks_a = paired ? 0 : chunks_of(na);
    p.chunks = std::max<int64_t>(1, paired ? chunks_of(nb) : p.chunks_a + chunks_of(nb));
    return p;
  }
};

// Pack q of x (elements q N .. q N + N) into v as T. kWhole: the pack lies below `end` and every pointer of its
// chunk or backward group is 16-byte aligned, so one 16-byte access and no test: the hot path. Otherwise (a tensor's
// last chunk or group, an unaligned view) element by element, zeros past `end`. Deciding that once per chunk keeps
// the 16-byte/scalar choice and the bounds tests out of the hot path, and the narrow accesses keep the other path
// apart in the machine code (scripts/cuda_report.py). The same elements land in the same slots either way, so the
// sums do not depend on which path ran.
template <bool kWhole, class S, class T>
__device__ __forceinline__ void load_pack(const S* __restrict__ x, int64_t q, int64_t end, T (&v)[kPack<S>]) {
  constexpr int N = kPack<S>;
  if constexpr (kWhole) {
    const Pack<S> pack = reinterpret_cast<const Pack<S>*>(x)[q];
#pragma unroll
    for (int e = 0; e < N; ++e) v[e] = static_cast<T>(pack.v[e]);
  } else {
#pragma unroll
    for (int e = 0; e < N; ++e) v[e] = q * N + e < end ? static_cast<T>(x[q * N + e]) : T(0);
  }
}

template <bool kWhole, class S, class T>
__device__ __forceinline__ void store_pack(S* __restrict__ x, int64_t q, int64_t end, const T (&v)[kPack<S>]) {
  constexpr int N = kPack<S>;
  if constexpr (kWhole) {
    Pack<S> pack;
#pragma unroll
    for (int e = 0; e < N; ++e) pack.v[e] = static_cast<S>(v[e]);
    reinterpret_cast<Pack<S>*>(x)[q] = pack;
  } else {
#pragma unroll
    for (int e = 0; e < N; ++e) {
      if (q * N + e < end) x[q * N + e] = static_cast<S>(v[e]);
    }
  }
}

template <class S>
struct ForwardParams {
  const S* a;
  const S* b;
  int64_t na, nb;  // Paired: nb pairs, na unused
  Term real_term, fake_term;
  float pair_sign;
  Partition part;
  bool vector_a, vector_b;   // 16-byte accesses: a (and its per-element losses), b (and its)
  S* per_element;            // Reduction::None, else null
  S* loss;                   // reduced loss (0-d), or null for Reduction::None
  Acc<S>* stats;             // [4]
  Acc<S> loss_weight[2];     // OutputWeights::loss (loss_ops.h)
  Acc<S> stat_weight[4];     // OutputWeights::stats
  Acc<S>* partials;          // [part.chunks][4] when part.chunks > 1
  unsigned int* blocks_done; // the stream's ticket when part.chunks > 1
};

// Accumulates term(x[i]) over this thread's packs of the chunk [begin, end) of x (all loads first, then the
// arithmetic), writing the scaled per-element losses if asked. kWhole: the chunk is whole (end - begin is the
// chunk size), so nothing is checked; the same elements are added in the same order either way, so a chunk's bits do
// not depend on which path it took. kLogSum (BCE with logits, reduced): the thread's losses are one SoftplusSum,
// one log per thread and chunk (at most 32 logits) instead of one per logit.
template <TermKind K, bool kLogSum, bool kWhole, class S, class T>
__device__ __forceinline__ void accumulate_packs(const S* __restrict__ x, int64_t begin, int64_t end, Term term,
                                                 S* __restrict__ out, int packs, T& loss_sum, T& score_sum) {
  constexpr int N = kPack<S>;
  const T constant = static_cast<T>(term.constant), scale = static_cast<T>(term.scale);
  constexpr int kMax = kMaxPacks<S, false>;
  static_assert(kMax * N <= math::SoftplusSum<T>::kMaxTerms);
  T v[kMax][N];
#pragma unroll
  for (int u = 0; u < kMax; ++u) {
    if (u < packs) load_pack<kWhole>(x, begin / N + threadIdx.x + u * kThreads, end, v[u]);
  }
  math::SoftplusSum<T> softplus_sum;
#pragma unroll
  for (int u = 0; u < kMax; ++u) {
    if (u >= packs) break;
    const int64_t q = begin / N + threadIdx.x + u * kThreads;
    T losses[N];
#pragma unroll
    for (int e = 0; e < N; ++e) {
      losses[e] = T(0);
      if (kWhole || q * N + e < end) {
        if constexpr (kLogSum) {
          const math::Logistic<T> l(v[u][e]);
          softplus_sum.add(v[u][e], l.e);
          score_sum += l.sigmoid();
        } else {
          const auto r = TermFn<K>::value(v[u][e], constant);
          loss_sum += r.loss;
          score_sum += r.score;
          losses[e] = r.loss * scale;
        }
      }
    }
    if (!kLogSum && out != nullptr) store_pack<kWhole>(out, q, end, losses);
  }
  if constexpr (kLogSum) loss_sum += softplus_sum.value(constant);
}

// The chunks of a tensor are whole but its last: one test per chunk instead of one per element and pack.
template <TermKind K, bool kLogSum, class S, class T>
__device__ __forceinline__ void accumulate_chunk(const S* __restrict__ x, int64_t begin, int64_t end, Term term,
                                                 S* __restrict__ out, bool vector, int packs, T& loss_sum,
                                                 T& score_sum) {
  if (vector && end - begin == int64_t(kThreads) * kPack<S> * packs) {
    accumulate_packs<K, kLogSum, true>(x, begin, end, term, out, packs, loss_sum, score_sum);
  } else {
    accumulate_packs<K, kLogSum, false>(x, begin, end, term, out, packs, loss_sum, score_sum);
  }
}

template <TermKind K, bool kLogSum, bool kWhole, class S, class T>
__device__ __forceinline__ void accumulate_pair_packs(const ForwardParams<S>& p, int64_t begin, int64_t end,
                                                      T (&sums)[4]) {
  constexpr int N = kPack<S>;
  const T constant = static_cast<T>(p.real_term.constant), scale = static_cast<T>(p.real_term.scale);
  const T sign = static_cast<T>(p.pair_sign);
  const S* __restrict__ a = p.a;
  const S* __restrict__ b = p.b;
  const int packs = p.part.packs_per_thread;
  constexpr int kMax = kMaxPacks<S, true>;
  static_assert(kMax * N <= math::SoftplusSum<T>::kMaxTerms);
  T va[kMax][N], vb[kMax][N];
#pragma unroll
  for (int u = 0; u < kMax; ++u) {
    if (u < packs) {
      const int64_t q = begin / N + threadIdx.x + u * kThreads;
      load_pack<kWhole>(a, q, end, va[u]);
      load_pack<kWhole>(b, q, end, vb[u]);
    }
  }
  math::SoftplusSum<T> softplus_sum;
#pragma unroll
  for (int u = 0; u < kMax; ++u) {
    if (u >= packs) break;
    const int64_t q = begin / N + threadIdx.x + u * kThreads;
    T losses[N];
#pragma unroll
    for (int e = 0; e < N; ++e) {
      losses[e] = T(0);
      if (kWhole || q * N + e < end) {
        const T z = sign * (va[u][e] - vb[u][e]);
        if constexpr (kLogSum) {
          softplus_sum.add(z, math::Logistic<T>::exp_of_minus(math::abs(z)));
        } else {
          const T loss = TermFn<K>::value(z, constant).loss;
          sums[0] += loss;
          losses[e] = loss * scale;
        }
        sums[2] += TermFn<K>::score(va[u][e]);
        sums[3] += TermFn<K>::score(vb[u][e]);
      }
    }
    if (!kLogSum && p.per_element != nullptr) store_pack<kWhole>(p.per_element, q, end, losses);
  }
  if constexpr (kLogSum) sums[0] += softplus_sum.value(constant);
}

template <TermKind K, bool kLogSum, class S, class T>
__device__ __forceinline__ void accumulate_pair_chunk(const ForwardParams<S>& p, int64_t begin, int64_t end,
                                                      T (&sums)[4]) {
  if (p.vector_a && end - begin == p.part.chunk_elems) {
    accumulate_pair_packs<K, kLogSum, true>(p, begin, end, sums);
  } else {
    accumulate_pair_packs<K, kLogSum, false>(p, begin, end, sums);
  }
}

template <class S, class T>
__device__ __forceinline__ void write_results(const ForwardParams<S>& p, const T (&sums)[4]) {
  if (p.loss != nullptr) *p.loss = static_cast<S>(sums[0] * p.loss_weight[0] + sums[1] * p.loss_weight[1]);
#pragma unroll
  for (int k = 0; k < 4; ++k) p.stats[k] = sums[k] * p.stat_weight[k];
}

// ONE launch: a persistent grid walks the chunks; each chunk's sums are a block_sum (fixed tree) stored in
// partials[chunk], and the last block adds the chunks' partials in a fixed order (cuda::sum_partials). The bits
// depend on the partition only, which depends on the element count only. A single chunk needs no workspace.
// __launch_bounds__'s minimum resident blocks per SM, read off ptxas's report (-Xptxas -v, sm_90; make cuda-check
// prints it) as the most blocks that every instantiation fits without a spill, and no fewer than keep enough bytes
// in flight: 16-bit types 6 blocks (at most 40 registers; they took 32-40 unbounded; 16 B of loads in flight per
// thread and tensor, ~24 KB per SM), float32 3 (at most 80; with 8 packs of one tensor the BCE on probabilities
// spilled 4 bytes at 4 blocks' 64; 128 B per thread, ~96 KB per SM), float64 2 (at most 128; 40-94 unbounded, the paired BCE the most: 3 blocks, at most 80, spilled 56 bytes). A
// register regression then shows as a spill, which make cuda-check fails, not as a silent loss of occupancy.
template <class S>
constexpr int kForwardMinBlocks = sizeof(S) == 2 ? 6 : sizeof(S) == 4 ? 3 : 2;

// kLogSum: BCE with logits reduced (mean or sum), its losses summed through math::SoftplusSum (accumulate_packs).
template <TermKind K, class S, bool kPaired, bool kLogSum>
__global__ void __launch_bounds__(kThreads, kForwardMinBlocks<S>) loss_forward_kernel(ForwardParams<S> p) {
  static_assert(!kLogSum || K == TermKind::BceLogits);
  using T = Acc<S>;
  const Partition& part = p.part;
  for (int64_t c = blockIdx.x; c < part.chunks; c += gridDim.x) {
    T sums[4] = {T(0), T(0), T(0), T(0)};  // loss a, loss b, score a, score b
    if constexpr (kPaired) {
      const int64_t begin = c * part.chunk_elems;
      accumulate_pair_chunk<K, kLogSum>(p, begin, std::min(p.nb, begin + part.chunk_elems), sums);
      cuda::block_sum<kThreads>(sums);
    } else {
      // A chunk holds one tensor's logits: two sums to reduce (the same tree, so the same bits), then its slots.
      const bool in_a = c < part.chunks_a;
      T mine[2] = {T(0), T(0)};  // loss, score
      if (in_a) {
        const int64_t begin = c * part.chunk_elems;
        accumulate_chunk<K, kLogSum>(p.a, begin, std::min(p.na, begin + part.chunk_elems), p.real_term, p.per_element,
                            p.vector_a, part.packs_per_thread, mine[0], mine[1]);
      } else {
        const int64_t begin = (c - part.chunks_a) * part.chunk_elems;
        accumulate_chunk<K, kLogSum>(p.b, begin, std::min(p.nb, begin + part.chunk_elems), p.fake_term,
                            p.per_element != nullptr ? p.per_element + p.na : nullptr, p.vector_b,
                            part.packs_per_thread, mine[0], mine[1]);
      }
      cuda::block_sum<kThreads>(mine);
      (in_a ? sums[0] : sums[1]) = mine[0];  // selects, not an index: a computed index puts sums in local memory
      (in_a ? sums[2] : sums[3]) = mine[1];
    }
    if (part.chunks == 1) {
      if (threadIdx.x == 0) write_results(p, sums);
      return;
    }
    if (threadIdx.x == 0) {
#pragma unroll
      for (int k = 0; k < 4; ++k) p.partials[c * 4 + k] = sums[k];
    }
  }
  if (!cuda::last_block_done(p.blocks_done)) return;
  T sums[4];
  cuda::sum_partials<kThreads>(sums, p.partials, part.chunks);
  if (threadIdx.x == 0) write_results(p, sums);
}

template <class S>
struct BackwardParams {
  const S* grad;  // [0] for a reduced loss, per element for Reduction::None
  bool grad_per_element;
  const S* a;
  const S* b;
  int64_t na, nb;  // Paired: nb pairs
  Term real_term, fake_term;
  float pair_sign;
  Acc<S> coef_a, coef_b;  // scale * reduction weight (the upstream gradient multiplies on the device)
  bool vector_a, vector_b;  // 16-byte accesses for a's pass (a, grad_a, its upstream gradient), for b's
  S* grad_a;
  S* grad_b;
};

// The backward's unit of work, a group: kBackwardPacks packs per thread of one block, all loaded (x, and the upstream
// gradient when it is per element) before any arithmetic (the old kernel's one pack per loop trip waited for each
// load's latency in turn): 4 packs per tensor for the halves (x and g: up to 8 loads in flight per thread), 2 for
// pairs (a, b and g: up to 6; 4 made the paired float32 and float64 kernels spill at the bound below). Pack u of
// the thread is q0 + u kThreads: each load instruction of a warp covers consecutive packs. A group wholly inside
// its tensor (every group but the last) runs without bounds checks.
template <bool kPaired>
constexpr int kBackwardPacks = kPaired ? 2 : 4;

template <class S, bool kPaired>
constexpr int64_t kGroupElems = int64_t(kThreads) * kBackwardPacks<kPaired> * kPack<S>;

// out = g * coef * f'(x) over one group (packs q0 + u kThreads) of [0, n); g is per element (g_per_element,
// aligned like x) or the scalar g0.
template <TermKind K, bool kWhole, class S, class T>
__device__ __forceinline__ void backward_group(const S* __restrict__ x, const S* __restrict__ g, bool g_per_element,
                                               T g0, T coef, T constant, S* __restrict__ out, int64_t q0,
                                               int64_t n) {
  constexpr int N = kPack<S>;
  T v[kBackwardPacks<false>][N], gv[kBackwardPacks<false>][N];
#pragma unroll
  for (int u = 0; u < kBackwardPacks<false>; ++u) load_pack<kWhole>(x, q0 + u * kThreads, n, v[u]);
  if (g_per_element) {
#pragma unroll
    for (int u = 0; u < kBackwardPacks<false>; ++u) load_pack<kWhole>(g, q0 + u * kThreads, n, gv[u]);
  }
#pragma unroll
  for (int u = 0; u < kBackwardPacks<false>; ++u) {
#pragma unroll
    for (int e = 0; e < N; ++e) v[u][e] = (g_per_element ? gv[u][e] : g0) * coef * TermFn<K>::deriv(v[u][e], constant);
    store_pack<kWhole>(out, q0 + u * kThreads, n, v[u]);
  }
}

template <TermKind K, bool kWhole, class S, class T>
__device__ __forceinline__ void backward_pair_group(const BackwardParams<S>& p, T g0, int64_t q0) {
  constexpr int N = kPack<S>;
  const S* __restrict__ a = p.a;
  const S* __restrict__ b = p.b;
  const S* __restrict__ g = p.grad;
  S* __restrict__ grad_a = p.grad_a;
  S* __restrict__ grad_b = p.grad_b;
  const T sign = static_cast<T>(p.pair_sign), constant = static_cast<T>(p.real_term.constant);
  T va[kBackwardPacks<true>][N], vb[kBackwardPacks<true>][N], gv[kBackwardPacks<true>][N];
#pragma unroll
  for (int u = 0; u < kBackwardPacks<true>; ++u) {
    load_pack<kWhole>(a, q0 + u * kThreads, p.nb, va[u]);
    load_pack<kWhole>(b, q0 + u * kThreads, p.nb, vb[u]);
  }
  if (p.grad_per_element) {
#pragma unroll
    for (int u = 0; u < kBackwardPacks<true>; ++u) load_pack<kWhole>(g, q0 + u * kThreads, p.nb, gv[u]);
  }
#pragma unroll
  for (int u = 0; u < kBackwardPacks<true>; ++u) {
#pragma unroll
    for (int e = 0; e < N; ++e) {
      const T d =
          (p.grad_per_element ? gv[u][e] : g0) * p.coef_a * TermFn<K>::deriv(sign * (va[u][e] - vb[u][e]), constant);
      va[u][e] = sign * d;
      vb[u][e] = -sign * d;
    }
    store_pack<kWhole>(grad_a, q0 + u * kThreads, p.nb, va[u]);
    store_pack<kWhole>(grad_b, q0 + u * kThreads, p.nb, vb[u]);
  }
}

// A grid-stride loop over the groups: Paired, the pairs' groups; Halves, a's groups, then b's (one loop over both,
// so the grid is sized for na + nb and a short a, e.g. 64 real logits against 4M fake, costs one group, not a pass).
// Each element's gradient is computed on its own, so the grid and the grouping never change a bit.
// The backward's bound, chosen like the forward's: with 4 packs (halves) or 2 (pairs) per thread it took 24-63
// registers unbounded in 32- and 64-bit types and 24-52 in 16-bit ones (pairs of 4 packs took up to 85, and
// spilled at the 3-block bound): 3 blocks (at most 80 registers) and 4 (at most 64).
template <class S>
constexpr int kBackwardMinBlocks = sizeof(S) == 2 ? 4 : 3;

template <TermKind K, class S, bool kPaired>
__global__ void __launch_bounds__(kThreads, kBackwardMinBlocks<S>) loss_backward_kernel(BackwardParams<S> p) {
  using T = Acc<S>;
  constexpr int64_t G = kGroupElems<S, kPaired>;
  constexpr int U = kBackwardPacks<kPaired>;
  const T g0 = p.grad_per_element ? T(0) : static_cast<T>(p.grad[0]);
  if constexpr (kPaired) {
    const int64_t groups = (p.nb + G - 1) / G;
    for (int64_t i = blockIdx.x; i < groups; i += gridDim.x) {
      const int64_t q0 = i * kThreads * U + threadIdx.x;
      if (p.vector_a && (i + 1) * G <= p.nb) {
        backward_pair_group<K, true>(p, g0, q0);
      } else {
        backward_pair_group<K, false>(p, g0, q0);
      }
    }
  } else {
    const int64_t groups_a = (p.na + G - 1) / G, groups = groups_a + (p.nb + G - 1) / G;
    for (int64_t i = blockIdx.x; i < groups; i += gridDim.x) {
      const bool in_a = i < groups_a;  // block-uniform
      const int64_t j = in_a ? i : i - groups_a, n = in_a ? p.na : p.nb;
      const S* x = in_a ? p.a : p.b;
      const S* g = p.grad_per_element && !in_a ? p.grad + p.na : p.grad;
      S* out = in_a ? p.grad_a : p.grad_b;
      const T coef = in_a ? p.coef_a : p.coef_b;
      const T constant = static_cast<T>(in_a ? p.real_term.constant : p.fake_term.constant);
      const bool vector = in_a ? p.vector_a : p.vector_b;
      const int64_t q0 = j * kThreads * U + threadIdx.x;
      if (vector && (j + 1) * G <= n) {
        backward_group<K, true>(x, g, p.grad_per_element, g0, coef, constant, out, q0, n);
      } else {
        backward_group<K, false>(x, g, p.grad_per_element, g0, coef, constant, out, q0, n);
      }
    }
  }
}

// A grid for `work` units of a grid-stride loop on a device that holds `resident` blocks at once: as few rounds as
// the device allows, and then as few blocks as give every block that many units (the last ones one fewer). The
// plain min(work, resident) left a ragged last round: at 4M float32 logits, 3.1 rounds, where 68 blocks did a
// fourth chunk while the others waited. The grid is a function of the device; the bits never are (the forward's
// sums depend on its chunks only, the backward is elementwise).
int64_t even_grid(int64_t work, int64_t resident) {
  const int64_t rounds = (work + resident - 1) / std::max<int64_t>(1, resident);
  return std::max<int64_t>(1, (work + rounds - 1) / std::max<int64_t>(1, rounds));
}

// The forward: one block per chunk, up to the blocks the device holds at once (a persistent grid: more would only
// queue), spread evenly (even_grid). R: the runtime policy (common/cuda_runtime.cuh or common/simt/runtime.h).
template <class R, auto kKernel, class S>
void launch_forward(const ForwardParams<S>& p, const typename R::Stream& stream) {
  const int64_t blocks =
      p.part.chunks == 1 ? 1 : even_grid(p.part.chunks, R::template resident_blocks<kKernel>(kThreads));
  R::template launch<kKernel>(blocks, kThreads, stream, p);
}

template <class R, auto kKernel, class S>
void launch_backward(const BackwardParams<S>& p, int64_t groups, const typename R::Stream& stream) {
  R::template launch<kKernel>(even_grid(groups, R::template resident_blocks<kKernel>(kThreads)), kThreads, stream, p);
}

template <class R>
void forward(const LossSpec& spec, const Tensor& a, const Tensor& b, Tensor& loss, Tensor& stats) {
  const typename R::Guard guard(b.device());
  const bool paired = spec.layout == Layout::Paired;
  const OutputWeights w = output_weights(spec, a, b);
  const auto stream = R::current_stream(b.device().index());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.scalar_type(), "loss_forward_cuda", [&] {
    using S = scalar_t;
    using T = Acc<S>;
    S* const per_element = spec.reduction == Reduction::None ? loss.mutable_data_ptr<S>() : nullptr;
    ForwardParams<S> p{.a = a.defined() ? a.const_data_ptr<S>() : nullptr, .b = b.const_data_ptr<S>(),
                       .na = w.na, .nb = w.nb, .real_term = spec.real, .fake_term = spec.fake,
                       .pair_sign = spec.pair_sign, .part = Partition::of<S>(w.na, w.nb, paired),
                       .per_element = per_element,
                       .loss = per_element == nullptr ? loss.mutable_data_ptr<S>() : nullptr,
                       .stats = stats.mutable_data_ptr<T>()};
    for (int k = 0; k < 2; ++k) p.loss_weight[k] = static_cast<T>(w.loss[k]);
    for (int k = 0; k < 4; ++k) p.stat_weight[k] = static_cast<T>(w.stats[k]);
    const bool out_a = p.per_element == nullptr || aligned16(p.per_element);
    const bool out_b = p.per_element == nullptr || aligned16(p.per_element + p.na);
    p.vector_a = (p.a == nullptr || aligned16(p.a)) && out_a && (!paired || aligned16(p.b));
    p.vector_b = aligned16(p.b) && out_b;
    cuda::GridSumWorkspace<T> workspace;
    if (p.part.chunks > 1) {
      workspace = cuda::grid_sum_workspace<R, T>(p.part.chunks, 4, b.options(), stream);
      p.partials = workspace.partials;
      p.blocks_done = workspace.blocks_done;
    }
    dispatch_enum(spec.kind, [&](auto kind) {
      constexpr TermKind K = decltype(kind)::value;
      auto launch = [&](auto log_sum) {
        constexpr bool kLogSum = decltype(log_sum)::value;
        if (paired) {
          launch_forward<R, loss_forward_kernel<K, S, true, kLogSum>>(p, stream);
        } else {
          launch_forward<R, loss_forward_kernel<K, S, false, kLogSum>>(p, stream);
        }
      };
      // Only the reduced BCE with logits has a log-sum kernel; per-element losses need each softplus anyway.
      if constexpr (K == TermKind::BceLogits) {
        if (per_element == nullptr) return launch(std::true_type{});
      }
      launch(std::false_type{});
    });
  });
}

template <class R>
void backward(const LossSpec& spec, const Tensor& grad, const Tensor& a, const Tensor& b, Tensor& grad_a,
              Tensor& grad_b) {
  const typename R::Guard guard(b.device());
  const bool paired = spec.layout == Layout::Paired;
  const OutputWeights w = output_weights(spec, a, b);
  const int64_t n = paired ? w.nb : w.na + w.nb;
  if (n == 0) return;
  const auto stream = R::current_stream(b.device().index());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.scalar_type(), "loss_backward_cuda", [&] {
    using S = scalar_t;
    using T = Acc<S>;
    BackwardParams<S> p{.grad = grad.const_data_ptr<S>(), .grad_per_element = spec.reduction == Reduction::None,
                        .a = a.defined() ? a.const_data_ptr<S>() : nullptr, .b = b.const_data_ptr<S>(),
                        .na = w.na, .nb = w.nb, .real_term = spec.real, .fake_term = spec.fake,
                        .pair_sign = spec.pair_sign, .coef_a = static_cast<T>(w.grad[0]),
                        .coef_b = static_cast<T>(w.grad[1]),
                        .grad_a = grad_a.defined() ? grad_a.mutable_data_ptr<S>() : nullptr,
                        .grad_b = grad_b.mutable_data_ptr<S>()};
    // A pass vectorises when every pointer it touches is 16-byte aligned. A scalar head to align them is not
    // worth it: the outputs are fresh allocations (aligned), so an unaligned input can never line up with them.
    auto vector_ok = [&](const S* x, const S* out, const S* g) {
      return aligned16(x) && aligned16(out) && (!p.grad_per_element || aligned16(g));
    };
    p.vector_a = paired ? vector_ok(p.a, p.grad_a, p.grad) && aligned16(p.b) && aligned16(p.grad_b)
                        : p.a == nullptr || vector_ok(p.a, p.grad_a, p.grad);
    p.vector_b = vector_ok(p.b, p.grad_b, p.grad + (paired ? 0 : p.na));
    constexpr int64_t G = kGroupElems<S, false>, P = kGroupElems<S, true>;
    const int64_t groups = paired ? (w.nb + P - 1) / P : (w.na + G - 1) / G + (w.nb + G - 1) / G;
    dispatch_enum(spec.kind, [&](auto kind) {
      constexpr TermKind K = decltype(kind)::value;
      if (paired) {
        launch_backward<R, loss_backward_kernel<K, S, true>>(p, groups, stream);
      } else {
        launch_backward<R, loss_backward_kernel<K, S, false>>(p, groups, stream);
      }
    });
  });
}

// The engine of runtime R: registered by losses_cuda.cu (CUDA) and losses_simt.cpp (the SIMT emulator).
template <class R>
const LossEngine kEngine{&forward<R>, &backward<R>};

}  // namespace
}  // namespace fastgan::losses
