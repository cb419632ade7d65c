// Markov-chain and rejection steps, host and device. Every uniform comes from fastgan's streams (philox.h): the
// uniform for chain c at step t is word offset + c of the step's stream, so a run is a pure function of the seed.
#pragma once

#include <cstdint>

#include "../common/math.h"
#include "../common/philox.h"
#include "../sampling/sampling.h"

namespace fastgan::mcmc {

// Word w of stream (seed, stream) as a uniform on (0, 1] (so its log is finite).
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

// Random-walk MH draws step t's proposal noise from rows t C .. of stream `stream` (so `latent` reproduces it) and
// its acceptance uniforms from the next stream: drawn from the same stream, an acceptance would depend on the
// very words that made the proposal.
FASTGAN_HD uint64_t accept_stream(uint64_t stream) { return stream + 1; }

// The slot of the samples [C, slots, d] that step t's state is kept in, or -1: steps burn_in, burn_in + thin, ...
// are kept, as long as there are slots.
FASTGAN_HD int64_t kept_slot(int64_t t, int64_t burn_in, int64_t thin, int64_t slots) {
  if (t < burn_in || (t - burn_in) % thin != 0) return -1;
  const int64_t slot = (t - burn_in) / thin;
  return slot < slots ? slot : -1;
}

}  // namespace fastgan::mcmc
