// Autograd for the fused loss ops, in C++: a Python-registered autograd kernel runs Python on every call (about
// 8 us forward and 80 us forward+backward on a 2-core CPU), which is more than the whole fused D step costs for a
// [B, 1] batch. The backward calls the registered backward op through the dispatcher, so it is differentiable
// again: its own derivative (double backward) is registered in fastgan/losses.py.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <tuple>
#include <type_traits>

#include "loss_ops.h"

namespace fastgan::losses {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Skips the autograd key unless the backward itself is being differentiated (create_graph=True).
struct BelowAutogradUnlessGradMode {
  std::optional<at::AutoDispatchBelowADInplaceOrView> guard;
  BelowAutogradUnlessGradMode() {
    if (!c10::GradMode::is_enabled()) guard.emplace();
  }
};

Tensor to_saved(const Tensor& t) { return t; }
Tensor to_saved(const std::optional<Tensor>& t) { return t.value_or(Tensor()); }
template <class Second>
Second from_saved(const Tensor& t) {
  if constexpr (std::is_same_v<Second, Tensor>) {
    return t;
  } else {
    return t.defined() ? Second(t) : std::nullopt;
  }
}

// Autograd of both loss ops, which differ only in their second tensor (D: fake_logits; G: real_logits or None) and
// their scalar option (label_smoothing; saturating). The backward op returns the gradients in input order.
template <class Second, class Option, const char* kForward, const char* kBackward>
class LossFunction : public torch::autograd::Function<LossFunction<Second, Option, kForward, kBackward>> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& first, const Second& second, c10::string_view loss,
                               Option option, c10::string_view inputs, c10::string_view reduction) {
    static const auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow(kForward, "")
            .typed<std::tuple<Tensor, Tensor>(const Tensor&, const Second&, c10::string_view, Option,
                                              c10::string_view, c10::string_view)>();
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [out, stats] = op.call(first, second, loss, option, inputs, reduction);
    ctx->save_for_backward({first, to_saved(second)});
    ctx->saved_data["options"] = pack_options(loss, inputs, reduction);
    ctx->saved_data["option"] = option;
    ctx->mark_non_differentiable({stats});
    ctx->set_materialize_grads(false);  // no zero-filled gradient for the stats output
    return {out, stats};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow(kBackward, "")
            .typed<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Second&, c10::string_view, Option,
                                              c10::string_view, c10::string_view)>();
    const auto saved = ctx->get_saved_variables();
    if (!grads[0].defined()) return {Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
    const OptionNames names = unpack_options(ctx->saved_data.at("options").toInt());
    BelowAutogradUnlessGradMode dispatch;
    auto [grad_first, grad_second] = op.call(grads[0], saved[0], from_saved<Second>(saved[1]), names.loss,
                                             ctx->saved_data.at("option").to<Option>(), names.inputs, names.reduction);
    return {grad_first, saved[1].defined() ? grad_second : Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

constexpr char kGanLoss[] = "fastgan::gan_loss";
constexpr char kGanLossBackward[] = "fastgan::gan_loss_backward";
constexpr char kGeneratorLoss[] = "fastgan::generator_loss";
constexpr char kGeneratorLossBackward[] = "fastgan::generator_loss_backward";
using DiscriminatorLoss = LossFunction<Tensor, double, kGanLoss, kGanLossBackward>;
using GeneratorLoss = LossFunction<std::optional<Tensor>, bool, kGeneratorLoss, kGeneratorLossBackward>;

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
