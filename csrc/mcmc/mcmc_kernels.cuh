// The CUDA McmcEngine's kernels and launches, for both builds: nvcc compiles them for the GPU (mcmc_cuda.cu) and
// the host compiler for the SIMT emulator (mcmc_simt.cpp); see common/device.cuh.
// ONE launch per op (a warp per chain for the MH step and for MH-GAN's selection),
// no host synchronisation; the rejection sampler's accept-and-compact is one cub select pass.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <algorithm>
#include <type_traits>

#include "../common/device.cuh"
#include "../common/engine.h"
#include "mcmc_ops.h"

namespace fastgan::mcmc {
namespace {

using at::Tensor;

constexpr int kThreads = 256;
constexpr int kWarp = 32;

// Blocks of kThreads for one thread per item.
int64_t blocks_for(int64_t threads) { return std::max<int64_t>(1, (threads + kThreads - 1) / kThreads); }

template <class T>
struct MhSelectParams {
  const T* logits;       // [chains, k]: the discriminator's logits of each chain's proposals
  int64_t chains, k;
  const T* init;         // [chains]: the initial states' logits, or null (each chain starts at proposal 0)
  uint64_t seed, stream;
  int64_t offset;        // chain c's proposal j uses word offset + c k + j
  int64_t* index;        // [chains]: the final state, -1 for the initial one
  bool* moved;           // [chains]: whether any proposal was accepted
};

// A warp per chain (MH-GAN's default, 256 chains x 640 proposals, is 8 warps' work per SM rather than one block on
// one SM): the lanes load 32 consecutive logits (coalesced) and compute their 32 log-uniforms (the Philox blocks
// and logs, the work) in parallel; the serial decisions then walk those 32 in order on every lane, broadcast by
// shuffles. The CPU offers the same proposals in the same order to the same MhGanChain, so the result is the same.
template <class T>
__global__ void __launch_bounds__(kThreads) mh_select_kernel(MhSelectParams<T> p) {
  constexpr unsigned kFull = 0xffffffffu;
  const int lane = threadIdx.x % kWarp;
  const int64_t c = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (c >= p.chains) return;  // the whole warp together
  const T* logits = p.logits + c * p.k;
  const int64_t first_word = p.offset + c * p.k;
  const T* init_logit = p.init != nullptr ? p.init + c : nullptr;
  auto chain = MhGanChain<T>::start(logits, init_logit);
  for (int64_t base = MhGanChain<T>::first(init_logit); base < p.k; base += kWarp) {
    const int64_t j = base + lane;
    T logit = T(0), log_u = T(0);
    if (j < p.k) {
      logit = logits[j];
      log_u = math::log(stream_uniform<T>(p.seed, p.stream, first_word + j));
    }
    const int count = p.k - base < kWarp ? static_cast<int>(p.k - base) : kWarp;
    for (int l = 0; l < count; ++l) {
      chain.offer(base + l, __shfl_sync(kFull, logit, l), __shfl_sync(kFull, log_u, l));
    }
  }
  if (lane == 0) {
    p.index[c] = chain.current;
    p.moved[c] = chain.moved;
  }
}

template <class T>
struct MhStepParams {
  T* __restrict__ state;
  T* __restrict__ log_prob;
  T* __restrict__ proposal;
  const T* __restrict__ proposal_log_prob;
  int64_t* __restrict__ accepted;
  T* __restrict__ samples;
  const int64_t* __restrict__ step_offset;  // added to step when not null
  int64_t chains, d, slots, step, last_step, burn_in, thin;
  T step_size;
  uint64_t seed, stream;
};

// A warp per chain. The old thread-per-chain kernel read and wrote each chain's row with a stride of d elements
// between neighbouring threads (one sector per element of a warp's access) and walked a NormalCursor (its 40-byte
// Philox WordCursor and the pair cache) with a run-time element index. Here the warp walks its chain in windows of
// kWindow = 128 consecutive words of the normal stream: lane l computes the Philox block window + l (4 words, two
// Box-Muller pairs, each computed exactly once, as the cursor did) in registers and stages its 4 normals in the
// warp's slice of shared memory; after a __syncwarp, lane l moves elements l, l + 32, l + 64, l + 96 of the window,
// so each of the warp's loads and stores covers 32 consecutive elements (coalesced). Element k of the chain takes
// word first + k, whatever thread computes it, so the draws (and the CPU's answer) are unchanged. Lane 0 draws the
// acceptance and broadcasts it: a lane must not read log_prob[c] after lane 0 has overwritten it.
// ptxas (sm_90): float 40 registers, double 58, no spills (the thread-per-chain kernel: 32 with a 4-byte spill,
// and 42). The stack frame left, 32 bytes in float and 40 in double, is CUDA's sinf/cosf and sin/cos themselves
// (a kernel of one sinf + cosf has the same): the Payne-Hanek reduction of huge arguments, a path Box-Muller's
// angle in [0, 2 pi) never takes. The Philox state is 4 words of a block computed in place, no cursor.
template <class T>
__global__ void __launch_bounds__(kThreads) mh_step_kernel(MhStepParams<T> a) {
  constexpr unsigned kFull = 0xffffffffu;
  constexpr int kWindow = 4 * kWarp;
  __shared__ T normals[kThreads / kWarp][kWindow];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t c = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (c >= a.chains) return;  // the whole warp together
  T* row = a.state + c * a.d;
  T* next = a.proposal + c * a.d;
  int64_t step = 0;
  if (!mh_step_number(a.step, a.step_offset != nullptr ? *a.step_offset : 0, a.last_step, step)) {
    // a corrupt step counter (the host cannot check it without a sync): NaN chains, as the CPU would raise
    for (int64_t k = lane; k < a.d; k += kWarp) row[k] = next[k] = static_cast<T>(CUDART_NAN);
    if (lane == 0) a.log_prob[c] = static_cast<T>(CUDART_NAN);
    return;
  }
  int take = 0;
  if (lane == 0 && step >= 0 &&
      accept(stream_uniform<T>(a.seed, accept_stream(a.stream), step * a.chains + c),
             a.proposal_log_prob[c] - a.log_prob[c])) {
    take = 1;
    a.log_prob[c] = a.proposal_log_prob[c];
    ++a.accepted[c];
  }
  const bool moved = __shfl_sync(kFull, take, 0) != 0;
  const int64_t keep = kept_slot(step, a.burn_in, a.thin, a.slots);
  T* slot = keep >= 0 ? a.samples + (c * a.slots + keep) * a.d : nullptr;
  T* staged = normals[warp];
  const uint64_t first = static_cast<uint64_t>(((step + 1) * a.chains + c) * a.d);  // element k: word first + k
  const int64_t lead = static_cast<int64_t>(first % 4);  // the first window starts at word first - lead
  const uint64_t first_block = first / 4;
  for (int64_t w0 = 0; w0 < lead + a.d; w0 += kWindow) {  // window words first - lead + w0 ...
    // Lane l's Philox block: words w0 + 4 l .. + 3 of the window; skipped when none is an element of the chain.
    if (w0 + 4 * lane < lead + a.d) {
      const philox::Words words = philox::block(a.seed, a.stream, first_block + static_cast<uint64_t>(w0 / 4 + lane));
      T z[4];
#pragma unroll
      for (int pair = 0; pair < 2; ++pair) {
        sampling::box_muller(sampling::to_uniform<T>(words.w[2 * pair], sampling::UniformKind::OpenLow),
                             sampling::to_uniform<T>(words.w[2 * pair + 1], sampling::UniformKind::ClosedLow),
                             z[2 * pair], z[2 * pair + 1]);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) staged[4 * lane + j] = z[j];
    }
    __syncwarp();
#pragma unroll
    for (int i = 0; i < kWindow / kWarp; ++i) {
      const int t = lane + i * kWarp;
      const int64_t k = w0 + t - lead;
      if (k >= 0 && k < a.d) {
        const T v = moved ? next[k] : row[k];
        if (moved) row[k] = v;
        if (slot != nullptr) slot[k] = v;
        next[k] = v + a.step_size * staged[t];
      }
    }
    __syncwarp();  // the window's normals are read before the next window overwrites them
  }
}

// The predicate of the select pass: proposal i is accepted. Each cub thread tests a run of consecutive items, so a
// thread's copy keeps its last Philox block for the next 3 words (a cache: any call order gives the same answer).
// float64's accept test as a real call on the GPU: inlined into cub's sweep, which unrolls the predicate over its
// items under cub's own register bound, the float64 log made the sweep spill (ptxas, sm_90: 80 registers, 64 bytes
// stored and 96 loaded; sm_80: 24 and 32); called, the sweep takes 71 registers and spills nothing, for a call per
// item next to a float64 log. float32's sweep does not spill (79 registers) and keeps the test inline. The emulator
// inlines it (device functions of shared headers are always inlined there).
#if defined(__CUDA_ARCH__)
#define FASTGAN_MCMC_CALLED __noinline__
#else
#define FASTGAN_MCMC_CALLED __forceinline__
#endif
__device__ FASTGAN_MCMC_CALLED bool accept_word(uint32_t word, double log_ratio) {
  return accept(sampling::to_uniform<double>(word, sampling::UniformKind::OpenLow), log_ratio);
}
#undef FASTGAN_MCMC_CALLED

template <class T>
struct Accepted {
  const T* __restrict__ log_ratio;
  int64_t offset;
  mutable philox::WordCursor words;
  __device__ bool operator()(int64_t i) const {
    const uint32_t word = words(static_cast<uint64_t>(offset + i));
    if constexpr (std::is_same_v<T, double>) {
      return accept_word(word, log_ratio[i]);
    } else {
      return accept(sampling::to_uniform<T>(word, sampling::UniformKind::OpenLow), log_ratio[i]);
    }
  }
};

// R: the runtime policy (common/cuda_runtime.cuh or common/simt/runtime.h).
template <class R>
void accept_compact(const Tensor& log_ratio, uint64_t seed, uint64_t stream, int64_t offset, Tensor& index,
                    Tensor& count) {
  const int64_t n = log_ratio.numel();
  const typename R::Guard guard(log_ratio.device());
  index.fill_(-1);  // the tail stays -1; count is written by the select pass
  const auto cuda_stream = R::current_stream();
  AT_DISPATCH_FLOATING_TYPES(log_ratio.scalar_type(), "accept_compact_cuda", [&] {
    // cub's single-pass select (decoupled look-back) runs the accept test inside its scan and keeps the input
    // order, so the result is deterministic. The first call only sizes the scratch space.
    const Accepted<scalar_t> accepted{log_ratio.const_data_ptr<scalar_t>(), offset, philox::WordCursor(seed, stream)};
    int64_t* selected = index.mutable_data_ptr<int64_t>();
    int64_t* selected_count = count.mutable_data_ptr<int64_t>();
    size_t scratch_bytes = 0;
    R::select_if(nullptr, scratch_bytes, selected, selected_count, n, accepted, cuda_stream);
    // (at least one byte: a null scratch pointer would make the second call another size query)
    Tensor scratch = at::empty({std::max<int64_t>(1, static_cast<int64_t>(scratch_bytes))},
                               log_ratio.options().dtype(at::kByte));
    R::select_if(scratch.mutable_data_ptr(), scratch_bytes, selected, selected_count, n, accepted, cuda_stream);
  });
}

template <class R>
void mh_select(const Tensor& logits, const Tensor& init, uint64_t seed, uint64_t stream, int64_t offset,
               Tensor& index, Tensor& moved) {
  const int64_t chains = logits.size(0);
  const typename R::Guard guard(logits.device());
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "mh_select_cuda", [&] {
    const MhSelectParams<scalar_t> p{.logits = logits.const_data_ptr<scalar_t>(), .chains = chains,
                                     .k = logits.size(1),
                                     .init = init.defined() ? init.const_data_ptr<scalar_t>() : nullptr,
                                     .seed = seed, .stream = stream, .offset = offset,
                                     .index = index.mutable_data_ptr<int64_t>(),
                                     .moved = moved.mutable_data_ptr<bool>()};
    R::template launch<mh_select_kernel<scalar_t>>(blocks_for(chains * kWarp), kThreads, R::current_stream(), p);
  });
}

template <class R>
void mh_step(Tensor& state, Tensor& log_prob, Tensor& proposal, const Tensor& proposal_log_prob, Tensor& accepted,
             Tensor& samples, const std::optional<Tensor>& step_offset, const MhStepSpec& spec) {
  const int64_t chains = state.size(0);
  const typename R::Guard guard(state.device());
  AT_DISPATCH_FLOATING_TYPES(state.scalar_type(), "mh_step_cuda", [&] {
    const MhStepParams<scalar_t> args{
        .state = state.mutable_data_ptr<scalar_t>(), .log_prob = log_prob.mutable_data_ptr<scalar_t>(),
        .proposal = proposal.mutable_data_ptr<scalar_t>(),
        .proposal_log_prob = proposal_log_prob.const_data_ptr<scalar_t>(),
        .accepted = accepted.mutable_data_ptr<int64_t>(), .samples = samples.mutable_data_ptr<scalar_t>(),
        .step_offset = step_offset.has_value() ? step_offset->const_data_ptr<int64_t>() : nullptr,
        .chains = chains, .d = state.size(1), .slots = samples.size(1), .step = spec.step, .last_step = spec.last_step,
        .burn_in = spec.burn_in,
        .thin = spec.thin, .step_size = static_cast<scalar_t>(spec.step_size), .seed = spec.seed,
        .stream = spec.stream};
    R::template launch<mh_step_kernel<scalar_t>>(blocks_for(chains * kWarp), kThreads, R::current_stream(), args);
  });
}

// The engine of runtime R: registered by mcmc_cuda.cu (CUDA) and mcmc_simt.cpp (the SIMT emulator).
template <class R>
const McmcEngine kEngine{&accept_compact<R>, &mh_select<R>, &mh_step<R>};

}  // namespace

}  // namespace fastgan::mcmc
