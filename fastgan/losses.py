"""Fused GAN losses: thin typed wrappers over torch.ops.fastgan.*, with their autograd and fake-tensor rules.

Every argument check happens once, in C++ (csrc/losses/loss_ops.cpp), so the raw ops and these wrappers reject
the same inputs with the same messages.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import torch

from . import _args, _ext  # _ext loads the ops
from . import reference

_ops = torch.ops.fastgan
# Bound overloads (.default) skip the overload resolution a packet call does on every step.
_gan_loss_op = _ops.gan_loss.default
_generator_loss_op = _ops.generator_loss.default

LOSSES = reference.LOSSES

LossOutput = Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]
Stats = Dict[str, torch.Tensor]


def fused_gan_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    *,
    loss: str = "bce",
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    inputs: str = "logits",
    return_stats: bool = False,
) -> Union[LossOutput, Tuple[LossOutput, Stats]]:
    """The discriminator's loss on a real and a fake batch, in one fused kernel (forward) and one (backward).

    With r = real_logits, f = fake_logits, each half reduced over its own elements (so the halves may have
    different sizes and shapes), and s = label_smoothing:

{discriminator_families}

    ``inputs="probs"`` (``bce`` only) takes probabilities, as from a discriminator ending in Sigmoid, with
    ``nn.BCELoss``'s semantics (each log clamped at -100). Probabilities outside [0, 1] give a NaN loss (and NaN
    gradients) rather than an error, because checking them would cost a device synchronisation every step.

    ``reduction``: ``"mean"`` (default), ``"sum"``, or ``"none"``: then the per-element losses, as the tuple
    ``(real_losses, fake_losses)`` shaped like the inputs (one tensor of pair losses for ``rpgan``).

    ``return_stats=True`` also returns a dict of 0-d tensors from the same pass (no extra kernel, no sync): the
    mean D(x) ``d_real`` and mean D(G(z)) ``d_fake`` (sigmoid of the logits for bce and rpgan, the probabilities
    for ``inputs="probs"``, the raw critic score otherwise) and, except for rpgan, each half's mean loss
    ``loss_real`` and ``loss_fake``. Stats are means whatever the reduction and carry no gradient.

    NaN in any logit gives a NaN loss (never a silent zero). Infinite logits give the mathematical limit where
    there is one (softplus(-inf) = 0). ``reduction="mean"`` over an empty tensor raises (the mean is undefined);
    ``"sum"`` gives 0. Under autocast the loss is computed in float32, like aten's BCE; accumulation is in float32
    for float16/bfloat16/float32 inputs and in float64 for float64.
    """
    try:
        out, stats = _gan_loss_op(real_logits, fake_logits, loss, label_smoothing, inputs, reduction)
    except (RuntimeError, NotImplementedError) as error:
        _args.explain(error, "fused_gan_loss", real_logits=real_logits, fake_logits=fake_logits)
        raise
    if reduction == "none":
        if loss in reference.PAIRED_LOSSES:
            out = out.view(real_logits.shape)
        else:
            n_real = real_logits.numel()
            out = (out[:n_real].view(real_logits.shape), out[n_real:].view(fake_logits.shape))
    if not return_stats:
        return out
    loss_real, loss_fake, d_real, d_fake = stats.unbind()  # one call, not four indexings
    named = {"d_real": d_real, "d_fake": d_fake}
    if loss not in reference.PAIRED_LOSSES:
        named["loss_real"] = loss_real
        named["loss_fake"] = loss_fake
    return out, named


def fused_generator_loss(
    fake_logits: torch.Tensor,
    *,
    loss: str = "bce",
    saturating: bool = False,
    real_logits: Optional[torch.Tensor] = None,
    reduction: str = "mean",
    inputs: str = "logits",
    return_stats: bool = False,
) -> Union[torch.Tensor, Tuple[torch.Tensor, Stats]]:
    """The generator's loss on D's logits for a fake batch, in one fused kernel (forward) and one (backward).

    With f = fake_logits and r = real_logits:

{generator_families}

    ``inputs``, ``reduction`` (``"none"`` returns a tensor shaped like ``fake_logits``) and the NaN and empty
    policies are as in :func:`fused_gan_loss`. ``return_stats=True`` adds ``{"d_fake": mean D(G(z))}`` (and
    ``d_real`` for rpgan).
    """
    try:
        out, stats = _generator_loss_op(fake_logits, real_logits, loss, saturating, inputs, reduction)
    except (RuntimeError, NotImplementedError) as error:
        _args.explain(error, "fused_generator_loss", ("real_logits",), fake_logits=fake_logits,
                      real_logits=real_logits)
        raise
    if reduction == "none":
        out = out.view(fake_logits.shape)
    if not return_stats:
        return out
    named = {"d_fake": stats[3]}
    if loss in reference.PAIRED_LOSSES:
        named["d_real"] = stats[2]
    return out, named


def _family_lines(doc: str) -> str:
    """The docstrings' list of loss families, from the family table (one place for each family's formula)."""
    return "\n".join(f"    - ``{name}``: {getattr(family, doc)}" for name, family in reference.LOSS_FAMILIES.items())


fused_gan_loss.__doc__ = fused_gan_loss.__doc__.replace("{discriminator_families}",
                                                        _family_lines("discriminator_doc"))
fused_generator_loss.__doc__ = fused_generator_loss.__doc__.replace("{generator_families}",
                                                                    _family_lines("generator_doc"))


# ---- double backward ----
# The forward ops' autograd is in C++ (csrc/losses/loss_autograd.cpp): it calls the fused backward op. That op's
# own derivative, needed only for double backward, is computed here through the reference.


def _per_element_flat(losses) -> torch.Tensor:
    if isinstance(losses, tuple):
        return torch.cat([losses[0].reshape(-1), losses[1].reshape(-1)])
    return losses.reshape(-1)


def _differentiate_reference(loss_fn, grad, tensors, upstream):
    """Derivative of the backward op (grad, *tensors) -> d loss / d tensors, contracted with `upstream`,
    computed by autograd through the float64-tested pure-PyTorch reference. Used only for double backward.
    A saved tensor that requires grad is used as it is, not detached, so that under create_graph=True the result
    stays connected to it: a third derivative is then autograd through the reference again (it was None)."""

    def differentiable(t: torch.Tensor) -> torch.Tensor:
        return t if t.requires_grad else t.detach().requires_grad_()

    with torch.enable_grad():
        grad = differentiable(grad)
        tensors = [differentiable(t) for t in tensors]
        losses = loss_fn(*tensors)
        if grad.dim() > 0:
            losses = _per_element_flat(losses)
        first = torch.autograd.grad(losses, tensors, grad_outputs=grad, create_graph=True)
        pairs = [(g, u) for g, u in zip(first, upstream) if u is not None]
        return torch.autograd.grad(
            [g for g, _ in pairs], [grad, *tensors], [u for _, u in pairs],
            create_graph=torch.is_grad_enabled(), allow_unused=True,
        )


def _loss_backward_setup(ctx, inputs, output):
    """Both backward ops take (grad, first logits, second logits or None, loss, option, inputs, reduction)."""
    grad, first, second, *args = inputs
    ctx.save_for_backward(grad, first, second)
    ctx.args = args


def _double_backward(reference_loss):
    """The double backward of a backward op (its saved second logits are None for a generator loss without real
    logits); reference_loss(loss, option, inputs, reduction) is its forward the eager way, a function of the logits."""

    def double_backward(ctx, up_first, up_second):
        grad, first, second = ctx.saved_tensors
        tensors, upstream = ((first,), (up_first,)) if second is None else ((first, second), (up_first, up_second))
        d_grad, d_first, *d_second = _differentiate_reference(reference_loss(*ctx.args), grad, tensors, upstream)
        return d_grad, d_first, d_second[0] if d_second else None, None, None, None, None

    return double_backward


def _gan_loss_reference(loss, label_smoothing, kind, reduction):
    return lambda r, f: reference.gan_loss(r, f, loss=loss, label_smoothing=label_smoothing, reduction=reduction,
                                           inputs=kind)


def _generator_loss_reference(loss, saturating, kind, reduction):
    return lambda f, r=None: reference.generator_loss(f, loss=loss, saturating=saturating, real_logits=r,
                                                      reduction=reduction, inputs=kind)


for _op, _reference_loss in (("gan_loss", _gan_loss_reference), ("generator_loss", _generator_loss_reference)):
    torch.library.register_autograd(f"fastgan::{_op}_backward", _double_backward(_reference_loss),
                                    setup_context=_loss_backward_setup)


# ---- fake (meta) kernels: shapes and dtypes only, for torch.compile and FakeTensor ----
# They check what the C++ checks would, where a mix of devices reaches them: a meta tensor beside a CPU one
# dispatches here, and outputs made from one of the two would be uninitialised memory on the CPU.


def _fake_forward(first, second_numel, reduction):
    shape = () if reduction != "none" else (first.numel() + second_numel,)
    return first.new_empty(shape), first.new_empty((4,), dtype=_args.accumulate_dtype(first.dtype))


@torch.library.register_fake("fastgan::gan_loss")
def _(real, fake, loss="bce", label_smoothing=0.0, inputs="logits", reduction="mean"):
    _ext.check_same_device("fastgan.fused_gan_loss", real_logits=real, fake_logits=fake)
    return _fake_forward(fake, 0 if loss in reference.PAIRED_LOSSES else real.numel(), reduction)


@torch.library.register_fake("fastgan::gan_loss_backward")
def _(grad, real, fake, loss, label_smoothing, inputs, reduction):
    _ext.check_same_device("fastgan::gan_loss_backward", grad=grad, real=real, fake=fake)
    return real.new_empty(real.shape), fake.new_empty(fake.shape)  # the op returns contiguous gradients


@torch.library.register_fake("fastgan::generator_loss")
def _(fake, real=None, loss="bce", saturating=False, inputs="logits", reduction="mean"):
    _ext.check_same_device("fastgan.fused_generator_loss", fake_logits=fake, real_logits=real)
    return _fake_forward(fake, 0, reduction)


@torch.library.register_fake("fastgan::generator_loss_backward")
def _(grad, fake, real, loss, saturating, inputs, reduction):
    _ext.check_same_device("fastgan::generator_loss_backward", grad=grad, fake=fake, real=real)
    grad_real = real.new_empty(real.shape) if real is not None else fake.new_empty((0,))
    return fake.new_empty(fake.shape), grad_real
