"""Counter-based random streams and the samplers built on them (docs/DESIGN.md section 4).

Element i of a draw is a pure function of (seed, stream, offset + i): the same numbers on CPU and CUDA, for any
thread count, grid or GPU. ``offset`` is the index of the first item drawn, in items (rows for ``latent``), so
rank r of R can draw its slice of a global batch and R ranks together draw exactly what one process would.

Float mappings (fixed): a float32 uniform is ``(word >> 8) * 2**-24`` (24 bits, bit-identical everywhere);
float64 draws use ``word * 2**-32``. Normals come from Box-Muller on the word pair (2k, 2k + 1), so float32
normals lie within about 5.8 standard deviations (float64: 6.7), as with torch.randn's 24-bit uniforms.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from . import _ext  # noqa: F401  (loads the ops)
from ._args import count as _count, seed as _seed, word64 as _word64

_ops = torch.ops.fastgan
_fill_bits = _ops.fill_random_bits_.default
_fill_latent = _ops.fill_latent_.default
_sample_cdf = _ops.sample_cdf_.default

LATENT_DISTS = ("normal", "uniform", "truncated_normal", "bernoulli", "sphere")
INVERSE_TRANSFORM_DISTS = {  # name -> (parameter names and defaults)
    "exponential": {"rate": 1.0},
    "logistic": {"loc": 0.0, "scale": 1.0},
    "cauchy": {"loc": 0.0, "scale": 1.0},
    "laplace": {"loc": 0.0, "scale": 1.0},
    "gumbel": {"loc": 0.0, "scale": 1.0},
}


def random_bits(n: int, *, seed: int, offset: int = 0, stream: int = 0, device=None) -> torch.Tensor:
    """Words offset .. offset + n - 1 of stream (seed, stream): Philox4x32-10, as int64 tensors holding the
    unsigned 32-bit values (torch's uint32 lacks most operators). Seed 0, stream 0 starts
    6627e8d5 e169c58d bc57ac4c 9b00dbd8."""
    out = torch.empty(_count(n, "n"), dtype=torch.int64, device=device)
    _fill_bits(out, _word64(seed, "seed"), _count(offset, "offset"), _word64(stream, "stream"))
    return out


def _latent_params(dist: str, truncation, low: float, high: float, p: float) -> Tuple[str, float, float]:
    if dist in ("normal", "sphere"):
        return "normal", 0.0, 1.0
    if dist == "uniform":
        if not high > low:
            raise ValueError(f"uniform needs low < high, got low={low}, high={high}")
        return "uniform", float(low), float(high)
    if dist == "truncated_normal":
        if truncation is None or not truncation > 0 or not math.isfinite(truncation):
            raise ValueError(f"truncated_normal needs a finite truncation > 0 (the bound t of [-t, t]), got {truncation}")
        scaled = truncation / math.sqrt(2.0)
        return "truncated_normal", math.erf(scaled), math.erfc(scaled)
    if dist == "bernoulli":
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"bernoulli needs 0 <= p <= 1, got p={p}")
        return "bernoulli", float(p), 0.0
    raise ValueError(f"dist must be one of {', '.join(repr(d) for d in LATENT_DISTS)}, got {dist!r}")


def latent(
    n: int,
    dim: int,
    *,
    dist: str = "normal",
    seed: Optional[int] = None,
    offset: int = 0,
    stream: int = 0,
    truncation: Optional[float] = None,
    low: float = 0.0,
    high: float = 1.0,
    p: float = 0.5,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Latent noise [n, dim], rows offset .. offset + n - 1 of the draw made from row 0. One kernel launch.

    - ``normal``: N(0, 1).
    - ``uniform``: U[low, high) (default [0, 1)).
    - ``truncated_normal``: N(0, 1) conditioned on [-truncation, truncation], by inverse transform
      (``sqrt(2) erfinv((2u - 1) erf(t / sqrt(2)))``): no clipping, no rejection loop (BigGAN's truncation trick).
    - ``bernoulli``: 1 with probability ``p``, else 0.
    - ``sphere``: uniform on the unit sphere S^(dim-1) (normal rows, normalised: three launches).

    ``seed=None`` draws a seed from torch's default CPU generator, so ``torch.manual_seed`` makes it reproducible.
    """
    n, dim = _count(n, "n"), _count(dim, "dim")
    name, a, b = _latent_params(dist, truncation, low, high, p)
    out = torch.empty((n, dim), dtype=dtype, device=device)
    _fill_latent(out, name, a, b, _seed(seed), _count(offset, "offset") * dim, None, _word64(stream, "stream"))
    if dist == "sphere":
        out = out / torch.linalg.vector_norm(out, dim=1, keepdim=True)
    return out


def inverse_transform(
    n: int,
    dist: str,
    *,
    seed: Optional[int] = None,
    offset: int = 0,
    stream: int = 0,
    device=None,
    dtype: torch.dtype = torch.float32,
    **params,
) -> torch.Tensor:
    """n draws by a closed-form inverse CDF of one uniform each (one kernel launch):

    - ``exponential(rate=1)``: ``-log(u) / rate``
    - ``logistic(loc=0, scale=1)``: ``loc + scale log(u / (1 - u))``
    - ``cauchy(loc=0, scale=1)``: ``loc + scale tan(pi (u - 1/2))``
    - ``laplace(loc=0, scale=1)``: ``loc - scale sign(u - 1/2) log(1 - 2 |u - 1/2|)``
    - ``gumbel(loc=0, scale=1)``: ``loc - scale log(-log u)``
    """
    if dist not in INVERSE_TRANSFORM_DISTS:
        raise ValueError(f"dist must be one of {', '.join(map(repr, INVERSE_TRANSFORM_DISTS))}, got {dist!r}")
    defaults = INVERSE_TRANSFORM_DISTS[dist]
    unknown = set(params) - set(defaults)
    if unknown:
        raise TypeError(f"{dist} takes parameters {sorted(defaults)}, got unknown {sorted(unknown)}")
    values = {**defaults, **params}
    if dist == "exponential":
        if not values["rate"] > 0:
            raise ValueError(f"exponential needs rate > 0, got {values['rate']}")
        a, b = float(values["rate"]), 0.0
    else:
        if not values["scale"] > 0:
            raise ValueError(f"{dist} needs scale > 0, got {values['scale']}")
        a, b = float(values["loc"]), float(values["scale"])
    out = torch.empty(_count(n, "n"), dtype=dtype, device=device)
    _fill_latent(out, dist, a, b, _seed(seed), _count(offset, "offset"), None, _word64(stream, "stream"))
    return out


def sample_cdf(
    cdf: torch.Tensor,
    n: int,
    *,
    seed: Optional[int] = None,
    offset: int = 0,
    stream: int = 0,
    probs: bool = False,
    edges: Optional[torch.Tensor] = None,
    validate: bool = True,
):
    """Inverse-transform sampling from tabulated distributions, batched over rows, by binary search.

    ``cdf`` is [bins] or [rows, bins], float32 or float64: each row a non-decreasing cumulative mass (it need not
    end at 1), or, with ``probs=True``, unnormalised non-negative probabilities. Returns the sampled bin indices,
    int64 [n] or [rows, n]: sample i of row r is the first bin whose cumulative mass exceeds u * total, with u
    word offset + i of stream (seed, stream + r) (a 24-bit uniform for float32 tables, 32-bit for float64). One
    launch, like ``torch.multinomial(probs, n, replacement=True)`` but reproducible across devices.

    With ``edges`` ([bins + 1], increasing), also returns values: u's position inside its bin, linearly
    interpolated between the bin's edges (the exact inverse of the piecewise-linear CDF).

    ``validate=True`` checks that rows are finite, non-decreasing (non-negative for probs) and of positive total,
    raising ValueError otherwise; on CUDA that costs a synchronisation, so pass ``validate=False`` in a hot loop.
    """
    if not isinstance(cdf, torch.Tensor) or cdf.dim() not in (1, 2):
        raise ValueError("cdf must be a 1-D [bins] or 2-D [rows, bins] tensor")
    if cdf.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"cdf must be float32 or float64, got {cdf.dtype}")
    n = _count(n, "n")
    table = cdf.reshape(1, -1) if cdf.dim() == 1 else cdf
    if table.shape[1] == 0:
        raise ValueError("cdf has no bins")
    if validate:
        if not torch.isfinite(table).all():
            raise ValueError("cdf has non-finite entries")
        if probs and (table < 0).any():
            raise ValueError("probs=True: probabilities must be >= 0")
    if probs:
        table = torch.cumsum(table, dim=1)
    if validate:
        if (table[:, 1:] < table[:, :-1]).any():
            raise ValueError("cdf rows must be non-decreasing (pass probs=True for probabilities)")
        if not (table[:, -1] > 0).all():
            raise ValueError("every cdf row needs a positive total mass")
    table = table.contiguous()
    seed, offset, stream = _seed(seed), _count(offset, "offset"), _word64(stream, "stream")
    out = torch.empty((table.shape[0], n), dtype=torch.int64, device=table.device)
    _sample_cdf(table, out, seed, offset, stream)
    indices = out[0] if cdf.dim() == 1 else out
    if edges is None:
        return indices
    if edges.shape != (table.shape[1] + 1,):
        raise ValueError(f"edges must have shape [bins + 1] = [{table.shape[1] + 1}], got {tuple(edges.shape)}")
    words = torch.stack([random_bits(n, seed=seed, offset=offset, stream=(stream + r) % 2**64, device=table.device)
                         for r in range(table.shape[0])])
    u = (words >> 8).to(table.dtype) * 2.0**-24 if table.dtype == torch.float32 else words.to(table.dtype) * 2.0**-32
    target = u * table[:, -1:]
    upper = torch.gather(table, 1, out)
    lower = torch.where(out > 0, torch.gather(table, 1, (out - 1).clamp_min(0)), torch.zeros_like(upper))
    fraction = ((target - lower) / (upper - lower)).clamp(0, 1)
    edges = edges.to(table.dtype)
    values = edges[out] + fraction * (edges[out + 1] - edges[out])
    return indices, (values[0] if cdf.dim() == 1 else values)


class LatentSampler:
    """Draws successive batches of one stream: ``sampler(batch)`` returns the next ``batch`` rows. Its position is
    an int64 tensor on the device, advanced on the device, so a call captured in a CUDA graph draws fresh noise
    on every replay. ``sampler.offset`` (a Python int, synchronising) tells the next row."""

    def __init__(self, dim: int, *, seed: Optional[int] = None, device=None, dist: str = "normal",
                 stream: int = 0, dtype: torch.dtype = torch.float32, truncation: Optional[float] = None,
                 low: float = 0.0, high: float = 1.0, p: float = 0.5, offset: int = 0):
        if dist == "sphere":
            raise ValueError("LatentSampler draws one kernel's distributions; normalise 'normal' rows for 'sphere'")
        self.dim = _count(dim, "dim")
        device = torch.device(device) if device is not None else torch.device("cpu")
        if device.type == "cuda" and device.index is None:
            # Resolved now: the position tensor and every output must stay on one device, whichever is current
            # when the sampler is called later.
            device = torch.device("cuda", torch.cuda.current_device())
        self.dtype, self.device = dtype, device
        self._name, self._a, self._b = _latent_params(dist, truncation, low, high, p)
        self._seed, self._stream = _seed(seed), _word64(stream, "stream")
        self._position = torch.full((), _count(offset, "offset") * self.dim, dtype=torch.int64, device=self.device)

    @property
    def offset(self) -> int:
        return int(self._position.item()) // max(self.dim, 1)

    def __call__(self, n: int) -> torch.Tensor:
        n = _count(n, "n")
        out = torch.empty((n, self.dim), dtype=self.dtype, device=self.device)
        _fill_latent(out, self._name, self._a, self._b, self._seed, 0, self._position, self._stream)
        self._position.add_(n * self.dim)
        return out

