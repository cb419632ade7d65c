// Autograd for the fused loss ops, in C++: a Python-registered autograd kernel runs Python on every call (about
// 8 us forward and 80 us forward+backward on a 2-core CPU), which is more than the whole fused D step costs for a
// [B, 1] batch. The backward calls the registered backward op through the dispatcher, so it is differentiable
// again: its own derivative (double backward) is registered in fastgan/losses.py.
//
// On the CPU, a reduced loss whose inputs require grad computes the gradients in the forward's pass (the exp and
// the division serve the loss, the score and the derivative; LossEngine::forward_with_grad), and the backward only
// scales them by the upstream gradient, read on the host for free (a multiply only where it is not 1). At 4M
// logits that is one pass over the logits per step instead of two. Not on CUDA: there the scaling would be a full
// pass of its own unless the upstream gradient's value were read on the host, a synchronisation per step; the
// backward kernel's pass costs the same memory traffic. Not under a tensor subclass or a Python dispatch mode
// (FakeTensor while torch.compile traces, FlopCounterMode, ...), which must see the registered ops; not when the
// backward is differentiated again (create_graph=True), which goes through the backward op.
#include <ATen/ATen.h>
#include <ATen/TensorSubclassLikeUtils.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/TorchDispatchModeTLS.h>
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

bool requires_grad(const Tensor& t) { return t.defined() && t.requires_grad(); }
bool requires_grad(const std::optional<Tensor>& t) { return t.has_value() && requires_grad(*t); }
bool plain_cpu(const Tensor& t) { return !t.defined() || (t.device().is_cpu() && !at::isTensorSubclassLike(t)); }
bool plain_cpu(const std::optional<Tensor>& t) { return !t.has_value() || plain_cpu(*t); }

// The saved gradients of the fused forward (see the top of the file), taken out of the context: a second backward
// (retain_graph=True) recomputes, and autograd may adopt the tensors as .grad without a copy.
Tensor take_saved(AutogradContext* ctx, const char* key) {
  const auto it = ctx->saved_data.find(key);
  if (it == ctx->saved_data.end()) return Tensor();
  Tensor t = it->second.toTensor();
  ctx->saved_data.erase(it);
  return t;
}

// Autograd of both loss ops, which differ only in their second tensor (D: fake_logits; G: real_logits or None) and
// their scalar option (label_smoothing; saturating). The backward op returns the gradients in input order.
// kWithGrad: the op's forward with the gradients (loss_ops.h).
template <class Second, class Option, const char* kForward, const char* kBackward, auto kWithGrad>
class LossFunction : public torch::autograd::Function<LossFunction<Second, Option, kForward, kBackward, kWithGrad>> {
 public:
  // fuse: compute the gradients here (the caller decided: grad mode on, an input requires grad, plain CPU tensors).
  static variable_list forward(AutogradContext* ctx, const Tensor& first, const Second& second, c10::string_view loss,
                               Option option, c10::string_view inputs, c10::string_view reduction, bool fuse) {
    static const auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow(kForward, "")
            .typed<std::tuple<Tensor, Tensor>(const Tensor&, const Second&, c10::string_view, Option,
                                              c10::string_view, c10::string_view)>();
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    std::optional<LossWithGrad> fused;
    if (fuse) {
      fused = kWithGrad(first, second, loss, option, inputs, reduction, requires_grad(first), requires_grad(second));
    }
    auto [out, stats] = fused ? std::tuple<Tensor, Tensor>(fused->loss, fused->stats)
                              : op.call(first, second, loss, option, inputs, reduction);
    if (fused) {
      if (fused->grad_first.defined()) ctx->saved_data["grad_first"] = fused->grad_first;
      if (fused->grad_second.defined()) ctx->saved_data["grad_second"] = fused->grad_second;
    }
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
    Tensor fused_first = take_saved(ctx, "grad_first"), fused_second = take_saved(ctx, "grad_second");
    auto result = [&](Tensor grad_first, Tensor grad_second) -> variable_list {
      return {std::move(grad_first), saved[1].defined() ? std::move(grad_second) : Tensor(), Tensor(), Tensor(),
              Tensor(), Tensor(), Tensor(), Tensor()};
    };
    if (!grads[0].defined()) return result(Tensor(), Tensor());
    const bool fused = (fused_first.defined() || fused_second.defined()) && !c10::GradMode::is_enabled();
    const double g = fused ? grads[0].item<double>() : 1.0;  // 0-d on the CPU: a reduced loss
    // A float16/bfloat16 gradient scaled after its rounding would be rounded twice (at 1M logits the mean's
    // gradients are float16 subnormals, where that costs a fifth of the value): the backward op folds g in first.
    const bool narrow = fused && at::elementSize(saved[0].scalar_type()) == 2;
    if (fused && (g == 1.0 || !narrow)) {
      for (Tensor* t : {&fused_first, &fused_second}) {
        if (t->defined() && g != 1.0) t->mul_(g);
      }
      return result(fused_first, fused_second);
    }
    const OptionNames names = unpack_options(ctx->saved_data.at("options").toInt());
    BelowAutogradUnlessGradMode dispatch;
    auto [grad_first, grad_second] = op.call(grads[0], saved[0], from_saved<Second>(saved[1]), names.loss,
                                             ctx->saved_data.at("option").to<Option>(), names.inputs, names.reduction);
    return result(grad_first, grad_second);
  }
};

// Whether the forward computes the gradients (see the top of the file).
template <class Second>
bool fuse_gradients(const Tensor& first, const Second& second) {
  return c10::GradMode::is_enabled() && (requires_grad(first) || requires_grad(second)) && plain_cpu(first) &&
         plain_cpu(second) && !c10::impl::dispatch_mode_enabled();
}

constexpr char kGanLoss[] = "fastgan::gan_loss";
constexpr char kGanLossBackward[] = "fastgan::gan_loss_backward";
constexpr char kGeneratorLoss[] = "fastgan::generator_loss";
constexpr char kGeneratorLossBackward[] = "fastgan::generator_loss_backward";
using DiscriminatorLoss = LossFunction<Tensor, double, kGanLoss, kGanLossBackward, &gan_loss_with_grad>;
using GeneratorLoss =
    LossFunction<std::optional<Tensor>, bool, kGeneratorLoss, kGeneratorLossBackward, &generator_loss_with_grad>;

std::tuple<Tensor, Tensor> gan_loss_autograd(const Tensor& real, const Tensor& fake, c10::string_view loss,
                                             double label_smoothing, c10::string_view inputs,
                                             c10::string_view reduction) {
  auto out = DiscriminatorLoss::apply(real, fake, loss, label_smoothing, inputs, reduction,
                                      fuse_gradients(real, fake));
  return {out[0], out[1]};
}

std::tuple<Tensor, Tensor> generator_loss_autograd(const Tensor& fake, const std::optional<Tensor>& real,
                                                   c10::string_view loss, bool saturating, c10::string_view inputs,
                                                   c10::string_view reduction) {
  auto out = GeneratorLoss::apply(fake, real, loss, saturating, inputs, reduction, fuse_gradients(fake, real));
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, Autograd, m) {
  m.impl("gan_loss", &gan_loss_autograd);
  m.impl("generator_loss", &generator_loss_autograd);
}

}  // namespace fastgan::losses
