"""Gradient penalties: R1 and R2 (Mescheder et al. 2018, used together by R3GAN), WGAN-GP (Gulrajani et al. 2017)
and its zero-centred variant (Thanh-Tung et al. 2019), with the per-sample norm, centre, square and mean fused into
one kernel forward and one backward.

The penalty of gradients g [B, ...] (one row per sample) is ``weight / B * sum_i (|g_i| - centre)^2``, the norm over
each sample's every element (a sum over channels and pixels, never a mean). The discriminator's input gradient comes
from ``torch.autograd.grad(..., create_graph=True)``, so the penalty's own gradient flows back through it into D's
parameters: ``loss = d_loss + r1_penalty(d_real, real); loss.backward()`` trains D with R1.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from . import _args
from . import _ext  # loads the ops
from .sampling import LatentSampler, latent

_penalty_op = torch.ops.fastgan.gradient_penalty.default
_penalty_backward_op = torch.ops.fastgan.gradient_penalty_backward.default


def gradient_penalty(grads: torch.Tensor, *, centre: float = 0.0, weight: float = 1.0,
                     return_norms: bool = False):
    """``weight / B * sum_i (|g_i| - centre)^2`` over the B rows of grads [B, ...] (each row flattened), in one
    kernel; with ``return_norms=True`` also the norms |g_i| [B] (in the accumulate dtype, no gradient).

    centre 0 needs no square root (the square of the norm is the sum of squares). For centre > 0 the gradient of
    |g_i| at g_i = 0 is taken as 0 (the hand-written ``torch.sqrt((g ** 2).sum(1))`` gives NaN there). NaN in,
    NaN out. Differentiable (first order) in grads."""
    _args.tensor(grads, "grads")
    centre, weight = _args.finite(centre, "centre"), _args.finite(weight, "weight")
    penalty, norms = _penalty_op(grads, centre, weight)
    return (penalty, norms) if return_norms else penalty


def _input_gradient(d_out: torch.Tensor, x: torch.Tensor, name: str) -> torch.Tensor:
    """dD/dx for every sample at once (the sum over the batch: sample i's output depends on sample i only), with
    create_graph=True so that a penalty of it trains D."""
    _args.tensor(d_out, "d_out")
    _args.tensor(x, name)
    if not x.requires_grad:
        raise ValueError(f"{name} must require grad and be the input D was evaluated on: call "
                         f"{name}.requires_grad_() before d_out = D({name})")
    if d_out.shape[:1] != x.shape[:1]:
        raise ValueError(f"d_out must hold one output per sample of {name} ([{x.shape[0]}, ...]), got shape "
                         f"{tuple(d_out.shape)}")
    (grads,) = torch.autograd.grad(d_out.sum(), x, create_graph=True)
    return grads


def _lazy(gamma, interval: int) -> float:
    gamma, interval = _args.finite(gamma, "gamma"), _args.positive_int(interval, "interval")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    return gamma / 2 * interval


def r1_penalty(d_out: torch.Tensor, real: torch.Tensor, *, gamma: float = 10.0, interval: int = 1) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``gamma / 2 * E |grad_x D(x)|^2`` on real samples. ``d_out = D(real)`` with
    ``real.requires_grad_()`` set before. ``interval``: StyleGAN2's lazy regularisation, the penalty computed every
    ``interval`` steps and multiplied by ``interval`` so that its average strength stays gamma / 2."""
    weight = _lazy(gamma, interval)
    return gradient_penalty(_input_gradient(d_out, real, "real"), centre=0.0, weight=weight)


def r2_penalty(d_out: torch.Tensor, fake: torch.Tensor, *, gamma: float = 10.0, interval: int = 1) -> torch.Tensor:
    """R2: R1's formula on fake samples (``d_out = D(fake)``, fake detached from G and requiring grad); R3GAN uses
    both."""
    weight = _lazy(gamma, interval)
    return gradient_penalty(_input_gradient(d_out, fake, "fake"), centre=0.0, weight=weight)


def interpolate(real: torch.Tensor, fake: torch.Tensor, *, seed: Optional[int] = None, offset: int = 0,
                stream: int = 0, sampler: Optional[LatentSampler] = None) -> torch.Tensor:
    """WGAN-GP's points ``fake + eps (real - fake)`` with one eps ~ U[0, 1) per sample (not per element), eps from
    fastgan's stream (row ``offset`` .. of (seed, stream)), or from ``sampler`` (a ``LatentSampler(1,
    dist="uniform")`` whose position lives on the device: CUDA-graph safe). Requires grad."""
    for name, t in (("real", real), ("fake", fake)):
        _args.tensor(t, name, dtypes=_args.FLOAT_DTYPES)
    if real.shape != fake.shape or real.device != fake.device or real.dtype != fake.dtype:
        raise ValueError(f"real and fake must share shape, dtype and device, got {tuple(real.shape)} {real.dtype} "
                         f"{real.device} and {tuple(fake.shape)} {fake.dtype} {fake.device}")
    batch = real.shape[0] if real.dim() else 1
    if sampler is not None:
        if sampler.dim != 1 or sampler.device != real.device:
            raise ValueError("sampler must be a LatentSampler(1, dist='uniform') on the samples' device")
        eps = sampler(batch).to(real.dtype)
    else:
        eps = latent(batch, 1, dist="uniform", seed=seed, offset=offset, stream=stream, device=real.device,
                     dtype=real.dtype)
    eps = eps.view((batch,) + (1,) * max(real.dim() - 1, 0))
    return (fake.detach() + eps * (real.detach() - fake.detach())).requires_grad_()


def wgan_gp(discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor, *,
            weight: float = 10.0, centre: float = 1.0, seed: Optional[int] = None, offset: int = 0, stream: int = 0,
            sampler: Optional[LatentSampler] = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017, Algorithm 1): ``weight * E (|grad D(x_hat)| - centre)^2`` at
    ``x_hat = interpolate(real, fake, ...)``, centre 1; ``centre=0`` is the zero-centred GP (Thanh-Tung et al.
    2019). Calls D once more on x_hat; the penalty trains D through its input gradient."""
    if not callable(discriminator):
        raise TypeError(f"discriminator must be a callable, got {type(discriminator).__name__}")
    x_hat = interpolate(real, fake, seed=seed, offset=offset, stream=stream, sampler=sampler)
    grads = _input_gradient(discriminator(x_hat), x_hat, "x_hat")
    return gradient_penalty(grads, centre=centre, weight=weight)


# ---- autograd and fake kernels of the op ----

def _setup(ctx, inputs, output):
    grads, centre, weight = inputs
    ctx.mark_non_differentiable(output[1])  # the norms are statistics
    ctx.save_for_backward(grads, output[1])
    ctx.options = (centre, weight)


def _backward(ctx, grad_penalty, grad_norms):
    grads, norms = ctx.saved_tensors
    return _penalty_backward_op(grad_penalty, grads, norms, *ctx.options), None, None


torch.library.register_autograd("fastgan::gradient_penalty", _backward, setup_context=_setup)


@torch.library.register_fake("fastgan::gradient_penalty")
def _(grads, centre, weight):
    return grads.new_empty(()), grads.new_empty((grads.shape[0],), dtype=_args.accumulate_dtype(grads.dtype))


@torch.library.register_fake("fastgan::gradient_penalty_backward")
def _(grad, grads, norms, centre, weight):
    _ext.check_same_device("fastgan::gradient_penalty_backward", grad=grad, grads=grads, norms=norms)
    return grads.new_empty(grads.shape)

