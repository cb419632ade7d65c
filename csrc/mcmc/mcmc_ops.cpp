// The MCMC ops' entry points for every device: checks and outputs here, the chains in the device's McmcEngine
// (mcmc_cpu.cpp, mcmc_cuda.cu).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/engine.h"
#include "mcmc_ops.h"

namespace fastgan::mcmc {
namespace {

using at::Tensor;

template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor> accept_compact(const Tensor& log_ratio_in, int64_t seed, int64_t offset, int64_t stream) {
  const McmcEngine& engine = EngineTable<McmcEngine>::of(kDevice, "fastgan::accept_compact");
  check_accept_compact(log_ratio_in, offset);
  const Tensor log_ratio = log_ratio_in.contiguous();
  Tensor index = at::empty({log_ratio.numel()}, log_ratio.options().dtype(at::kLong));
  Tensor count = at::zeros({}, log_ratio.options().dtype(at::kLong));
  if (log_ratio.numel() == 0) return {index, count};
  engine.accept_compact(log_ratio, static_cast<uint64_t>(seed), static_cast<uint64_t>(stream), offset, index, count);
  return {index, count};
}

template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor> mh_select(const Tensor& logits_in, const std::optional<Tensor>& init_logit, int64_t seed,
                                     int64_t offset, int64_t stream) {
  const McmcEngine& engine = EngineTable<McmcEngine>::of(kDevice, "fastgan.mh_gan_select");
  check_mh_select(logits_in, init_logit, offset);
  const Tensor logits = logits_in.contiguous();
  const Tensor init = init_logit.has_value() ? init_logit->contiguous() : Tensor();
  const int64_t chains = logits.size(0);
  Tensor index = at::empty({chains}, logits.options().dtype(at::kLong));
  Tensor moved = at::empty({chains}, logits.options().dtype(at::kBool));
  if (chains == 0) return {index, moved};
  engine.mh_select(logits, init, static_cast<uint64_t>(seed), static_cast<uint64_t>(stream), offset, index, moved);
  return {index, moved};
}

template <c10::DeviceType kDevice>
void mh_step(Tensor& state, Tensor& log_prob, Tensor& proposal, const Tensor& proposal_log_prob, Tensor& accepted,
             Tensor& samples, int64_t step, const std::optional<Tensor>& step_offset, int64_t burn_in, int64_t thin,
             double step_size, int64_t seed, int64_t stream) {
  const McmcEngine& engine = EngineTable<McmcEngine>::of(kDevice, "fastgan::mh_step_");
  check_mh_step(state, log_prob, proposal, proposal_log_prob, accepted, samples, step, step_offset, burn_in, thin,
                step_size);
  if (state.size(0) == 0) return;
  const MhStepSpec spec{.step = step, .last_step = last_mh_step(state.size(0), state.size(1)), .burn_in = burn_in,
                        .thin = thin, .step_size = step_size, .seed = static_cast<uint64_t>(seed),
                        .stream = static_cast<uint64_t>(stream)};
  engine.mh_step(state, log_prob, proposal, proposal_log_prob, accepted, samples, step_offset, spec);
}

template <c10::DeviceType kDevice>
void register_mcmc_ops(torch::Library& m) {
  m.impl("accept_compact", &accept_compact<kDevice>);
  m.impl("mh_select", &mh_select<kDevice>);
  m.impl("mh_step_", &mh_step<kDevice>);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) { register_mcmc_ops<c10::DeviceType::CPU>(m); }
TORCH_LIBRARY_IMPL(fastgan, CUDA, m) { register_mcmc_ops<c10::DeviceType::CUDA>(m); }

}  // namespace fastgan::mcmc
