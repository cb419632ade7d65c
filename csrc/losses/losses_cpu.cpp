// The CPU engine: turns tensors into kernel arguments, runs the ISA's kernel, and writes the reduced results.
#include <ATen/ATen.h>

#include "../common/cpu_isa.h"
#include "../common/dtype.h"
#include "loss_ops.h"
#include "losses_cpu_kernel.h"

namespace fastgan::losses {
namespace {

using at::Tensor;

// One element of a CPU tensor of a kernel dtype, read or written without a dispatcher round trip (these run on
// every step), through the one dtype dispatch of common/dtype.h.
double read_scalar(const Tensor& t) {
  return fastgan::cpu::dispatch_dtype(fastgan::cpu::kernel_dtype(t.scalar_type(), "fastgan"), [&](auto tag) {
    using S = decltype(tag);
    return static_cast<double>(static_cast<Acc<S>>(*t.const_data_ptr<S>()));
  });
}

void write_scalar(Tensor& t, int64_t index, double value) {
  fastgan::cpu::dispatch_dtype(fastgan::cpu::kernel_dtype(t.scalar_type(), "fastgan"), [&](auto tag) {
    using S = decltype(tag);
    t.mutable_data_ptr<S>()[index] = static_cast<S>(to_acc<S>(value));
  });
}

void forward_with_grad(const LossSpec& spec, const Tensor& a, const Tensor& b, Tensor& loss, Tensor& stats,
                       Tensor& grad_a, Tensor& grad_b) {
  const OutputWeights w = output_weights(spec, a, b);
  const cpu::ForwardParams args{.spec = spec,
                              .dtype = fastgan::cpu::kernel_dtype(b.scalar_type(), "fastgan::gan_loss"),
                              .a = a.defined() ? a.const_data_ptr() : nullptr, .na = w.na,
                              .b = b.const_data_ptr(), .nb = w.nb,
                              .per_element = spec.reduction == Reduction::None ? loss.mutable_data_ptr() : nullptr,
                              .grad_a = grad_a.defined() ? grad_a.mutable_data_ptr() : nullptr,
                              .grad_b = grad_b.defined() ? grad_b.mutable_data_ptr() : nullptr,
                              .coef_a = w.grad[0], .coef_b = w.grad[1]};
  const cpu::ForwardSums s = FASTGAN_CPU_DISPATCH(cpu, loss_forward, args);
  if (spec.reduction != Reduction::None) write_scalar(loss, 0, s.loss_a * w.loss[0] + s.loss_b * w.loss[1]);
  const double sums[4] = {s.loss_a, s.loss_b, s.score_a, s.score_b};
  for (int k = 0; k < 4; ++k) write_scalar(stats, k, sums[k] * w.stats[k]);
}

void forward(const LossSpec& spec, const Tensor& a, const Tensor& b, Tensor& loss, Tensor& stats) {
  Tensor no_grad_a, no_grad_b;
  forward_with_grad(spec, a, b, loss, stats, no_grad_a, no_grad_b);
}

void backward(const LossSpec& spec, const Tensor& grad, const Tensor& a, const Tensor& b, Tensor& grad_a,
              Tensor& grad_b) {
  const OutputWeights w = output_weights(spec, a, b);
  const bool per_element = spec.reduction == Reduction::None;
  // A reduced loss's upstream gradient is one number: fold it into the coefficients.
  const double g = per_element ? 1.0 : read_scalar(grad);
  const cpu::BackwardParams args{.spec = spec,
                               .dtype = fastgan::cpu::kernel_dtype(b.scalar_type(), "fastgan::gan_loss_backward"),
                               .grad = per_element ? grad.const_data_ptr() : nullptr,
                               .a = a.defined() ? a.const_data_ptr() : nullptr, .na = w.na,
                               .b = b.const_data_ptr(), .nb = w.nb,
                               .grad_a = grad_a.defined() ? grad_a.mutable_data_ptr() : nullptr,
                               .grad_b = grad_b.mutable_data_ptr(),
                               .coef_a = g * w.grad[0], .coef_b = g * w.grad[1]};
  FASTGAN_CPU_DISPATCH(cpu, loss_backward, args);
}

const LossEngine kCpuEngine{&forward, &backward, &forward_with_grad};
const bool kRegistered = EngineTable<LossEngine>::add(c10::DeviceType::CPU, kCpuEngine);

}  // namespace
}  // namespace fastgan::losses

fastgan::SoftplusSweep fastgan::softplus_sweep(uint32_t first, uint32_t last, uint32_t stride) {
  return FASTGAN_CPU_DISPATCH(losses::cpu, softplus_sweep, first, last, stride);
}
