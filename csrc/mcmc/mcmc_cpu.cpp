// The CPU McmcEngine: one pass over the chains, parallel over chains (each chain's work is a pure
// function of its index, so any thread count gives the same result).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../common/cpu_isa.h"
#include "../common/engine.h"
#include "../common/parallel.h"
#include "../sampling/sampling_cpu_kernel.h"
#include "mcmc.h"
#include "mcmc_ops.h"

namespace fastgan::mcmc {
namespace {

using at::Tensor;

// Fills out[0, count) with draws of `dist` (parameters a, b) from words offset .. of a stream, by the per-ISA vector
// fill (inside a parallel_for task it runs on the calling thread).
template <class T>
void fill_stream(T* out, int64_t count, sampling::Dist dist, double a, double b, uint64_t seed, uint64_t stream,
                 int64_t offset) {
  constexpr auto dtype = std::is_same_v<T, double> ? fastgan::cpu::DType::Double : fastgan::cpu::DType::Float;
  const sampling::cpu::FillParams args{.dist = dist, .a = a, .b = b, .c = 0, .seed = seed, .stream = stream, .start = offset,
                                     .count = count, .dtype = dtype, .out = out};
  FASTGAN_CPU_DISPATCH(sampling::cpu, fill, args);
}

// Each chain's -log u come from the vector fill (the Exponential(1) draws of its words, as in mh_step), in chunks,
// and the chain offers its proposals in order.
void mh_select(const Tensor& logits, const Tensor& init, uint64_t seed, uint64_t stream, int64_t offset,
               Tensor& index, Tensor& moved) {
  const int64_t chains = logits.size(0), k = logits.size(1);
  constexpr int64_t kChunk = 4096;
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "mh_select", [&] {
    const scalar_t* l = logits.const_data_ptr<scalar_t>();
    const scalar_t* l0 = init.defined() ? init.const_data_ptr<scalar_t>() : nullptr;
    int64_t* out_index = index.mutable_data_ptr<int64_t>();
    bool* out_moved = moved.mutable_data_ptr<bool>();
    // (a task of at least 64k proposals: below that, waking the pool costs more than the scan)
    fastgan::parallel_for(0, chains, std::max<int64_t>(1, 65536 / k), [&](int64_t c0, int64_t c1) {
      std::vector<scalar_t> e(static_cast<size_t>(std::min(k, kChunk)));
      for (int64_t c = c0; c < c1; ++c) {
        const scalar_t* lc = l + c * k;
        const scalar_t* init_logit = l0 != nullptr ? l0 + c : nullptr;
        auto chain = MhGanChain<scalar_t>::start(lc, init_logit);
        const int64_t first = MhGanChain<scalar_t>::first(init_logit);
        for (int64_t j0 = 0; j0 < k; j0 += kChunk) {
          const int64_t size = std::min(k - j0, kChunk);
          fill_stream(e.data(), size, sampling::Dist::Exponential, 1.0, 0.0, seed, stream, offset + c * k + j0);
          for (int64_t j = std::max(j0, first); j < j0 + size; ++j) chain.offer(j, lc[j], -e[j - j0]);
        }
        out_index[c] = chain.current;
        out_moved[c] = chain.moved;
      }
    });
  });
}

// mask ? a : b for an all-ones or all-zeros mask, on the bits.
template <class Bits, class T>
T blend(Bits mask, T a, T b) {
  Bits x, y;
  std::memcpy(&x, &a, sizeof(T));
  std::memcpy(&y, &b, sizeof(T));
  const Bits r = (x & mask) | (y & ~mask);
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}

// next = state + scale z, elementwise (restrict: a loop the compiler vectorises).
template <class T>
void propose(const T* __restrict__ state, const T* __restrict__ z, T scale, int64_t n, T* __restrict__ next) {
  for (int64_t i = 0; i < n; ++i) next[i] = state[i] + scale * z[i];
}

// Each task takes a block of chains whole: it draws their random numbers with the vector fills (the normals
// `latent` draws, and for the acceptance test Exponential(1) draws, -log(u) / 1 = -log u exactly, so the logs are
// vector math), then makes scalar passes over them while they are in cache. A task is ~8k draws (d normals and an
// exponential per chain): a 4096-chain 2-d step split in two took 19 us on 2 threads against 28.5 us as one task
// (ad hoc, AMD EPYC, 2 vCPUs); smaller tasks gained nothing more.
void mh_step(Tensor& state, Tensor& log_prob, Tensor& proposal, const Tensor& proposal_log_prob, Tensor& accepted,
             Tensor& samples, const std::optional<Tensor>& step_offset, const MhStepSpec& spec) {
  const uint64_t seed = spec.seed, stream = spec.stream;
  const int64_t device_step = step_offset.has_value() ? step_offset->item<int64_t>() : 0;
  int64_t step = 0;
  TORCH_CHECK_VALUE(mh_step_number(spec.step, device_step, spec.last_step, step), "fastgan::mh_step_: step + "
                    "step_offset must lie in [-1, ", spec.last_step, "], got ", spec.step, " + ", device_step);
  const int64_t chains = state.size(0), d = state.size(1), slots = samples.size(1);
  const int64_t keep = kept_slot(step, spec.burn_in, spec.thin, slots);
  const int64_t chains_per_task = std::max<int64_t>(1, 8192 / (d + 2));
  AT_DISPATCH_FLOATING_TYPES(state.scalar_type(), "mh_step", [&] {
    scalar_t* x = state.mutable_data_ptr<scalar_t>();
    scalar_t* lp = log_prob.mutable_data_ptr<scalar_t>();
    scalar_t* xp = proposal.mutable_data_ptr<scalar_t>();
    const scalar_t* lpp = proposal_log_prob.const_data_ptr<scalar_t>();
    int64_t* count = accepted.mutable_data_ptr<int64_t>();
    scalar_t* kept = samples.mutable_data_ptr<scalar_t>();
    const auto scale = static_cast<scalar_t>(spec.step_size);
    using Bits = std::conditional_t<sizeof(scalar_t) == 8, uint64_t, uint32_t>;
    fastgan::parallel_for(0, chains, chains_per_task, [&](int64_t c0, int64_t c1) {
      std::vector<scalar_t> z(static_cast<size_t>((c1 - c0) * d)), e(static_cast<size_t>(c1 - c0));
      if (step >= 0) {
        fill_stream(e.data(), c1 - c0, sampling::Dist::Exponential, 1.0, 0.0, seed, accept_stream(stream),
                    step * chains + c0);
        for (int64_t c = c0; c < c1; ++c) {
          const bool move = accept_log(-e[c - c0], lpp[c] - lp[c]);
          // Bit masks, not a branch (nor a select the compiler may turn into one): the outcome is a coin flip
          // that no branch predictor learns, and a mispredict costs more than the whole update.
          const Bits mask = Bits{0} - static_cast<Bits>(move);
          for (int64_t k = 0; k < d; ++k) x[c * d + k] = blend(mask, xp[c * d + k], x[c * d + k]);
          lp[c] = blend(mask, lpp[c], lp[c]);
          count[c] += move;
        }
      }
      if (keep >= 0) {
        for (int64_t c = c0; c < c1; ++c) std::copy(x + c * d, x + (c + 1) * d, kept + (c * slots + keep) * d);
      }
      fill_stream(z.data(), (c1 - c0) * d, sampling::Dist::Normal, 0.0, 1.0, seed, stream,
                  ((step + 1) * chains + c0) * d);
      propose(x + c0 * d, z.data(), scale, (c1 - c0) * d, xp + c0 * d);
    });
  });
}

// Two passes over fixed chunks (so the result does not depend on the thread count): each chunk draws its -log u
// with the vector fill and writes its accepted indices at its own start, in parallel; then the chunks slide down
// into place, in order, and -1 fills the tail.
void accept_compact(const Tensor& log_ratio, uint64_t seed, uint64_t stream, int64_t offset, Tensor& index,
                    Tensor& count) {
  const int64_t n = log_ratio.numel();
  constexpr int64_t kChunk = 4096;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<int64_t> chunk_count(static_cast<size_t>(chunks));
  int64_t* out = index.mutable_data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(log_ratio.scalar_type(), "accept_compact", [&] {
    const scalar_t* r = log_ratio.const_data_ptr<scalar_t>();
    fastgan::parallel_for(0, chunks, 1, [&](int64_t b0, int64_t b1) {
      std::vector<scalar_t> e(kChunk);
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t first = b * kChunk, size = std::min(n - first, kChunk);
        fill_stream(e.data(), size, sampling::Dist::Exponential, 1.0, 0.0, seed, stream, offset + first);
        int64_t* dst = out + first;
        for (int64_t i = 0; i < size; ++i) {
          *dst = first + i;  // written always, kept by advancing: no branch on a random accept pattern
          dst += accept_log(-e[i], r[first + i]) ? 1 : 0;
        }
        chunk_count[static_cast<size_t>(b)] = dst - (out + first);
      }
    });
  });
  int64_t total = 0;
  for (int64_t b = 0; b < chunks; ++b) {
    const int64_t m = chunk_count[static_cast<size_t>(b)];
    std::memmove(out + total, out + b * kChunk, static_cast<size_t>(m) * sizeof(int64_t));
    total += m;
  }
  std::fill(out + total, out + n, int64_t{-1});
  *count.mutable_data_ptr<int64_t>() = total;
}

const McmcEngine kCpuEngine{&accept_compact, &mh_select, &mh_step};
const bool kRegistered = EngineTable<McmcEngine>::add(c10::DeviceType::CPU, kCpuEngine);

}  // namespace

}  // namespace fastgan::mcmc
