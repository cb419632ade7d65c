"""The standard GAN toy distributions, drawn on the device from fastgan's streams. Each returns
(samples [n, 2], mode centres [modes, 2]); row i depends only on (seed, offset + i), like every fastgan sampler.
Two streams per distribution: ``stream`` picks the modes (or positions), ``stream + 1`` (modulo 2**64) the Gaussian
noise."""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from . import _args
from ._args import nonnegative_int as _count, seed as _seed
from .sampling import latent


def _std(std) -> float:
    std = _args.finite(std, "std")
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    return std


def _check_range(largest: float, std: float, dtype) -> None:
    """Samples reach |centre| + 6.7 std (a float64 normal's largest draw); beyond the dtype's range they would be
    inf. Refused rather than returned as inf."""
    if largest + 7 * std > torch.finfo(_args.float_dtype(dtype)).max:
        raise ValueError(f"radius and std: the samples (centres up to {largest:.3g} away, std {std:.3g}) would "
                         f"overflow {dtype}")


def _mixture(centres: torch.Tensor, n: int, std: float, seed, offset: int, stream: int, dtype) -> torch.Tensor:
    seed, std, stream = _seed(seed), _std(std), _args.word64(stream, "stream") % 2**64
    _check_range(float(centres.abs().max()) if centres.numel() else 0.0, std, dtype)
    pick = latent(n, 1, dist="uniform", seed=seed, offset=offset, stream=stream, device=centres.device,
                  dtype=torch.float64)
    modes = (pick[:, 0] * len(centres)).long().clamp_max(len(centres) - 1)
    noise = latent(n, 2, seed=seed, offset=offset, stream=_args.next_stream(stream), device=centres.device,
                   dtype=_args.float_dtype(dtype))
    return centres.to(dtype)[modes] + std * noise


def ring(n: int, *, modes: int = 8, radius: float = 1.0, std: float = 0.01, seed: Optional[int] = None,
         offset: int = 0, stream: int = 0, device=None, dtype=torch.float32) -> Tuple[torch.Tensor, torch.Tensor]:
    """A mixture of `modes` Gaussians evenly spaced on a circle (PacGAN's synthetic ring: radius 1, std 0.01)."""
    modes, radius = _args.positive_int(modes, "modes"), _args.finite(radius, "radius")
    angles = torch.arange(modes, dtype=torch.float64, device=device) * (2 * math.pi / modes)
    centres = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    return _mixture(centres, _count(n, "n"), std, seed, _count(offset, "offset"), stream, dtype), centres.to(dtype)


def grid(n: int, *, std: float = 0.05, seed: Optional[int] = None, offset: int = 0, stream: int = 0, device=None,
         dtype=torch.float32) -> Tuple[torch.Tensor, torch.Tensor]:
    """25 Gaussians with means in {-4, -2, 0, 2, 4}^2 and std 0.05."""
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0], dtype=torch.float64, device=device)
    centres = torch.cartesian_prod(axis, axis)
    return _mixture(centres, _count(n, "n"), std, seed, _count(offset, "offset"), stream, dtype), centres.to(dtype)


def swiss_roll(n: int, *, std: float = 0.25, seed: Optional[int] = None, offset: int = 0, stream: int = 0,
               device=None, dtype=torch.float32) -> Tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 2-D swiss roll: t = 1.5 pi (1 + 2u), point t (cos t, sin t) plus N(0, std^2) noise.
    Its "centres" are 100 points along the noiseless roll (for coverage metrics)."""
    seed, n, offset, std = _seed(seed), _count(n, "n"), _count(offset, "offset"), _std(std)
    stream = _args.word64(stream, "stream") % 2**64
    _check_range(4.5 * math.pi, std, dtype)  # the roll's largest radius is t = 4.5 pi
    u = latent(n, 1, dist="uniform", seed=seed, offset=offset, stream=stream, device=device, dtype=torch.float64)
    t = 1.5 * math.pi * (1 + 2 * u[:, 0])
    noise = latent(n, 2, seed=seed, offset=offset, stream=_args.next_stream(stream), device=device,
                   dtype=_args.float_dtype(dtype))
    points = torch.stack([t * t.cos(), t * t.sin()], dim=1).to(dtype) + std * noise
    s = 1.5 * math.pi * (1 + 2 * torch.linspace(0, 1, 100, dtype=torch.float64, device=device))
    return points, torch.stack([s * s.cos(), s * s.sin()], dim=1).to(dtype)
