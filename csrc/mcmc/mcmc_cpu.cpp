// CPU entry points of the MCMC ops: one pass over the chains, parallel over chains (each chain's work is a pure
// function of its index, so any thread count gives the same result).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "mcmc.h"
#include "mcmc_ops.h"

namespace fastgan::mcmc {
namespace {

using at::Tensor;

// f(i, u_i) for i in [0, n), u_i the (0, 1] uniform of word offset + i, in parallel.
template <class T, class F>
void for_each_uniform(int64_t seed, int64_t stream, int64_t offset, int64_t n, const F& f) {
  at::parallel_for(0, n, 1024, [&](int64_t i0, int64_t i1) {
    philox::WordCursor word(static_cast<uint64_t>(seed), static_cast<uint64_t>(stream));
    for (int64_t i = i0; i < i1; ++i)
      f(i, sampling::to_uniform<T>(word(static_cast<uint64_t>(offset + i)), sampling::UniformKind::OpenLow));
  });
}

std::tuple<Tensor, Tensor> mh_select(const Tensor& logits_in, const std::optional<Tensor>& init_logit, int64_t seed,
                                     int64_t offset, int64_t stream) {
  check_mh_select(logits_in, init_logit, offset);
  const Tensor logits = logits_in.contiguous();
  const int64_t chains = logits.size(0), k = logits.size(1);
  Tensor index = at::empty({chains}, logits.options().dtype(at::kLong));
  Tensor moved = at::empty({chains}, logits.options().dtype(at::kBool));
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "mh_select", [&] {
    const scalar_t* l = logits.const_data_ptr<scalar_t>();
    const Tensor init = init_logit.has_value() ? init_logit->contiguous() : Tensor();
    const scalar_t* l0 = init.defined() ? init.const_data_ptr<scalar_t>() : nullptr;
    int64_t* out_index = index.mutable_data_ptr<int64_t>();
    bool* out_moved = moved.mutable_data_ptr<bool>();
    at::parallel_for(0, chains, 256, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const auto r = select_chain(l + c * k, k, l0 != nullptr ? l0 + c : nullptr, static_cast<uint64_t>(seed),
                                    static_cast<uint64_t>(stream), offset + c * k);
        out_index[c] = r.index;
        out_moved[c] = r.moved;
      }
    });
  });
  return {index, moved};
}

void mh_accept(Tensor& state, Tensor& log_prob, const Tensor& proposal, const Tensor& proposal_log_prob,
               Tensor& accepted, int64_t seed, int64_t offset, int64_t stream) {
  check_mh_accept(state, log_prob, proposal, proposal_log_prob, accepted, offset);
  const int64_t chains = state.size(0), d = state.size(1);
  AT_DISPATCH_FLOATING_TYPES(state.scalar_type(), "mh_accept", [&] {
    scalar_t* x = state.mutable_data_ptr<scalar_t>();
    scalar_t* lp = log_prob.mutable_data_ptr<scalar_t>();
    const scalar_t* xp = proposal.const_data_ptr<scalar_t>();
    const scalar_t* lpp = proposal_log_prob.const_data_ptr<scalar_t>();
    int64_t* count = accepted.mutable_data_ptr<int64_t>();
    for_each_uniform<scalar_t>(seed, stream, offset, chains, [&](int64_t c, scalar_t u) {
      if (accept(u, lpp[c] - lp[c])) {
        for (int64_t k = 0; k < d; ++k) x[c * d + k] = xp[c * d + k];
        lp[c] = lpp[c];
        ++count[c];
      }
    });
  });
}

Tensor accept_test(const Tensor& log_ratio_in, int64_t seed, int64_t offset, int64_t stream) {
  check_accept_test(log_ratio_in, offset);
  const Tensor log_ratio = log_ratio_in.contiguous();
  Tensor out = at::empty(log_ratio.sizes(), log_ratio.options().dtype(at::kBool));
  AT_DISPATCH_FLOATING_TYPES(log_ratio.scalar_type(), "accept_test", [&] {
    const scalar_t* r = log_ratio.const_data_ptr<scalar_t>();
    bool* a = out.mutable_data_ptr<bool>();
    for_each_uniform<scalar_t>(seed, stream, offset, log_ratio.numel(),
                               [&](int64_t i, scalar_t u) { a[i] = accept(u, r[i]); });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("accept_test", &accept_test);
  m.impl("mh_select", &mh_select);
  m.impl("mh_accept_", &mh_accept);
}

}  // namespace fastgan::mcmc
