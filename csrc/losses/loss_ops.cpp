#include "loss_ops.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include <cmath>
#include <string>
#include <tuple>

#include "../common/checks.h"

namespace fastgan::losses {
namespace {

using at::Tensor;

enum class Family { Bce, Hinge, LeastSquares, Wasserstein, RpGan };

constexpr NameTable<Family, 5> kFamilyNames{{{"bce", Family::Bce},
                                             {"hinge", Family::Hinge},
                                             {"least_squares", Family::LeastSquares},
                                             {"wasserstein", Family::Wasserstein},
                                             {"rpgan", Family::RpGan}}};
constexpr NameTable<bool, 2> kInputsNames{{{"logits", false}, {"probs", true}}};  // true: probabilities
constexpr NameTable<Reduction, 3> kReductionNames{
    {{"mean", Reduction::Mean}, {"sum", Reduction::Sum}, {"none", Reduction::None}}};

Family parse_family(c10::string_view name, const char* op) { return parse_name(name, kFamilyNames, op, "loss"); }

bool parse_probs(c10::string_view inputs, const char* op) { return parse_name(inputs, kInputsNames, op, "inputs"); }

Reduction parse_reduction(c10::string_view name, const char* op) {
  return parse_name(name, kReductionNames, op, "reduction");
}

void check_input(const Tensor& t, const char* arg, Reduction reduction, const char* op) {
  check_float_tensor(t, op, arg);
  TORCH_CHECK_VALUE(reduction != Reduction::Mean || t.numel() > 0, op, ": ", arg,
                    " is empty; the mean over no elements is undefined (use reduction='sum' to get 0)");
}

void check_pair(const Tensor& real, const Tensor& fake, const char* real_name, const char* fake_name,
                const char* op) {
  check_same_device_and_dtype(real, real_name, fake, fake_name, op);
  TORCH_CHECK_VALUE(real.sizes() == fake.sizes(), op, ": loss='rpgan' pairs ", real_name, " and ", fake_name,
                    " elementwise, so they must have the same shape, got ", real.sizes(), " and ", fake.sizes());
}

// The discriminator's loss: term a on the real logits, term b on the fake ones.
LossSpec discriminator_spec(const Tensor& real, const Tensor& fake, c10::string_view loss, double label_smoothing,
                            c10::string_view inputs, c10::string_view reduction) {
  constexpr const char* op = "fastgan.fused_gan_loss";
  LossSpec spec;
  const Family family = parse_family(loss, op);
  const bool probs = parse_probs(inputs, op);
  spec.reduction = parse_reduction(reduction, op);
  check_input(real, "real_logits", spec.reduction, op);
  check_input(fake, "fake_logits", spec.reduction, op);
  check_same_device_and_dtype(real, "real_logits", fake, "fake_logits", op);
  TORCH_CHECK_VALUE(label_smoothing >= 0.0 && label_smoothing < 1.0, op,
                    ": label_smoothing must lie in [0, 1), got ", label_smoothing);
  TORCH_CHECK_VALUE(label_smoothing == 0.0 || family == Family::Bce || family == Family::LeastSquares, op,
                    ": label_smoothing applies to loss='bce' and 'least_squares' only, got loss='", loss, "'");
  TORCH_CHECK_VALUE(!probs || family == Family::Bce, op,
                    ": inputs='probs' applies to loss='bce' only, got loss='", loss, "'");
  const double real_target = 1.0 - label_smoothing;
  switch (family) {
    case Family::Bce:
      spec.kind = probs ? TermKind::BceProbs : TermKind::BceLogits;
      spec.a = {1.f, real_target};
      spec.b = {1.f, 0.f};
      break;
    case Family::Hinge:  // relu(1 - real) + relu(1 + fake)
      spec.kind = TermKind::Hinge;
      spec.a = {1.f, -1.f};
      spec.b = {1.f, 1.f};
      break;
    case Family::LeastSquares:  // (real - b)^2 / 2 + (fake - a)^2 / 2 with a = 0, b = 1 (smoothed: 1 - s)
      spec.kind = TermKind::Square;
      spec.a = {1.f, real_target};
      spec.b = {1.f, 0.f};
      break;
    case Family::Wasserstein:  // fake - real
      spec.kind = TermKind::Linear;
      spec.a = {-1.f, 0.f};
      spec.b = {1.f, 0.f};
      break;
    case Family::RpGan:  // softplus(-(real - fake)) = softplus(fake - real)
      check_pair(real, fake, "real_logits", "fake_logits", op);
      spec.kind = TermKind::BceLogits;
      spec.layout = Layout::Paired;
      spec.a = {1.f, 0.f};
      spec.pair_sign = -1.f;
      break;
  }
  return spec;
}

// The generator's loss: term b on the fake logits (a absent), or the rpgan pairing with the real logits.
LossSpec generator_spec(const Tensor& fake, const std::optional<Tensor>& real, c10::string_view loss,
                        bool saturating, c10::string_view inputs, c10::string_view reduction) {
  constexpr const char* op = "fastgan.fused_generator_loss";
  LossSpec spec;
  const Family family = parse_family(loss, op);
  const bool probs = parse_probs(inputs, op);
  spec.reduction = parse_reduction(reduction, op);
  check_input(fake, "fake_logits", spec.reduction, op);
  TORCH_CHECK_VALUE(!saturating || family == Family::Bce, op,
                    ": saturating=True applies to loss='bce' only, got loss='", loss, "'");
  TORCH_CHECK_VALUE(!probs || family == Family::Bce, op,
                    ": inputs='probs' applies to loss='bce' only, got loss='", loss, "'");
  TORCH_CHECK_VALUE(family == Family::RpGan || !real.has_value(), op,
                    ": real_logits is used by loss='rpgan' only; pass real_logits=None for loss='", loss, "'");
  switch (family) {
    case Family::Bce:
      // non-saturating: softplus(-x) = BCE(x, 1); saturating: log(1 - D(x)) = -softplus(x) = -BCE(x, 0)
      spec.kind = probs ? TermKind::BceProbs : TermKind::BceLogits;
      spec.b = saturating ? Term{-1.0, 0.0} : Term{1.0, 1.0};
      break;
    case Family::Hinge:
    case Family::Wasserstein:  // -fake
      spec.kind = TermKind::Linear;
      spec.b = {-1.f, 0.f};
      break;
    case Family::LeastSquares:  // (fake - c)^2 / 2 with c = 1
      spec.kind = TermKind::Square;
      spec.b = {1.f, 1.f};
      break;
    case Family::RpGan:  // softplus(-(fake - real)) = softplus(real - fake)
      TORCH_CHECK_VALUE(real.has_value(), op, ": loss='rpgan' needs real_logits (D's logits on the real batch)");
      check_input(*real, "real_logits", spec.reduction, op);
      check_pair(*real, fake, "real_logits", "fake_logits", op);
      spec.kind = TermKind::BceLogits;
      spec.layout = Layout::Paired;
      spec.a = {1.f, 0.f};
      spec.pair_sign = 1.f;
      break;
  }
  return spec;
}

const LossEngine*& engine_slot(c10::DeviceType type) {
  static const LossEngine* cpu = nullptr;
  static const LossEngine* cuda = nullptr;
  return type == c10::DeviceType::CUDA ? cuda : cpu;
}

const LossEngine& engine_for(const Tensor& t) {
  const auto type = t.device().type();
  TORCH_CHECK(type == c10::DeviceType::CPU || type == c10::DeviceType::CUDA,
              "fastgan: the loss ops run on CPU and CUDA tensors, got a tensor on ", t.device());
  const LossEngine* engine = engine_slot(type);
  TORCH_CHECK(engine != nullptr, "fastgan: this build of fastgan has no ", c10::DeviceTypeName(type),
              " kernels (fastgan.build_info() tells what it was built with); rebuild with FASTGAN_CUDA=1");
  return *engine;
}

int64_t numel_or_zero(const Tensor& t) { return t.defined() ? t.numel() : 0; }

// Runs the forward: a may be undefined. Returns (loss, stats).
std::tuple<Tensor, Tensor> run_forward(const LossSpec& spec, const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = a_in.defined() ? a_in.contiguous() : a_in;
  const Tensor b = b_in.contiguous();
  const auto options = b.options();
  const int64_t per_element =
      spec.layout == Layout::Paired ? b.numel() : numel_or_zero(a) + b.numel();
  Tensor loss = spec.reduction == Reduction::None ? at::empty({per_element}, options) : at::empty({}, options);
  Tensor stats = at::empty({4}, options.dtype(accumulate_type(b.scalar_type())));
  engine_for(b).forward(spec, a, b, loss, stats);
  return {loss, stats};
}

std::tuple<Tensor, Tensor> run_backward(const LossSpec& spec, const Tensor& grad_in, const Tensor& a_in,
                                        const Tensor& b_in, const char* op) {
  const Tensor a = a_in.defined() ? a_in.contiguous() : a_in;
  const Tensor b = b_in.contiguous();
  const int64_t per_element =
      spec.layout == Layout::Paired ? b.numel() : numel_or_zero(a) + b.numel();
  if (spec.reduction == Reduction::None) {
    TORCH_CHECK_VALUE(grad_in.dim() == 1 && grad_in.numel() == per_element, op,
                      ": grad must have shape [", per_element, "] for reduction='none', got ", grad_in.sizes());
  } else {
    TORCH_CHECK_VALUE(grad_in.dim() == 0, op, ": grad must be 0-d for a reduced loss, got ", grad_in.sizes());
  }
  TORCH_CHECK_VALUE(grad_in.device() == b.device(), op, ": grad must be on ", b.device(), ", got ", grad_in.device());
  // No dispatcher round trip when grad already has the dtype (the usual case): this runs every training step.
  const Tensor grad = (grad_in.scalar_type() == b.scalar_type() ? grad_in : grad_in.to(b.scalar_type())).contiguous();
  Tensor grad_a = a.defined() ? at::empty_like(a) : Tensor();
  Tensor grad_b = at::empty_like(b);
  engine_for(b).backward(spec, grad, a, b, grad_a, grad_b);
  return {grad_a, grad_b};
}

// ---- The ops (schemas in csrc/fastgan.cpp) ----

std::tuple<Tensor, Tensor> gan_loss(const Tensor& real, const Tensor& fake, c10::string_view loss,
                                    double label_smoothing, c10::string_view inputs, c10::string_view reduction) {
  const LossSpec spec = discriminator_spec(real, fake, loss, label_smoothing, inputs, reduction);
  return run_forward(spec, real, fake);
}

std::tuple<Tensor, Tensor> gan_loss_backward(const Tensor& grad, const Tensor& real, const Tensor& fake,
                                             c10::string_view loss, double label_smoothing, c10::string_view inputs,
                                             c10::string_view reduction) {
  const LossSpec spec = discriminator_spec(real, fake, loss, label_smoothing, inputs, reduction);
  return run_backward(spec, grad, real, fake, "fastgan::gan_loss_backward");
}

std::tuple<Tensor, Tensor> generator_loss(const Tensor& fake, const std::optional<Tensor>& real, c10::string_view loss,
                                          bool saturating, c10::string_view inputs, c10::string_view reduction) {
  const LossSpec spec = generator_spec(fake, real, loss, saturating, inputs, reduction);
  return run_forward(spec, spec.layout == Layout::Paired ? *real : Tensor(), fake);
}

// Returns (grad_fake, grad_real); grad_real is an empty [0] tensor when real is None (ops cannot return None).
std::tuple<Tensor, Tensor> generator_loss_backward(const Tensor& grad, const Tensor& fake,
                                                   const std::optional<Tensor>& real, c10::string_view loss,
                                                   bool saturating, c10::string_view inputs,
                                                   c10::string_view reduction) {
  const LossSpec spec = generator_spec(fake, real, loss, saturating, inputs, reduction);
  const bool paired = spec.layout == Layout::Paired;
  auto [grad_real, grad_fake] = run_backward(spec, grad, paired ? *real : Tensor(), fake,
                                             "fastgan::generator_loss_backward");
  return {grad_fake, grad_real.defined() ? grad_real : at::empty({0}, fake.options())};
}

// ---- Autocast: compute in float32, like aten's binary_cross_entropy_with_logits ----

Tensor to_float32(const Tensor& t) {
  const auto type = t.scalar_type();
  return type == at::kHalf || type == at::kBFloat16 ? t.to(at::kFloat) : t;
}

std::tuple<Tensor, Tensor> gan_loss_autocast(const Tensor& real, const Tensor& fake, c10::string_view loss,
                                             double label_smoothing, c10::string_view inputs,
                                             c10::string_view reduction) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("fastgan::gan_loss", "").typed<decltype(gan_loss)>();
  return op.call(to_float32(real), to_float32(fake), loss, label_smoothing, inputs, reduction);
}

std::tuple<Tensor, Tensor> generator_loss_autocast(const Tensor& fake, const std::optional<Tensor>& real,
                                                   c10::string_view loss, bool saturating, c10::string_view inputs,
                                                   c10::string_view reduction) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  static auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("fastgan::generator_loss", "").typed<decltype(generator_loss)>();
  std::optional<Tensor> real32 = real.has_value() ? std::optional<Tensor>(to_float32(*real)) : std::nullopt;
  return op.call(to_float32(fake), real32, loss, saturating, inputs, reduction);
}

void register_loss_kernels(torch::Library& m) {
  m.impl("gan_loss", &gan_loss);
  m.impl("gan_loss_backward", &gan_loss_backward);
  m.impl("generator_loss", &generator_loss);
  m.impl("generator_loss_backward", &generator_loss_backward);
}

}  // namespace

OutputWeights output_weights(const LossSpec& spec, const Tensor& a, const Tensor& b) {
  const bool paired = spec.layout == Layout::Paired;
  OutputWeights w{};
  w.na = paired || !a.defined() ? 0 : a.numel();
  w.nb = b.numel();
  // a term's weight in the loss: 1 / count for a mean, 1 for a sum; an absent term weighs nothing
  auto reduce = [&](int64_t count) {
    if (count == 0) return 0.0;
    return spec.reduction == Reduction::Mean ? 1.0 / static_cast<double>(count) : 1.0;
  };
  // a sum's weight in a logged mean: the mean of nothing is NaN
  auto mean = [](int64_t count) { return count > 0 ? 1.0 / static_cast<double>(count) : std::nan(""); };
  if (paired) {
    w.loss[0] = w.grad[0] = spec.a.scale * reduce(w.nb);
    w.stats[2] = w.stats[3] = mean(w.nb);  // the pair loss has no real and fake halves: stats 0 and 1 stay 0
    return w;
  }
  w.loss[0] = w.grad[0] = spec.a.scale * reduce(w.na);
  w.loss[1] = w.grad[1] = spec.b.scale * reduce(w.nb);
  const double wa = a.defined() ? mean(w.na) : 0.0, wb = mean(w.nb);
  w.stats[0] = spec.a.scale * wa;
  w.stats[1] = spec.b.scale * wb;
  w.stats[2] = wa;
  w.stats[3] = wb;
  return w;
}

void register_cpu_engine(const LossEngine& engine) { engine_slot(c10::DeviceType::CPU) = &engine; }
void register_cuda_engine(const LossEngine& engine) { engine_slot(c10::DeviceType::CUDA) = &engine; }

// The same entry points serve both devices: the checks are identical, only the engine differs. Registering the
// CUDA key even in a CPU-only build turns torch's generic "no kernel for CUDA" into a message about the build.
TORCH_LIBRARY_IMPL(fastgan, CPU, m) { register_loss_kernels(m); }
TORCH_LIBRARY_IMPL(fastgan, CUDA, m) { register_loss_kernels(m); }

TORCH_LIBRARY_IMPL(fastgan, AutocastCPU, m) {
  m.impl("gan_loss", &gan_loss_autocast);
  m.impl("generator_loss", &generator_loss_autocast);
}
TORCH_LIBRARY_IMPL(fastgan, AutocastCUDA, m) {
  m.impl("gan_loss", &gan_loss_autocast);
  m.impl("generator_loss", &generator_loss_autocast);
}

}  // namespace fastgan::losses
