// Markov-chain and rejection steps, host and device. Every uniform comes from fastgan's streams (philox.h): the
// uniform for chain c at step t is word offset + c of the step's stream, so a run is a pure function of the seed.
#pragma once

#include <cstdint>

#include "../common/math.h"
#include "../common/philox.h"
#include "../sampling/sampling.h"

namespace fastgan::mcmc {

// Word w of stream (seed, stream) as a uniform on (0, 1] (so its log is finite). For one word per thread, as in the
// CUDA kernels' lanes (lanes that compute parts of one block do it in the same instructions, at no extra issue
// cost); a thread that reads consecutive words keeps a philox::WordCursor instead, one block per 4 words.
template <class T>
FASTGAN_HD T stream_uniform(uint64_t seed, uint64_t stream, int64_t w) {
  const philox::Words words = philox::block(seed, stream, static_cast<uint64_t>(w) / 4);
  return sampling::to_uniform<T>(words.at(static_cast<uint32_t>(w & 3)), sampling::UniformKind::OpenLow);
}

// Metropolis-Hastings acceptance of a move with log ratio `log_ratio` (target ratio times proposal ratio):
// accept when log u < log_ratio. A NaN ratio (a NaN log-density) rejects; +inf (leaving a zero-density state)
// accepts. accept_log takes log u itself (the CPU draws it with vector math).
template <class T>
FASTGAN_HD bool accept_log(T log_u, T log_ratio) {
  return log_u < log_ratio;
}

template <class T>
FASTGAN_HD bool accept(T u, T log_ratio) {
  return accept_log(math::log(u), log_ratio);
}

// MH-GAN's independent Metropolis-Hastings chain (Turner et al. 2019) over K proposals with discriminator logits l:
// from the current state, proposal j is accepted with probability min(1, exp(l_j - l_current)) (the ratio
// (1/D(x) - 1) / (1/D(x') - 1) of calibrated D = sigmoid(l)). Without an initial logit the chain starts at
// proposal 0. The uniform for proposal j of chain c is word offset + c K + j. Both devices offer the proposals in
// order through offer(), so they make the same decisions.
template <class T>
struct MhGanChain {
  int64_t current;  // the state: a proposal index, or -1 for the initial state
  T current_logit;
  bool moved;       // whether any proposal was accepted

  FASTGAN_HD static MhGanChain start(const T* logits, const T* init_logit) {
    return init_logit != nullptr ? MhGanChain{-1, *init_logit, false} : MhGanChain{0, logits[0], false};
  }
  // The first proposal to offer: 0, or 1 when the chain starts at proposal 0.
  FASTGAN_HD static int64_t first(const T* init_logit) { return init_logit != nullptr ? 0 : 1; }
  FASTGAN_HD void offer(int64_t j, T logit, T log_u) {
    if (accept_log(log_u, logit - current_logit)) {
      current = j;
      current_logit = logit;
      moved = true;
    }
  }
};

// Random-walk MH draws step t's proposal noise from rows t C .. of stream `stream` (so `latent` reproduces it) and
// its acceptance uniforms from the next stream: drawn from the same stream, an acceptance would depend on the
// very words that made the proposal.
FASTGAN_HD uint64_t accept_stream(uint64_t stream) { return stream + 1; }

// Step t = step + device_step (a captured CUDA graph's step counter; 0 without one), in `t`: false unless
// -1 <= t <= last_step (check_mh_step's last_mh_step), so that no word index overflows. t + 1 is a non-negative
// offset, which lets philox::device_start form the sum without signed overflow.
FASTGAN_HD bool mh_step_number(int64_t step, int64_t device_step, int64_t last_step, int64_t& t) {
  int64_t next = 0;
  if (!philox::device_start(step + 1, device_step, 0, next)) return false;
  t = next - 1;
  return t <= last_step;
}

// The slot of the samples [C, slots, d] that step t's state is kept in, or -1: steps burn_in, burn_in + thin, ...
// are kept, as long as there are slots.
FASTGAN_HD int64_t kept_slot(int64_t t, int64_t burn_in, int64_t thin, int64_t slots) {
  if (t < burn_in || (t - burn_in) % thin != 0) return -1;
  const int64_t slot = (t - burn_in) / thin;
  return slot < slots ? slot : -1;
}

}  // namespace fastgan::mcmc
