// CUDA entry points of the MCMC ops: ONE launch each, a thread per chain, no host synchronisation.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "mcmc_ops.h"

namespace fastgan::mcmc {
namespace {

using at::Tensor;

constexpr int kThreads = 256;

int64_t blocks_for(int64_t chains) { return std::max<int64_t>(1, (chains + kThreads - 1) / kThreads); }

template <class T>
__global__ void __launch_bounds__(kThreads) mh_select_kernel(const T* __restrict__ logits, int64_t chains, int64_t k,
                                                             const T* __restrict__ init, uint64_t seed, uint64_t stream,
                                                             int64_t offset, int64_t* __restrict__ index,
                                                             bool* __restrict__ moved) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= chains) return;
  const ChainResult r = select_chain(logits + c * k, k, init != nullptr ? init + c : nullptr, seed, stream,
                                     offset + c * k);
  index[c] = r.index;
  moved[c] = r.moved;
}

template <class T>
__global__ void __launch_bounds__(kThreads) mh_accept_kernel(T* __restrict__ x, T* __restrict__ lp,
                                                             const T* __restrict__ xp, const T* __restrict__ lpp,
                                                             int64_t* __restrict__ count, int64_t chains, int64_t d,
                                                             uint64_t seed, uint64_t stream, int64_t offset) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= chains) return;
  if (accept(stream_uniform<T>(seed, stream, offset + c), lpp[c] - lp[c])) {
    for (int64_t k = 0; k < d; ++k) x[c * d + k] = xp[c * d + k];
    lp[c] = lpp[c];
    ++count[c];
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) accept_test_kernel(const T* __restrict__ log_ratio, int64_t n,
                                                               uint64_t seed, uint64_t stream, int64_t offset,
                                                               bool* __restrict__ out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = accept(stream_uniform<T>(seed, stream, offset + i), log_ratio[i]);
}

Tensor accept_test(const Tensor& log_ratio_in, int64_t seed, int64_t offset, int64_t stream) {
  check_accept_test(log_ratio_in, offset);
  const Tensor log_ratio = log_ratio_in.contiguous();
  Tensor out = at::empty(log_ratio.sizes(), log_ratio.options().dtype(at::kBool));
  const int64_t n = log_ratio.numel();
  if (n == 0) return out;
  const c10::cuda::CUDAGuard guard(log_ratio.device());
  AT_DISPATCH_FLOATING_TYPES(log_ratio.scalar_type(), "accept_test_cuda", [&] {
    accept_test_kernel<scalar_t><<<blocks_for(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        log_ratio.const_data_ptr<scalar_t>(), n, static_cast<uint64_t>(seed), static_cast<uint64_t>(stream), offset,
        out.mutable_data_ptr<bool>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<Tensor, Tensor> mh_select(const Tensor& logits_in, const std::optional<Tensor>& init_logit, int64_t seed,
                                     int64_t offset, int64_t stream) {
  check_mh_select(logits_in, init_logit, offset);
  const Tensor logits = logits_in.contiguous();
  const Tensor init = init_logit.has_value() ? init_logit->contiguous() : Tensor();
  const int64_t chains = logits.size(0);
  Tensor index = at::empty({chains}, logits.options().dtype(at::kLong));
  Tensor moved = at::empty({chains}, logits.options().dtype(at::kBool));
  if (chains == 0) return {index, moved};
  const c10::cuda::CUDAGuard guard(logits.device());
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "mh_select_cuda", [&] {
    mh_select_kernel<scalar_t><<<blocks_for(chains), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        logits.const_data_ptr<scalar_t>(), chains, logits.size(1),
        init.defined() ? init.const_data_ptr<scalar_t>() : nullptr, static_cast<uint64_t>(seed),
        static_cast<uint64_t>(stream), offset, index.mutable_data_ptr<int64_t>(), moved.mutable_data_ptr<bool>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {index, moved};
}

void mh_accept(Tensor& state, Tensor& log_prob, const Tensor& proposal, const Tensor& proposal_log_prob,
               Tensor& accepted, int64_t seed, int64_t offset, int64_t stream) {
  check_mh_accept(state, log_prob, proposal, proposal_log_prob, accepted, offset);
  const int64_t chains = state.size(0);
  if (chains == 0) return;
  const c10::cuda::CUDAGuard guard(state.device());
  AT_DISPATCH_FLOATING_TYPES(state.scalar_type(), "mh_accept_cuda", [&] {
    mh_accept_kernel<scalar_t><<<blocks_for(chains), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        state.mutable_data_ptr<scalar_t>(), log_prob.mutable_data_ptr<scalar_t>(), proposal.const_data_ptr<scalar_t>(),
        proposal_log_prob.const_data_ptr<scalar_t>(), accepted.mutable_data_ptr<int64_t>(), chains, state.size(1),
        static_cast<uint64_t>(seed), static_cast<uint64_t>(stream), offset);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CUDA, m) {
  m.impl("accept_test", &accept_test);
  m.impl("mh_select", &mh_select);
  m.impl("mh_accept_", &mh_accept);
}

}  // namespace fastgan::mcmc
