#include "loss_ops.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include <cmath>
#include <string>
#include <tuple>

#include "../common/checks.h"
#include "../common/tables.h"

namespace fastgan::losses {
namespace {

using at::Tensor;

// One row per loss family: everything the two ops need to know about it, each field named. Adding a family is one
// row here, its entry in fastgan/reference.py's LOSS_FAMILIES (the reference terms, the same flags, the docs' lines;
// a test checks that the two tables agree), and a TermKind in losses.h only if no per-element term fits.
struct Family {
  std::string_view name;
  TermKind kind;            // the discriminator's per-element term (BceLogits becomes BceProbs for inputs='probs')
  Term real, fake;          // its terms of the real and the fake logits (Paired: `real` is the pair term)
  TermKind generator_kind;  // the generator's term, of the fake logits
  Term generator;           // non-saturating
  bool smoothable = false;       // label_smoothing applies: the real term's target 1 becomes 1 - s
  bool saturating_form = false;  // saturating=True applies: the generator term becomes -softplus(x) (log(1 - D(x)))
  bool paired = false;           // one term of the pairs sign (real - fake) (D) and sign (fake - real) (G)
};

constexpr Family kFamilies[] = {
    // softplus(-real) + softplus(fake) (BCE against 1 and 0; smoothed: against 1 - s); G: softplus(-fake)
    {.name = "bce", .kind = TermKind::BceLogits, .real = {.scale = 1.0, .constant = 1.0},
     .fake = {.scale = 1.0, .constant = 0.0}, .generator_kind = TermKind::BceLogits,
     .generator = {.scale = 1.0, .constant = 1.0}, .smoothable = true, .saturating_form = true},
    // relu(1 - real) + relu(1 + fake); G: -fake
    {.name = "hinge", .kind = TermKind::Hinge, .real = {.scale = 1.0, .constant = -1.0},
     .fake = {.scale = 1.0, .constant = 1.0}, .generator_kind = TermKind::Linear,
     .generator = {.scale = -1.0, .constant = 0.0}},
    // (real - 1)^2 / 2 + fake^2 / 2 (smoothed: real - (1 - s)); G: (fake - 1)^2 / 2
    {.name = "least_squares", .kind = TermKind::Square, .real = {.scale = 1.0, .constant = 1.0},
     .fake = {.scale = 1.0, .constant = 0.0}, .generator_kind = TermKind::Square,
     .generator = {.scale = 1.0, .constant = 1.0}, .smoothable = true},
    // LSGAN's symmetric coding (Mao et al. 2017, a = -1, b = 1, c = 0): (real - 1)^2 / 2 + (fake + 1)^2 / 2;
    // G: fake^2 / 2
    {.name = "least_squares_symmetric", .kind = TermKind::Square, .real = {.scale = 1.0, .constant = 1.0},
     .fake = {.scale = 1.0, .constant = -1.0}, .generator_kind = TermKind::Square,
     .generator = {.scale = 1.0, .constant = 0.0}},
    // fake - real; G: -fake
    {.name = "wasserstein", .kind = TermKind::Linear, .real = {.scale = -1.0, .constant = 0.0},
     .fake = {.scale = 1.0, .constant = 0.0}, .generator_kind = TermKind::Linear,
     .generator = {.scale = -1.0, .constant = 0.0}},
    // D: softplus(-(real - fake)); G: softplus(-(fake - real)), both with the real logits
    {.name = "rpgan", .kind = TermKind::BceLogits, .real = {.scale = 1.0, .constant = 0.0}, .fake = {},
     .generator_kind = TermKind::BceLogits, .generator = {.scale = 1.0, .constant = 0.0}, .paired = true},
};
constexpr size_t kFamilyCount = std::size(kFamilies);

constexpr NameTable<const Family*, kFamilyCount> family_names() {
  NameTable<const Family*, kFamilyCount> table{};
  for (size_t i = 0; i < kFamilyCount; ++i) table[i] = {kFamilies[i].name, &kFamilies[i]};
  return table;
}
constexpr auto kFamilyNames = family_names();
constexpr NameTable<bool, 2> kInputsNames{{{"logits", false}, {"probs", true}}};  // true: probabilities

// The ops' names in their messages: the Python functions users call.
constexpr const char* kDiscriminatorOp = "fastgan.fused_gan_loss";
constexpr const char* kGeneratorOp = "fastgan.fused_generator_loss";

const Family& parse_family(c10::string_view name, const char* op) {
  return *parse_name(name, kFamilyNames, op, "loss");
}

// "loss='bce' and 'least_squares'": the families that pass a test, for the messages (written from the table).
template <class Pred>
std::string families_where(Pred pred) {
  std::string names;
  int count = 0;
  for (const auto& [name, family] : kFamilyNames) {
    if (!pred(*family)) continue;
    names += (count++ == 0 ? "loss='" : " and '") + std::string(name) + "'";
  }
  return names;
}

std::string families_with(bool Family::*flag) {
  return families_where([flag](const Family& family) { return family.*flag; });
}

// inputs='probs' is a BCE on probabilities: the families whose term is BceLogits and that are not paired.
bool accepts_probs(const Family& family) { return family.kind == TermKind::BceLogits && !family.paired; }

bool parse_probs(c10::string_view inputs, const char* op) { return parse_name(inputs, kInputsNames, op, "inputs"); }

Reduction parse_reduction(c10::string_view name, const char* op) {
  return parse_name(name, name_table<Reduction>(), op, "reduction");
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

// The discriminator's loss: the real term on the real logits, the fake term on the fake ones (Paired: one term of
// the pairs).
LossSpec discriminator_spec(const Tensor& real, const Tensor& fake, c10::string_view loss, double label_smoothing,
                            c10::string_view inputs, c10::string_view reduction) {
  constexpr const char* op = kDiscriminatorOp;
  LossSpec spec;
  const Family& family = parse_family(loss, op);
  const bool probs = parse_probs(inputs, op);
  spec.reduction = parse_reduction(reduction, op);
  check_input(real, "real_logits", spec.reduction, op);
  check_input(fake, "fake_logits", spec.reduction, op);
  check_same_device_and_dtype(real, "real_logits", fake, "fake_logits", op);
  TORCH_CHECK_VALUE(label_smoothing >= 0.0 && label_smoothing < 1.0, op,
                    ": label_smoothing must lie in [0, 1), got ", label_smoothing);
  TORCH_CHECK_VALUE(label_smoothing == 0.0 || family.smoothable, op, ": label_smoothing applies to ",
                    families_with(&Family::smoothable), " only, got loss='", loss, "'");
  TORCH_CHECK_VALUE(!probs || accepts_probs(family), op, ": inputs='probs' applies to ",
                    families_where(accepts_probs), " only, got loss='", loss, "'");
  spec.kind = probs ? TermKind::BceProbs : family.kind;
  spec.real = family.real;
  if (family.smoothable) spec.real.constant -= label_smoothing;
  spec.fake = family.fake;
  if (family.paired) {
    check_pair(real, fake, "real_logits", "fake_logits", op);
    spec.layout = Layout::Paired;
    spec.pair_sign = -1.f;
  }
  return spec;
}

// The generator's loss: one term on the fake logits (the real ones absent), or the pairing with the real logits.
LossSpec generator_spec(const Tensor& fake, const std::optional<Tensor>& real, c10::string_view loss,
                        bool saturating, c10::string_view inputs, c10::string_view reduction) {
  constexpr const char* op = kGeneratorOp;
  LossSpec spec;
  const Family& family = parse_family(loss, op);
  const bool probs = parse_probs(inputs, op);
  spec.reduction = parse_reduction(reduction, op);
  check_input(fake, "fake_logits", spec.reduction, op);
  TORCH_CHECK_VALUE(!saturating || family.saturating_form, op, ": saturating=True applies to ",
                    families_with(&Family::saturating_form), " only, got loss='", loss, "'");
  TORCH_CHECK_VALUE(!probs || accepts_probs(family), op, ": inputs='probs' applies to ",
                    families_where(accepts_probs), " only, got loss='", loss, "'");
  TORCH_CHECK_VALUE(family.paired || !real.has_value(), op, ": real_logits is used by ",
                    families_with(&Family::paired), " only; pass real_logits=None for loss='", loss, "'");
  spec.kind = probs ? TermKind::BceProbs : family.generator_kind;
  // saturating: log(1 - D(x)) = -softplus(x) = -BCE(x, 0); non-saturating: softplus(-x) = BCE(x, 1)
  spec.fake = saturating ? Term{-1.0, 0.0} : family.generator;
  if (family.paired) {
    TORCH_CHECK_VALUE(real.has_value(), op, ": loss='", loss, "' needs real_logits (D's logits on the real batch)");
    check_input(*real, "real_logits", spec.reduction, op);
    check_pair(*real, fake, "real_logits", "fake_logits", op);
    spec.layout = Layout::Paired;
    spec.real = family.generator;
    spec.fake = Term{};
    spec.pair_sign = 1.f;
  }
  return spec;
}

// The kernels' operands: a (may be undefined) and b contiguous, and how many per-element losses they give.
struct Operands {
  Tensor a, b;
  int64_t per_element;
  Operands(const LossSpec& spec, const Tensor& a_in, const Tensor& b_in)
      : a(a_in.defined() ? a_in.contiguous() : a_in), b(b_in.contiguous()),
        per_element(b.numel() + (spec.layout == Layout::Paired || !a.defined() ? 0 : a.numel())) {}
};

// Returns (loss, stats).
// The forward's outputs: the loss (0-d, or the per-element losses) and the stats in the accumulate dtype.
std::tuple<Tensor, Tensor> forward_outputs(const LossSpec& spec, const Operands& operands) {
  const auto options = operands.b.options();
  Tensor loss = spec.reduction == Reduction::None ? at::empty({operands.per_element}, options)
                                                  : at::empty({}, options);
  return {loss, at::empty({4}, options.dtype(accumulate_type(operands.b.scalar_type())))};
}

std::tuple<Tensor, Tensor> run_forward(const LossEngine& engine, const LossSpec& spec, const Tensor& a_in,
                                       const Tensor& b_in) {
  const Operands operands(spec, a_in, b_in);
  auto [loss, stats] = forward_outputs(spec, operands);
  engine.forward(spec, operands.a, operands.b, loss, stats);
  return {loss, stats};
}

std::tuple<Tensor, Tensor> run_backward(const LossEngine& engine, const LossSpec& spec, const Tensor& grad_in,
                                        const Tensor& a_in, const Tensor& b_in, const char* op) {
  const auto [a, b, per_element] = Operands(spec, a_in, b_in);
  if (spec.reduction == Reduction::None) {
    TORCH_CHECK_VALUE(grad_in.dim() == 1 && grad_in.numel() == per_element, op,
                      ": grad must have shape [", per_element, "] for reduction='none', got ", grad_in.sizes());
  } else {
    TORCH_CHECK_VALUE(grad_in.dim() == 0, op, ": grad must be 0-d for a reduced loss, got ", grad_in.sizes());
  }
  TORCH_CHECK_VALUE(grad_in.device() == b.device(), op, ": grad must be on ", b.device(), ", got ", grad_in.device());
  TORCH_CHECK_TYPE(at::isFloatingType(grad_in.scalar_type()), op, ": grad must be a real floating tensor, got ",
                   grad_in.scalar_type());
  // No dispatcher round trip when grad already has the dtype (the usual case): this runs every training step.
  const Tensor grad = (grad_in.scalar_type() == b.scalar_type() ? grad_in : grad_in.to(b.scalar_type())).contiguous();
  Tensor grad_a = a.defined() ? at::empty_like(a) : Tensor();
  Tensor grad_b = at::empty_like(b);
  engine.backward(spec, grad, a, b, grad_a, grad_b);
  return {grad_a, grad_b};
}

// The forward with the unit-gradient gradients of a and b (each where wanted), where the engine has one.
std::optional<LossWithGrad> run_forward_with_grad(const LossSpec& spec, const Tensor& a_in, const Tensor& b_in,
                                                  bool want_a, bool want_b, const char* op) {
  if (spec.reduction == Reduction::None) return std::nullopt;
  const LossEngine& engine = EngineTable<LossEngine>::of(b_in.device().type(), op);
  if (engine.forward_with_grad == nullptr) return std::nullopt;
  const Operands operands(spec, a_in, b_in);
  auto [loss, stats] = forward_outputs(spec, operands);
  Tensor grad_a = want_a && operands.a.defined() ? at::empty_like(operands.a) : Tensor();
  Tensor grad_b = want_b ? at::empty_like(operands.b) : Tensor();
  engine.forward_with_grad(spec, operands.a, operands.b, loss, stats, grad_a, grad_b);
  return LossWithGrad{.loss = loss, .stats = stats, .grad_first = grad_a, .grad_second = grad_b};
}

// ---- The ops (schemas in csrc/fastgan.cpp), one entry point per op and dispatch key, the engine first ----

template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor> gan_loss(const Tensor& real, const Tensor& fake, c10::string_view loss,
                                    double label_smoothing, c10::string_view inputs, c10::string_view reduction) {
  const LossEngine& engine = EngineTable<LossEngine>::of(kDevice, kDiscriminatorOp);
  const LossSpec spec = discriminator_spec(real, fake, loss, label_smoothing, inputs, reduction);
  return run_forward(engine, spec, real, fake);
}

template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor> gan_loss_backward(const Tensor& grad, const Tensor& real, const Tensor& fake,
                                             c10::string_view loss, double label_smoothing, c10::string_view inputs,
                                             c10::string_view reduction) {
  const LossEngine& engine = EngineTable<LossEngine>::of(kDevice, "fastgan::gan_loss_backward");
  const LossSpec spec = discriminator_spec(real, fake, loss, label_smoothing, inputs, reduction);
  return run_backward(engine, spec, grad, real, fake, "fastgan::gan_loss_backward");
}

template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor> generator_loss(const Tensor& fake, const std::optional<Tensor>& real, c10::string_view loss,
                                          bool saturating, c10::string_view inputs, c10::string_view reduction) {
  const LossEngine& engine = EngineTable<LossEngine>::of(kDevice, kGeneratorOp);
  const LossSpec spec = generator_spec(fake, real, loss, saturating, inputs, reduction);
  return run_forward(engine, spec, spec.layout == Layout::Paired ? *real : Tensor(), fake);
}

// Returns (grad_fake, grad_real); grad_real is an empty [0] tensor when real is None (ops cannot return None).
template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor> generator_loss_backward(const Tensor& grad, const Tensor& fake,
                                                   const std::optional<Tensor>& real, c10::string_view loss,
                                                   bool saturating, c10::string_view inputs,
                                                   c10::string_view reduction) {
  const LossEngine& engine = EngineTable<LossEngine>::of(kDevice, "fastgan::generator_loss_backward");
  const LossSpec spec = generator_spec(fake, real, loss, saturating, inputs, reduction);
  const bool paired = spec.layout == Layout::Paired;
  auto [grad_real, grad_fake] = run_backward(engine, spec, grad, paired ? *real : Tensor(), fake,
                                             "fastgan::generator_loss_backward");
  return {grad_fake, grad_real.defined() ? grad_real : at::empty({0}, fake.options())};
}

}  // namespace

std::optional<LossWithGrad> gan_loss_with_grad(const Tensor& real, const Tensor& fake, c10::string_view loss,
                                               double label_smoothing, c10::string_view inputs,
                                               c10::string_view reduction, bool want_first, bool want_second) {
  const LossSpec spec = discriminator_spec(real, fake, loss, label_smoothing, inputs, reduction);
  return run_forward_with_grad(spec, real, fake, want_first, want_second, kDiscriminatorOp);
}

std::optional<LossWithGrad> generator_loss_with_grad(const Tensor& fake, const std::optional<Tensor>& real,
                                                     c10::string_view loss, bool saturating, c10::string_view inputs,
                                                     c10::string_view reduction, bool want_first, bool want_second) {
  const LossSpec spec = generator_spec(fake, real, loss, saturating, inputs, reduction);
  const bool paired = spec.layout == Layout::Paired;
  auto out = run_forward_with_grad(spec, paired ? *real : Tensor(), fake, want_second && paired, want_first,
                                   kGeneratorOp);
  if (out) std::swap(out->grad_first, out->grad_second);  // a = real, b = fake: the op's order is (fake, real)
  return out;
}

namespace {

// ---- Autocast: compute in float32, like aten's binary_cross_entropy_with_logits ----

Tensor to_float32(const Tensor& t) {
  const auto type = t.scalar_type();
  return type == at::kHalf || type == at::kBFloat16 ? t.to(at::kFloat) : t;
}

std::tuple<Tensor, Tensor> gan_loss_autocast(const Tensor& real, const Tensor& fake, c10::string_view loss,
                                             double label_smoothing, c10::string_view inputs,
                                             c10::string_view reduction) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("fastgan::gan_loss", "")
                       .typed<decltype(gan_loss<c10::DeviceType::CPU>)>();
  return op.call(to_float32(real), to_float32(fake), loss, label_smoothing, inputs, reduction);
}

std::tuple<Tensor, Tensor> generator_loss_autocast(const Tensor& fake, const std::optional<Tensor>& real,
                                                   c10::string_view loss, bool saturating, c10::string_view inputs,
                                                   c10::string_view reduction) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("fastgan::generator_loss", "")
                       .typed<decltype(generator_loss<c10::DeviceType::CPU>)>();
  std::optional<Tensor> real32 = real.has_value() ? std::optional<Tensor>(to_float32(*real)) : std::nullopt;
  return op.call(to_float32(fake), real32, loss, saturating, inputs, reduction);
}

template <c10::DeviceType kDevice>
void register_loss_ops(torch::Library& m) {
  m.impl("gan_loss", &gan_loss<kDevice>);
  m.impl("gan_loss_backward", &gan_loss_backward<kDevice>);
  m.impl("generator_loss", &generator_loss<kDevice>);
  m.impl("generator_loss_backward", &generator_loss_backward<kDevice>);
}

void register_autocast(torch::Library& m) {
  m.impl("gan_loss", &gan_loss_autocast);
  m.impl("generator_loss", &generator_loss_autocast);
}

template <class E, size_t N>
int64_t index_of(c10::string_view name, const NameTable<E, N>& table) {
  for (size_t i = 0; i < N; ++i) {
    if (table[i].first == name) return static_cast<int64_t>(i);
  }
  TORCH_CHECK(false, "fastgan: pack_options got the unparsed name '", name, "'");
}

}  // namespace

int64_t pack_options(c10::string_view loss, c10::string_view inputs, c10::string_view reduction) {
  return index_of(loss, kFamilyNames) | index_of(inputs, kInputsNames) << 8 |
         index_of(reduction, name_table<Reduction>()) << 16;
}

OptionNames unpack_options(int64_t packed) {
  static constexpr auto kReductionNames = name_table<Reduction>();
  return {kFamilyNames[packed & 0xff].first, kInputsNames[packed >> 8 & 0xff].first,
          kReductionNames[packed >> 16].first};
}

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
    w.loss[0] = w.grad[0] = spec.real.scale * reduce(w.nb);
    w.stats[2] = w.stats[3] = mean(w.nb);  // the pair loss has no real and fake halves: stats 0 and 1 stay 0
    return w;
  }
  w.loss[0] = w.grad[0] = spec.real.scale * reduce(w.na);
  w.loss[1] = w.grad[1] = spec.fake.scale * reduce(w.nb);
  const double wa = a.defined() ? mean(w.na) : 0.0, wb = mean(w.nb);
  w.stats[0] = spec.real.scale * wa;
  w.stats[1] = spec.fake.scale * wb;
  w.stats[2] = wa;
  w.stats[3] = wb;
  return w;
}

// Registering the CUDA key even in a CPU-only build turns torch's generic "no kernel for CUDA" into a message about
// the build (EngineTable::of, the first call of every entry point).
TORCH_LIBRARY_IMPL(fastgan, CPU, m) { register_loss_ops<c10::DeviceType::CPU>(m); }
TORCH_LIBRARY_IMPL(fastgan, CUDA, m) { register_loss_ops<c10::DeviceType::CUDA>(m); }

TORCH_LIBRARY_IMPL(fastgan, AutocastCPU, m) { register_autocast(m); }
TORCH_LIBRARY_IMPL(fastgan, AutocastCUDA, m) { register_autocast(m); }

}  // namespace fastgan::losses

std::vector<fastgan::LossFamilyRow> fastgan::loss_family_rows() {
  std::vector<LossFamilyRow> rows;
  for (const losses::Family& family : losses::kFamilies) {
    rows.push_back({.name = std::string(family.name), .smoothable = family.smoothable,
                    .saturating_form = family.saturating_form, .accepts_probs = losses::accepts_probs(family),
                    .paired = family.paired});
  }
  return rows;
}
