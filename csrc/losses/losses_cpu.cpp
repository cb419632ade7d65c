// The CPU engine: turns tensors into kernel arguments, runs the ISA's kernel, and writes the reduced results.
#include <ATen/ATen.h>

#include <cmath>

#include "../common/cpu_isa.h"
#include "loss_ops.h"
#include "losses_cpu_kernel.h"

namespace fastgan::losses {
namespace {

using at::Tensor;

// Reads or writes one element of a CPU tensor without a dispatcher round trip (these run on every step).
double read_scalar(const Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return *t.const_data_ptr<float>();
    case at::kDouble: return *t.const_data_ptr<double>();
    case at::kHalf: return static_cast<float>(*t.const_data_ptr<at::Half>());
    case at::kBFloat16: return static_cast<float>(*t.const_data_ptr<at::BFloat16>());
    default: TORCH_CHECK(false, "fastgan: unsupported dtype ", t.scalar_type());
  }
}

void write_scalar(Tensor& t, int64_t index, double value) {
  switch (t.scalar_type()) {
    case at::kFloat: t.mutable_data_ptr<float>()[index] = static_cast<float>(value); return;
    case at::kDouble: t.mutable_data_ptr<double>()[index] = value; return;
    case at::kHalf: t.mutable_data_ptr<at::Half>()[index] = static_cast<float>(value); return;
    case at::kBFloat16: t.mutable_data_ptr<at::BFloat16>()[index] = static_cast<float>(value); return;
    default: TORCH_CHECK(false, "fastgan: unsupported dtype ", t.scalar_type());
  }
}

// The weight of a term's sum in the loss: 1 / count for a mean, 1 for a sum; an absent term weighs nothing.
double reduction_weight(Reduction reduction, int64_t count) {
  if (count == 0) return 0.0;
  return reduction == Reduction::Mean ? 1.0 / static_cast<double>(count) : 1.0;
}

// The weight of a sum in a logged mean: NaN for no elements (the mean of nothing is undefined).
double mean_weight(int64_t count) { return count > 0 ? 1.0 / static_cast<double>(count) : std::nan(""); }

void forward(const LossSpec& spec, const Tensor& a, const Tensor& b, Tensor& loss, Tensor& stats) {
  const bool paired = spec.layout == Layout::Paired;
  cpu::ForwardArgs args{spec,
                        fastgan::cpu::kernel_dtype(b.scalar_type(), "fastgan::gan_loss"),
                        a.defined() ? a.const_data_ptr() : nullptr,
                        paired || !a.defined() ? 0 : a.numel(),
                        b.const_data_ptr(),
                        b.numel(),
                        spec.reduction == Reduction::None ? loss.mutable_data_ptr() : nullptr};
  const cpu::ForwardSums s = FASTGAN_CPU_DISPATCH(cpu, loss_forward, args);
  if (paired) {
    if (spec.reduction != Reduction::None)
      write_scalar(loss, 0, spec.a.scale * s.loss_a * reduction_weight(spec.reduction, b.numel()));
    write_scalar(stats, 0, 0.0);  // the pair loss has no real and fake halves
    write_scalar(stats, 1, 0.0);
    write_scalar(stats, 2, s.score_a * mean_weight(b.numel()));
    write_scalar(stats, 3, s.score_b * mean_weight(b.numel()));
    return;
  }
  if (spec.reduction != Reduction::None) {
    write_scalar(loss, 0,
                 spec.a.scale * s.loss_a * reduction_weight(spec.reduction, args.na) +
                     spec.b.scale * s.loss_b * reduction_weight(spec.reduction, args.nb));
  }
  // Stats are means whatever the reduction (what a training loop logs): NaN for an empty half, 0 for an absent one
  // (the generator step has no real half; Python never shows that slot).
  const double wa = a.defined() ? mean_weight(args.na) : 0.0, wb = mean_weight(args.nb);
  write_scalar(stats, 0, spec.a.scale * s.loss_a * wa);
  write_scalar(stats, 1, spec.b.scale * s.loss_b * wb);
  write_scalar(stats, 2, s.score_a * wa);
  write_scalar(stats, 3, s.score_b * wb);
}

void backward(const LossSpec& spec, const Tensor& grad, const Tensor& a, const Tensor& b, Tensor& grad_a,
              Tensor& grad_b) {
  const bool paired = spec.layout == Layout::Paired;
  const bool per_element = spec.reduction == Reduction::None;
  const int64_t na = paired || !a.defined() ? 0 : a.numel();
  const int64_t nb = b.numel();
  // A reduced loss's upstream gradient is one number: fold it into the coefficients.
  const double g = per_element ? 1.0 : read_scalar(grad);
  const double coef_a = g * spec.a.scale * reduction_weight(spec.reduction, paired ? nb : na);
  const double coef_b = g * spec.b.scale * reduction_weight(spec.reduction, nb);
  cpu::BackwardArgs args{spec,
                         fastgan::cpu::kernel_dtype(b.scalar_type(), "fastgan::gan_loss_backward"),
                         per_element ? grad.const_data_ptr() : nullptr,
                         a.defined() ? a.const_data_ptr() : nullptr,
                         na,
                         b.const_data_ptr(),
                         nb,
                         grad_a.defined() ? grad_a.mutable_data_ptr() : nullptr,
                         grad_b.mutable_data_ptr(),
                         coef_a,
                         coef_b};
  FASTGAN_CPU_DISPATCH(cpu, loss_backward, args);
}

const LossEngine kCpuEngine{&forward, &backward};
const bool kRegistered = (register_cpu_engine(kCpuEngine), true);

}  // namespace
}  // namespace fastgan::losses
