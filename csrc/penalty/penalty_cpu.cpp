// The CPU PenaltyEngine: the rows' sums of squares by the ISA's kernel, the penalty and the norms from them here.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <vector>

#include "../common/cpu_isa.h"
#include "../common/dtype.h"
#include "../common/engine.h"
#include "penalty_cpu_kernel.h"
#include "penalty_ops.h"

namespace fastgan::penalty {
namespace {

using at::Tensor;

cpu::RowParams rows_of(const Tensor& grads, const PenaltySpec& spec, const char* op) {
  return {.dtype = fastgan::cpu::kernel_dtype(grads.scalar_type(), op), .grads = grads.const_data_ptr(),
          .rows = spec.batch, .features = spec.features};
}

void forward(const PenaltySpec& spec, const Tensor& grads, Tensor& penalty, Tensor& norms) {
  std::vector<double> squares(static_cast<size_t>(spec.batch));
  FASTGAN_CPU_DISPATCH(cpu, row_squares, rows_of(grads, spec, "fastgan.gradient_penalty"), squares.data());
  double total = 0;
  AT_DISPATCH_FLOATING_TYPES(norms.scalar_type(), "gradient_penalty norms", [&] {
    scalar_t* out = norms.mutable_data_ptr<scalar_t>();
    for (int64_t i = 0; i < spec.batch; ++i) {
      const double s = squares[static_cast<size_t>(i)];
      out[i] = to_acc<scalar_t>(std::sqrt(s));
      total += centred_square(s, spec.centre);
    }
  });
  const double value = total * spec.weight / static_cast<double>(spec.batch);
  fastgan::cpu::dispatch_dtype(fastgan::cpu::kernel_dtype(penalty.scalar_type(), "fastgan.gradient_penalty"),
                               [&](auto tag) {
                                 using S = decltype(tag);
                                 *penalty.mutable_data_ptr<S>() = static_cast<S>(to_acc<S>(value));
                               });
}

void backward(const PenaltySpec& spec, const Tensor& grad, const Tensor& grads, const Tensor& norms, Tensor& out) {
  const double upstream = grad.item<double>();
  std::vector<double> factor(static_cast<size_t>(spec.batch));
  AT_DISPATCH_FLOATING_TYPES(norms.scalar_type(), "gradient_penalty_backward norms", [&] {
    const scalar_t* n = norms.const_data_ptr<scalar_t>();
    const double weight_over_batch = spec.weight / static_cast<double>(spec.batch);
    for (int64_t i = 0; i < spec.batch; ++i) {
      factor[static_cast<size_t>(i)] =
          upstream * gradient_factor(static_cast<double>(n[i]), spec.centre, weight_over_batch);
    }
  });
  FASTGAN_CPU_DISPATCH(cpu, scale_rows, rows_of(grads, spec, "fastgan::gradient_penalty_backward"), factor.data(),
                       out.mutable_data_ptr());
}

const PenaltyEngine kCpuEngine{&forward, &backward};
const bool kRegistered = EngineTable<PenaltyEngine>::add(c10::DeviceType::CPU, kCpuEngine);

}  // namespace
}  // namespace fastgan::penalty
