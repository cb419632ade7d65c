// CPU entry points of the MMD ops: three tiled pair sums forward, four tiled pair passes backward.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/cpu_isa.h"
#include "mmd_cpu_kernel.h"
#include "mmd_ops.h"

namespace fastgan::mmd {
namespace {

using at::Tensor;

// skip_diagonal: a and b are the same set and the unbiased estimator leaves the pairs (i, i) out.
template <class T>
cpu::Pairs<T> pairs(const Tensor& a, const Tensor& bt, bool skip_diagonal) {
  return {a.const_data_ptr<T>(), a.size(0), bt.const_data_ptr<T>(), bt.size(1), a.size(1), skip_diagonal};
}

double read_scalar(const Tensor& t) {
  return t.scalar_type() == at::kDouble ? *t.const_data_ptr<double>() : *t.const_data_ptr<float>();
}

Tensor mmd_forward(const Tensor& x_in, const Tensor& y_in, at::ArrayRef<double> kernel_params,
                   c10::string_view kernel, bool unbiased) {
  const MmdSpec spec = make_spec(x_in, y_in, kernel_params, kernel, unbiased);
  const Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const Tensor xt = x.t().contiguous(), yt = y.t().contiguous();
  double value = 0;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd", [&] {
    auto sum = [&](const Tensor& a, const Tensor& bt, bool same) {
      return FASTGAN_CPU_DISPATCH(cpu, pair_sum, spec.kernel, spec.params,
                                  pairs<scalar_t>(a, bt, same && spec.skip_diagonal));
    };
    value = spec.w_xx * sum(x, xt, true) + spec.w_yy * sum(y, yt, true) - 2.0 * spec.w_xy * sum(x, yt, false);
  });
  return at::scalar_tensor(value, x.options());
}

std::tuple<Tensor, Tensor> mmd_backward(const Tensor& grad, const Tensor& x_in, const Tensor& y_in,
                                        at::ArrayRef<double> kernel_params, c10::string_view kernel, bool unbiased) {
  const MmdSpec spec = make_spec(x_in, y_in, kernel_params, kernel, unbiased);
  const Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const Tensor xt = x.t().contiguous(), yt = y.t().contiguous();
  Tensor grad_x = at::zeros_like(x), grad_y = at::zeros_like(y);
  const double g = read_scalar(grad.to(x.scalar_type()));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "mmd_backward", [&] {
    // A same-set sum is symmetric in (i, j), so its gradient in a_i is twice the sum over j of d k(a_i, a_j)/d a_i.
    auto pass = [&](const Tensor& a, const Tensor& bt, bool same, double coef, Tensor& out) {
      FASTGAN_CPU_DISPATCH(cpu, pair_grad, spec.kernel, spec.params,
                           pairs<scalar_t>(a, bt, same && spec.skip_diagonal), coef, out.mutable_data_ptr<scalar_t>());
    };
    pass(x, xt, true, 2.0 * g * spec.w_xx, grad_x);
    pass(x, yt, false, -2.0 * g * spec.w_xy, grad_x);
    pass(y, yt, true, 2.0 * g * spec.w_yy, grad_y);
    pass(y, xt, false, -2.0 * g * spec.w_xy, grad_y);
  });
  return {grad_x, grad_y};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("mmd", &mmd_forward);
  m.impl("mmd_backward", &mmd_backward);
}

}  // namespace fastgan::mmd
