// The MMD ops' entry points for every device: checks, contiguous inputs and outputs here, the pair passes in the
// device's MmdEngine (mmd_cpu.cpp, mmd_cuda.cu).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/engine.h"
#include "mmd_ops.h"

namespace fastgan::mmd {
namespace {

using at::Tensor;

template <c10::DeviceType kDevice>
Tensor mmd_forward(const Tensor& x_in, const Tensor& y_in, at::ArrayRef<double> kernel_params,
                   c10::string_view kernel, bool unbiased) {
  const MmdEngine& engine = EngineTable<MmdEngine>::of(kDevice, "fastgan.mmd");
  const MmdSpec spec = make_spec(x_in, y_in, kernel_params, kernel, unbiased);
  const Tensor x = x_in.contiguous(), y = y_in.contiguous();
  Tensor out = at::empty({}, x.options());
  engine.forward(spec, x, y, out);
  return out;
}

template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor> mmd_backward(const Tensor& grad, const Tensor& x_in, const Tensor& y_in,
                                        at::ArrayRef<double> kernel_params, c10::string_view kernel, bool unbiased) {
  const MmdEngine& engine = EngineTable<MmdEngine>::of(kDevice, "fastgan.mmd_backward");
  const MmdSpec spec = make_spec(x_in, y_in, kernel_params, kernel, unbiased);
  TORCH_CHECK_VALUE(grad.dim() == 0 && grad.device() == x_in.device(), "fastgan.mmd_backward: grad must be 0-d on ",
                    x_in.device(), ", got ", grad.sizes(), " on ", grad.device());
  TORCH_CHECK_TYPE(at::isFloatingType(grad.scalar_type()), "fastgan.mmd_backward: grad must be a real floating "
                   "tensor, got ", grad.scalar_type());
  const Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const Tensor g = grad.scalar_type() == x.scalar_type() ? grad : grad.to(x.scalar_type());
  Tensor grad_x = at::zeros_like(x), grad_y = at::zeros_like(y);
  engine.backward(spec, g, x, y, grad_x, grad_y);
  return {grad_x, grad_y};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("mmd", &mmd_forward<c10::DeviceType::CPU>);
  m.impl("mmd_backward", &mmd_backward<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(fastgan, CUDA, m) {
  m.impl("mmd", &mmd_forward<c10::DeviceType::CUDA>);
  m.impl("mmd_backward", &mmd_backward<c10::DeviceType::CUDA>);
}

}  // namespace fastgan::mmd
