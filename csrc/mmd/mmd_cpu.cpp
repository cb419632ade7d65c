// The CPU MmdEngine: three tiled pair sums forward, four tiled pair passes backward.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include "../common/cpu_isa.h"
#include "../common/engine.h"
#include "mmd_cpu_kernel.h"
#include "mmd_ops.h"

namespace fastgan::mmd {
namespace {

using at::Tensor;

// same_set: bt is a^T; skip_diagonal: the unbiased estimator leaves the pairs (i, i) of a same-set sum out.
template <class T>
cpu::Pairs<T> pairs(const Tensor& a, const Tensor& bt, bool same_set, bool skip_diagonal) {
  return {a.const_data_ptr<T>(), a.size(0), bt.const_data_ptr<T>(), bt.size(1), a.size(1), same_set, skip_diagonal};
}

void forward(const MmdSpec& spec, const Tensor& x, const Tensor& y, Tensor& out) {
  const Tensor xt = x.t().contiguous(), yt = y.t().contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd", [&] {
    auto sum = [&](const Tensor& a, const Tensor& bt, bool same) {
      return FASTGAN_CPU_DISPATCH(cpu, pair_sum, spec.kernel, spec.params,
                                  pairs<scalar_t>(a, bt, same, spec.skip_diagonal));
    };
    *out.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(
        spec.w_xx * sum(x, xt, true) + spec.w_yy * sum(y, yt, true) - 2.0 * spec.w_xy * sum(x, yt, false));
  });
}

void backward(const MmdSpec& spec, const Tensor& grad, const Tensor& x, const Tensor& y, Tensor& grad_x,
              Tensor& grad_y) {
  const Tensor xt = x.t().contiguous(), yt = y.t().contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd_backward", [&] {
    const double g = static_cast<double>(*grad.const_data_ptr<scalar_t>());
    // A same-set sum is symmetric in (i, j), so its gradient in a_i is twice the sum over j of d k(a_i, a_j)/d a_i.
    auto pass = [&](const Tensor& a, const Tensor& bt, bool same, double coef, Tensor& out) {
      FASTGAN_CPU_DISPATCH(cpu, pair_grad, spec.kernel, spec.params,
                           pairs<scalar_t>(a, bt, same, spec.skip_diagonal), coef, out.mutable_data_ptr<scalar_t>());
    };
    pass(x, xt, true, 2.0 * g * spec.w_xx, grad_x);
    pass(x, yt, false, -2.0 * g * spec.w_xy, grad_x);
    pass(y, yt, true, 2.0 * g * spec.w_yy, grad_y);
    pass(y, xt, false, -2.0 * g * spec.w_xy, grad_y);
  });
}

const MmdEngine kCpuEngine{&forward, &backward};
const bool kRegistered = EngineTable<MmdEngine>::add(c10::DeviceType::CPU, kCpuEngine);

}  // namespace

}  // namespace fastgan::mmd
