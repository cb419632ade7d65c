"""The maximum mean discrepancy as a fused, memory-linear loss: train a generator by comparing its samples with
real ones directly (GMMN, Li et al. 2015), or compare learned features (MMD-GAN)."""

from __future__ import annotations

import numbers
from typing import Optional, Sequence

import torch

from . import _args, _ext  # _ext loads the ops
from . import reference

_mmd_op = torch.ops.fastgan.mmd.default
_mmd_backward_op = torch.ops.fastgan.mmd_backward.default

DEFAULT_BANDWIDTHS = reference.MMD_BANDWIDTHS


def _kernel_params(kernel: str, d: int, bandwidths, degree, gamma, coef) -> list:
    """The op's kernel_params for this kernel; a parameter given to a kernel that does not use it is an error
    (the op checks the values)."""
    polynomial = {"degree": degree, "gamma": gamma, "coef": coef}
    if kernel == "polynomial":
        if bandwidths is not None:
            raise ValueError("mmd: bandwidths apply to the rbf and laplacian kernels, not to polynomial")
        degree = 3 if degree is None else degree
        if isinstance(degree, bool) or not isinstance(degree, numbers.Integral):
            raise TypeError(f"mmd: degree must be an int, got {type(degree).__name__} {degree!r}")
        return [float(degree), 1.0 / d if gamma is None else float(gamma), 1.0 if coef is None else float(coef)]
    given = [name for name, value in polynomial.items() if value is not None]
    if given:
        raise ValueError(f"mmd: {', '.join(given)} apply to the polynomial kernel, not to {kernel!r}")
    if kernel == "energy":
        if bandwidths is not None:
            raise ValueError("mmd: the energy kernel takes no bandwidths")
        return []
    return [float(s) for s in (DEFAULT_BANDWIDTHS if bandwidths is None else bandwidths)]


def mmd(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    bandwidths: Optional[Sequence[float]] = None,
    kernel: str = "rbf",
    estimator: str = "unbiased",
    squared: bool = True,
    degree: Optional[int] = None,
    gamma: Optional[float] = None,
    coef: Optional[float] = None,
) -> torch.Tensor:
    """MMD^2 between samples x [n, d] and y [m, d] (``squared=False``: its square root, clamped at 0).

    With d2 = ||a - b||^2 and k summed over ``bandwidths`` s (default ``DEFAULT_BANDWIDTHS``):

    - ``rbf``: ``k = sum_s exp(-d2 / (2 s^2))``
    - ``laplacian``: ``k = sum_s exp(-||a - b|| / s)``
    - ``energy``: ``k = -||a - b||`` (no parameters; MMD^2 is then the energy distance)
    - ``polynomial``: ``k = (gamma a . b + coef)^degree``, by default degree 3, gamma 1 / d, coef 1: KID's kernel
      (Binkowski et al. 2018), so ``mmd(real, fake, kernel="polynomial")`` is KID as a differentiable loss (the
      metric itself is ``fastgan.metrics.kid``, in float64 GEMM tiles)

    ``estimator="unbiased"``: ``mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)``
    (needs >= 2 samples on each side; can be slightly negative); ``"biased"`` keeps the diagonals (V-statistic).

    One tiled pass over the pairs forward and one backward; memory O((n + m) d), never the n x m kernel matrix.
    d2 is a sum of squared differences, except on the CPU for rbf and polynomial with d >= 16: there the products
    come from GEMM tiles, d2 = ||a||^2 + ||b||^2 - 2ab on data centred at the mean of x and y, and close pairs are
    recomputed as differences (error bound: docs/DESIGN.md, section 10a).
    float16/bfloat16 inputs are computed in float32 (the result is float32). Differentiable in x and y (first
    order: the backward is not differentiable again).
    """
    if estimator not in ("unbiased", "biased"):
        raise ValueError(f"estimator must be 'unbiased' or 'biased', got {estimator!r}")
    for name, t in (("x", x), ("y", y)):
        _args.tensor(t, name)
        if t.dim() != 2:
            raise ValueError(f"fastgan.mmd: x and y must be [n, d] and [m, d], got {name} of shape {tuple(t.shape)}")
        if t.shape[1] == 0:
            raise ValueError(f"fastgan.mmd: x and y need d >= 1 dimensions, got {name} of shape {tuple(t.shape)}")
    x, y = (t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in (x, y))
    params = _kernel_params(kernel, x.shape[-1], bandwidths, degree, gamma, coef)
    value = _mmd_op(x, y, params, kernel, estimator == "unbiased")
    return value if squared else value.clamp_min(0).sqrt()


def _setup(ctx, inputs, output):
    x, y, kernel_params, kernel_type, unbiased = inputs
    ctx.save_for_backward(x, y)
    ctx.args = (kernel_params, kernel_type, unbiased)


def _backward(ctx, grad):
    x, y = ctx.saved_tensors
    grad_x, grad_y = _mmd_backward_op(grad, x, y, *ctx.args)
    return grad_x, grad_y, None, None, None


torch.library.register_autograd("fastgan::mmd", _backward, setup_context=_setup)


@torch.library.register_fake("fastgan::mmd")
def _(x, y, kernel_params, kernel_type="rbf", unbiased=True):
    _ext.check_same_device("fastgan.mmd", x=x, y=y)
    return x.new_empty(())


@torch.library.register_fake("fastgan::mmd_backward")
def _(grad, x, y, kernel_params, kernel_type, unbiased):
    _ext.check_same_device("fastgan.mmd_backward", grad=grad, x=x, y=y)
    return x.new_empty(x.shape), y.new_empty(y.shape)
