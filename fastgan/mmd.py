"""The maximum mean discrepancy as a fused, memory-linear loss: train a generator by comparing its samples with
real ones directly (GMMN, Li et al. 2015), or compare learned features (MMD-GAN)."""

from __future__ import annotations

from typing import Sequence

import torch

from . import _ext  # noqa: F401  (loads the ops)
from . import reference

_mmd_op = torch.ops.fastgan.mmd.default
_mmd_backward_op = torch.ops.fastgan.mmd_backward.default

DEFAULT_BANDWIDTHS = reference.MMD_BANDWIDTHS


def mmd(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
    kernel: str = "rbf",
    estimator: str = "unbiased",
    squared: bool = True,
) -> torch.Tensor:
    """MMD^2 between samples x [n, d] and y [m, d] (``squared=False``: its square root, clamped at 0).

    With d2 = ||a - b||^2 (a sum of squared differences, never ||a||^2 - 2ab + ||b||^2, which cancels) and
    k summed over ``bandwidths`` s:

    - ``rbf``: ``k = sum_s exp(-d2 / (2 s^2))``
    - ``laplacian``: ``k = sum_s exp(-||a - b|| / s)``
    - ``energy``: ``k = -||a - b||`` (bandwidths unused; MMD^2 is then the energy distance)

    ``estimator="unbiased"``: ``mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)``
    (needs >= 2 samples on each side; can be slightly negative); ``"biased"`` keeps the diagonals (V-statistic).

    One tiled pass over the pairs forward and one backward; memory O((n + m) d), never the n x m kernel matrix.
    float16/bfloat16 inputs are computed in float32 (the result is float32). Differentiable in x and y (first
    order: the backward is not differentiable again).
    """
    if estimator not in ("unbiased", "biased"):
        raise ValueError(f"estimator must be 'unbiased' or 'biased', got {estimator!r}")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if y.dtype in (torch.float16, torch.bfloat16):
        y = y.float()
    value = _mmd_op(x, y, [float(s) for s in bandwidths], kernel, estimator == "unbiased")
    return value if squared else value.clamp_min(0).sqrt()


def _setup(ctx, inputs, output):
    x, y, bandwidths, kernel_type, unbiased = inputs
    ctx.save_for_backward(x, y)
    ctx.args = (bandwidths, kernel_type, unbiased)


def _backward(ctx, grad):
    x, y = ctx.saved_tensors
    grad_x, grad_y = _mmd_backward_op(grad, x, y, *ctx.args)
    return grad_x, grad_y, None, None, None


torch.library.register_autograd("fastgan::mmd", _backward, setup_context=_setup)


@torch.library.register_fake("fastgan::mmd")
def _(x, y, bandwidths, kernel_type="rbf", unbiased=True):
    return x.new_empty(())


@torch.library.register_fake("fastgan::mmd_backward")
def _(grad, x, y, bandwidths, kernel_type, unbiased):
    return x.new_empty(x.shape), y.new_empty(y.shape)
