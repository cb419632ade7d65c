// The gradient-penalty ops' entry points for every device: checks and outputs here, the row reductions in the
// device's PenaltyEngine (penalty_cpu.cpp, penalty_cuda.cu).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/engine.h"
#include "penalty_ops.h"

namespace fastgan::penalty {
namespace {

using at::Tensor;

template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor> gradient_penalty(const Tensor& grads_in, double centre, double weight) {
  constexpr const char* op = "fastgan.gradient_penalty";
  const PenaltyEngine& engine = EngineTable<PenaltyEngine>::of(kDevice, op);
  const PenaltySpec spec = make_spec(grads_in, centre, weight, op);
  const Tensor grads = grads_in.contiguous();
  Tensor penalty = at::empty({}, grads.options());
  Tensor norms = at::empty({spec.batch}, grads.options().dtype(accumulate_type(grads.scalar_type())));
  engine.forward(spec, grads, penalty, norms);
  return {penalty, norms};
}

template <c10::DeviceType kDevice>
Tensor gradient_penalty_backward(const Tensor& grad_in, const Tensor& grads_in, const Tensor& norms, double centre,
                                 double weight) {
  constexpr const char* op = "fastgan::gradient_penalty_backward";
  const PenaltyEngine& engine = EngineTable<PenaltyEngine>::of(kDevice, op);
  const PenaltySpec spec = make_spec(grads_in, centre, weight, op);
  TORCH_CHECK_VALUE(grad_in.dim() == 0 && grad_in.device() == grads_in.device(), op, ": grad must be 0-d on ",
                    grads_in.device(), ", got ", grad_in.sizes(), " on ", grad_in.device());
  TORCH_CHECK_TYPE(at::isFloatingType(grad_in.scalar_type()), op, ": grad must be a real floating tensor, got ",
                   grad_in.scalar_type());
  TORCH_CHECK_VALUE(norms.dim() == 1 && norms.size(0) == spec.batch && norms.device() == grads_in.device() &&
                        norms.scalar_type() == accumulate_type(grads_in.scalar_type()),
                    op, ": norms must be the forward's [", spec.batch, "] ",
                    c10::toString(accumulate_type(grads_in.scalar_type())), " norms, got ", norms.sizes(), " ",
                    norms.scalar_type());
  const Tensor grads = grads_in.contiguous();
  const Tensor grad = grad_in.scalar_type() == grads.scalar_type() ? grad_in : grad_in.to(grads.scalar_type());
  Tensor out = at::empty_like(grads);
  engine.backward(spec, grad, grads, norms.contiguous(), out);
  return out;
}

template <c10::DeviceType kDevice>
void register_penalty_ops(torch::Library& m) {
  m.impl("gradient_penalty", &gradient_penalty<kDevice>);
  m.impl("gradient_penalty_backward", &gradient_penalty_backward<kDevice>);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) { register_penalty_ops<c10::DeviceType::CPU>(m); }
TORCH_LIBRARY_IMPL(fastgan, CUDA, m) { register_penalty_ops<c10::DeviceType::CUDA>(m); }

}  // namespace fastgan::penalty
