// The MCMC family's argument checks and its per-device engine; the entry points are in mcmc_ops.cpp.
#pragma once

#include <ATen/ATen.h>

#include <cmath>

#include "../common/checks.h"
#include "mcmc.h"

namespace fastgan::mcmc {

inline void check_mh_select(const at::Tensor& logits, const std::optional<at::Tensor>& init_logit, int64_t offset) {
  constexpr const char* op = "fastgan.mh_gan_select";
  TORCH_CHECK_TYPE(logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kDouble, op,
                   ": logits must be float32 or float64, got ", logits.scalar_type());
  TORCH_CHECK_VALUE(logits.dim() == 2 && logits.size(1) >= 1, op,
                    ": logits must be [chains, k] with k >= 1 proposals per chain, got ", logits.sizes());
  check_stream_range(offset, logits.numel(), op, "offset");
  if (init_logit.has_value()) {
    check_same_device_and_dtype(logits, "logits", *init_logit, "init_logit", op);
    TORCH_CHECK_VALUE(init_logit->dim() == 1 && init_logit->size(0) == logits.size(0), op,
                      ": init_logit must be [chains] = [", logits.size(0), "], got ", init_logit->sizes());
  }
}

// The last step number whose words lie in the streams: step t reads acceptance words t C .. (t + 1) C - 1 and
// draws the next proposal's normals, elements (t + 1) C d .. (t + 2) C d - 1, so (t + 2) C max(d, 1) <= 2^63.
inline int64_t last_mh_step(int64_t chains, int64_t d) {
  // in uint64 (2^63 / 1 does not fit int64); a quotient below 2 wraps to -1 or -2, C++20's modular conversion
  const uint64_t per_step = static_cast<uint64_t>(chains) * static_cast<uint64_t>(d > 0 ? d : 1);
  return static_cast<int64_t>(philox::kStreamWords / per_step - 2);
}

inline void check_mh_step(const at::Tensor& state, const at::Tensor& log_prob, const at::Tensor& proposal,
                          const at::Tensor& proposal_log_prob, const at::Tensor& accepted, const at::Tensor& samples,
                          int64_t step, const std::optional<at::Tensor>& step_offset, int64_t burn_in, int64_t thin,
                          double step_size) {
  constexpr const char* op = "fastgan::mh_step_";
  TORCH_CHECK_TYPE(state.scalar_type() == at::kFloat || state.scalar_type() == at::kDouble, op,
                   ": the chains' state must be float32 or float64, got ", state.scalar_type());
  TORCH_CHECK_VALUE(state.dim() == 2 && state.is_contiguous(), op, ": state must be a contiguous [chains, d] tensor");
  check_same_device_and_dtype(state, "state", proposal, "proposal", op);
  check_same_device_and_dtype(state, "state", log_prob, "log_prob", op);
  check_same_device_and_dtype(state, "state", proposal_log_prob, "proposal_log_prob", op);
  check_same_device_and_dtype(state, "state", samples, "samples", op);
  TORCH_CHECK_VALUE(proposal.sizes() == state.sizes() && proposal.is_contiguous(), op,
                    ": proposal must be contiguous and shaped like state");
  const int64_t chains = state.size(0);
  TORCH_CHECK_VALUE(log_prob.dim() == 1 && log_prob.size(0) == chains && log_prob.is_contiguous() &&
                        proposal_log_prob.dim() == 1 && proposal_log_prob.size(0) == chains &&
                        proposal_log_prob.is_contiguous(),
                    op, ": log_prob and proposal_log_prob must be contiguous [chains] = [", chains, "] tensors");
  TORCH_CHECK_VALUE(accepted.scalar_type() == at::kLong && accepted.dim() == 1 && accepted.size(0) == chains &&
                        accepted.device() == state.device() && accepted.is_contiguous(),
                    op, ": accepted must be a contiguous int64 [chains] tensor on ", state.device());
  TORCH_CHECK_VALUE(samples.dim() == 3 && samples.size(0) == chains && samples.size(2) == state.size(1) &&
                        samples.is_contiguous(),
                    op, ": samples must be a contiguous [chains, kept, d] tensor, got ", samples.sizes());
  TORCH_CHECK_VALUE(step >= -1, op, ": step must be >= -1 (-1: only propose), got ", step);
  if (chains > 0) {
    TORCH_CHECK_VALUE(step <= last_mh_step(chains, state.size(1)), op, ": step ", step, " of ", chains,
                      " chains in ", state.size(1), " dimensions draws past the end of the stream (2**63 words); "
                      "the last step is ", last_mh_step(chains, state.size(1)));
  }
  if (step_offset.has_value())
    TORCH_CHECK_VALUE(step_offset->scalar_type() == at::kLong && step_offset->numel() == 1 &&
                          step_offset->device() == state.device(),
                      op, ": step_offset must be a one-element int64 tensor on ", state.device());
  NamedTensors read{{&proposal_log_prob, "proposal_log_prob"}};
  if (step_offset.has_value()) read.emplace_back(&*step_offset, "step_offset");
  check_in_place({{&state, "state"}, {&log_prob, "log_prob"}, {&proposal, "proposal"}, {&accepted, "accepted"},
                  {&samples, "samples"}},
                 read, op);
  TORCH_CHECK_VALUE(burn_in >= 0 && thin >= 1, op, ": burn_in must be >= 0 and thin >= 1, got ", burn_in, " and ",
                    thin);
  const bool wide = state.scalar_type() == at::kDouble;
  TORCH_CHECK_VALUE((wide ? std::isfinite(step_size) : std::isfinite(static_cast<float>(step_size))) && step_size > 0,
                    op, ": step_size must be finite in the chains' dtype and > 0, got ", step_size);
}

inline void check_accept_compact(const at::Tensor& log_ratio, int64_t offset) {
  constexpr const char* op = "fastgan::accept_compact";
  TORCH_CHECK_TYPE(log_ratio.scalar_type() == at::kFloat || log_ratio.scalar_type() == at::kDouble, op,
                   ": log_ratio must be float32 or float64, got ", log_ratio.scalar_type());
  check_stream_range(offset, log_ratio.numel(), op, "offset");
}


// One random-walk Metropolis-Hastings step t = step (+ *step_offset, read on the device, when given: a captured
// CUDA graph replays with a counter there) of C chains (state [C, d]), fused and in place: (1) for t >= 0, where
// log u < lp' - lp (u: word t C + c of stream + 1) the chain takes the proposal, log_prob its log-density, and
// accepted counts one more; (2) steps burn_in, burn_in + thin, ... copy the state to samples[:, slot]; (3) the next
// proposal, state + step_size z, z rows (t + 1) C .. of stream's standard normals. t = -1 only proposes.
struct MhStepSpec {
  int64_t step, last_step, burn_in, thin;  // last_step: last_mh_step (a device step_offset is checked against it)
  double step_size;
  uint64_t seed, stream;
};

// What a device implements (registered with EngineTable<McmcEngine>). Inputs are contiguous and non-empty, on the
// engine's device; outputs are allocated by mcmc_ops.cpp.
struct McmcEngine {
  // rejection sampling: index[:count] holds, ascending, the i where log u_i < log_ratio[i] (u_i: word offset + i);
  // index [n] ends in -1s; count: 0-d int64
  void (*accept_compact)(const at::Tensor& log_ratio, uint64_t seed, uint64_t stream, int64_t offset,
                         at::Tensor& index, at::Tensor& count);
  // MH-GAN's independent chain over each row of logits [chains, k] (mcmc.h); init [chains] or undefined;
  // index [chains] int64: the final state, -1 for the initial one; moved [chains] bool: any proposal accepted
  void (*mh_select)(const at::Tensor& logits, const at::Tensor& init, uint64_t seed, uint64_t stream, int64_t offset,
                    at::Tensor& index, at::Tensor& moved);
  // in place on state, log_prob, proposal, accepted, samples (check_mh_step's shapes)
  void (*mh_step)(at::Tensor& state, at::Tensor& log_prob, at::Tensor& proposal, const at::Tensor& proposal_log_prob,
                  at::Tensor& accepted, at::Tensor& samples, const std::optional<at::Tensor>& step_offset,
                  const MhStepSpec& spec);
};

}  // namespace fastgan::mcmc
