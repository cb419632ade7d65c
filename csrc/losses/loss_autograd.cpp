// Autograd for the fused loss ops, in C++: a Python-registered autograd kernel runs Python on every call (about
// 8 us forward and 80 us forward+backward on a 2-core CPU), which is more than the whole fused D step costs for a
// [B, 1] batch. The backward calls the registered backward op through the dispatcher, so it is differentiable
// again: its own derivative (double backward) is registered in fastgan/losses.py.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <tuple>

#include "loss_ops.h"

namespace fastgan::losses {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

template <class Signature>
c10::TypedOperatorHandle<Signature> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

using ForwardD = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, c10::string_view, double,
                                            c10::string_view, c10::string_view);
using BackwardD = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, c10::string_view, double,
                                             c10::string_view, c10::string_view);
using ForwardG = std::tuple<Tensor, Tensor>(const Tensor&, const std::optional<Tensor>&, c10::string_view, bool,
                                            c10::string_view, c10::string_view);
using BackwardG = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const std::optional<Tensor>&,
                                             c10::string_view, bool, c10::string_view, c10::string_view);

// Skips the autograd key unless the backward itself is being differentiated (create_graph=True).
struct BelowAutogradUnlessGradMode {
  std::optional<at::AutoDispatchBelowADInplaceOrView> guard;
  BelowAutogradUnlessGradMode() {
    if (!c10::GradMode::is_enabled()) guard.emplace();
  }
};

class DiscriminatorLoss : public torch::autograd::Function<DiscriminatorLoss> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& real, const Tensor& fake, c10::string_view loss,
                               double label_smoothing, c10::string_view inputs, c10::string_view reduction) {
    static const auto op = find_op<ForwardD>("fastgan::gan_loss");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [out, stats] = op.call(real, fake, loss, label_smoothing, inputs, reduction);
    ctx->save_for_backward({real, fake});
    ctx->saved_data["options"] = pack_options(loss, inputs, reduction);
    ctx->saved_data["label_smoothing"] = label_smoothing;
    ctx->mark_non_differentiable({stats});
    ctx->set_materialize_grads(false);  // no zero-filled gradient for the stats output
    return {out, stats};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = find_op<BackwardD>("fastgan::gan_loss_backward");
    const auto saved = ctx->get_saved_variables();
    if (!grads[0].defined()) return {Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
    const auto& d = ctx->saved_data;
    const OptionNames names = unpack_options(d.at("options").toInt());
    BelowAutogradUnlessGradMode dispatch;
    auto [grad_real, grad_fake] = op.call(grads[0], saved[0], saved[1], names.loss,
                                          d.at("label_smoothing").toDouble(), names.inputs, names.reduction);
    return {grad_real, grad_fake, Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

class GeneratorLoss : public torch::autograd::Function<GeneratorLoss> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& fake, const std::optional<Tensor>& real,
                               c10::string_view loss, bool saturating, c10::string_view inputs,
                               c10::string_view reduction) {
    static const auto op = find_op<ForwardG>("fastgan::generator_loss");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [out, stats] = op.call(fake, real, loss, saturating, inputs, reduction);
    ctx->save_for_backward({fake, real.value_or(Tensor())});
    ctx->saved_data["options"] = pack_options(loss, inputs, reduction);
    ctx->saved_data["saturating"] = saturating;
    ctx->mark_non_differentiable({stats});
    ctx->set_materialize_grads(false);  // no zero-filled gradient for the stats output
    return {out, stats};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = find_op<BackwardG>("fastgan::generator_loss_backward");
    const auto saved = ctx->get_saved_variables();
    if (!grads[0].defined()) return {Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
    const auto& d = ctx->saved_data;
    const OptionNames names = unpack_options(d.at("options").toInt());
    const bool has_real = saved[1].defined();
    const std::optional<Tensor> real_opt = has_real ? std::optional<Tensor>(saved[1]) : std::nullopt;
    BelowAutogradUnlessGradMode dispatch;
    auto [grad_fake, grad_real] = op.call(grads[0], saved[0], real_opt, names.loss, d.at("saturating").toBool(),
                                          names.inputs, names.reduction);
    return {grad_fake, has_real ? grad_real : Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

std::tuple<Tensor, Tensor> gan_loss_autograd(const Tensor& real, const Tensor& fake, c10::string_view loss,
                                             double label_smoothing, c10::string_view inputs,
                                             c10::string_view reduction) {
  auto out = DiscriminatorLoss::apply(real, fake, loss, label_smoothing, inputs, reduction);
  return {out[0], out[1]};
}

std::tuple<Tensor, Tensor> generator_loss_autograd(const Tensor& fake, const std::optional<Tensor>& real,
                                                   c10::string_view loss, bool saturating, c10::string_view inputs,
                                                   c10::string_view reduction) {
  auto out = GeneratorLoss::apply(fake, real, loss, saturating, inputs, reduction);
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, Autograd, m) {
  m.impl("gan_loss", &gan_loss_autograd);
  m.impl("generator_loss", &generator_loss_autograd);
}

}  // namespace fastgan::losses
