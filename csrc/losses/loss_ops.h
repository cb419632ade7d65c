// The device-independent half of the loss ops: parsing and checking the user's arguments, allocating outputs,
// and handing a LossSpec to the device's engine (losses_cpu.cpp, losses_cuda.cu), which only fills outputs.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "../common/engine.h"
#include "losses.h"

namespace fastgan::losses {

struct LossEngine {
  // a may be undefined (absent half). a, b contiguous, on the engine's device, same dtype.
  // loss: 0-d (Mean, Sum) or flat [numel(a) + numel(b)] (None; [numel] for Paired), dtype of the inputs.
  // stats: [4] in the accumulate dtype: mean loss of a's term, of b's term, mean score of a, of b (D(x) for the
  // BCE kinds); NaN for an empty half, 0 where a statistic does not apply (no real half in a generator step, no
  // halves in the rpgan pair loss). a is the real logits, b the fake ones.
  void (*forward)(const LossSpec&, const at::Tensor& a, const at::Tensor& b, at::Tensor& loss, at::Tensor& stats);
  // grad: 0-d (Mean, Sum) or shaped like the forward's flat loss (None). grad_a is undefined when a is.
  void (*backward)(const LossSpec&, const at::Tensor& grad, const at::Tensor& a, const at::Tensor& b,
                   at::Tensor& grad_a, at::Tensor& grad_b);
  // The forward of a reduced loss that also fills grad_a and grad_b (either may be undefined: not wanted) with the
  // gradients for a unit upstream gradient, in the same pass over the logits; null where an engine has none
  // (loss_autograd.cpp says which and why).
  void (*forward_with_grad)(const LossSpec&, const at::Tensor& a, const at::Tensor& b, at::Tensor& loss,
                            at::Tensor& stats, at::Tensor& grad_a, at::Tensor& grad_b) = nullptr;
};

// How the kernels' four sums (loss of a, loss of b, score of a, score of b) become the outputs, and the
// backward's coefficients: one definition for every engine.
//   loss     = sum_a * loss[0] + sum_b * loss[1]      (scale and 1/n folded in; Reduction::None writes elements)
//   stats[k] = sums[k] * stats[k]                     (means; NaN for an empty half, 0 for an absent one)
//   grad_a   = g * grad[0] * f'(.), grad_b = g * grad[1] * f'(.)
struct OutputWeights {
  int64_t na, nb;  // elements of each term (na = 0 for an absent a and for Paired; nb counts pairs there)
  double loss[2];
  double stats[4];
  double grad[2];
};
OutputWeights output_weights(const LossSpec& spec, const at::Tensor& a, const at::Tensor& b);

// The forward with the gradients of a reduced loss for a unit upstream gradient (LossEngine::forward_with_grad),
// for the autograd forward; the arguments are checked as by the ops. nullopt where the engine has no such forward
// or reduction='none'. want_first / want_second: which gradients to compute, in the op's argument order (D: real,
// fake; G: fake, real).
struct LossWithGrad {
  at::Tensor loss, stats, grad_first, grad_second;  // a gradient not wanted (or of an unused real) is undefined
};
std::optional<LossWithGrad> gan_loss_with_grad(const at::Tensor& real, const at::Tensor& fake, c10::string_view loss,
                                               double label_smoothing, c10::string_view inputs,
                                               c10::string_view reduction, bool want_first, bool want_second);
std::optional<LossWithGrad> generator_loss_with_grad(const at::Tensor& fake, const std::optional<at::Tensor>& real,
                                                     c10::string_view loss, bool saturating, c10::string_view inputs,
                                                     c10::string_view reduction, bool want_first, bool want_second);

// The three string options of a loss op (loss, inputs, reduction) packed into one integer, so that the autograd
// context saves an int instead of copying three strings every training step. Only for names the op has accepted.
int64_t pack_options(c10::string_view loss, c10::string_view inputs, c10::string_view reduction);
struct OptionNames {
  c10::string_view loss, inputs, reduction;  // static storage
};
OptionNames unpack_options(int64_t packed);

// Engines register themselves at load time with EngineTable<LossEngine> (common/engine.h); a device whose engine
// was not built gets a clear error.

}  // namespace fastgan::losses
