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
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch

from . import _ext  # noqa: F401  (loads the ops)
from . import _args
from ._args import nonnegative_int as _count, seed as _seed, word64 as _word64

_ops = torch.ops.fastgan
_fill_bits = _ops.fill_random_bits_.default
_fill_latent = _ops.fill_latent_.default
_sample_cdf = _ops.sample_cdf_.default

def _truncation(options: dict) -> Tuple[float, float]:
    """truncated_normal's op parameters from its truncation t: erf(t / sqrt 2) and erfc(t / sqrt 2), in float64
    (the kernel reads 1 - |x| from both without cancellation)."""
    t = options["truncation"]
    if t is None or not (t > 0 and math.isfinite(t)):
        raise ValueError(f"truncated_normal needs a finite truncation > 0 (the bound t of [-t, t]), got {t}")
    return math.erf(t / math.sqrt(2.0)), math.erfc(t / math.sqrt(2.0))


@dataclass(frozen=True)
class Distribution:
    """A distribution that a door draws, once: the door, its options and their defaults (None: required), the docs'
    line, and how the options become the op's parameters a and b: by default the options in order (a missing one
    is 0). csrc/sampling/sampling.h's FASTGAN_DISTS holds the op's side (the formula, the uniform it reads, each
    parameter's domain); tests/test_tables.py checks that the two tables agree on names and parameters."""

    name: str
    door: str  # "latent" or "inverse_transform"
    options: Tuple[Tuple[str, Optional[float]], ...]
    doc: str
    op: str = ""  # the op's distribution when it is not `name` (sphere draws normals)
    encode: Optional[Callable[[dict], Tuple[float, float]]] = None

    def params(self, options: dict) -> Tuple[str, float, float]:
        """(the op's distribution, a, b); the op checks the values' domains."""
        if self.encode is not None:
            a, b = self.encode(options)
        else:
            a, b = (list(options.values()) + [0.0, 0.0])[:2]
        return self.op or self.name, a, b


DISTRIBUTIONS = {d.name: d for d in (
    Distribution("normal", "latent", (), "N(0, 1)", encode=lambda o: (0.0, 1.0)),
    Distribution("uniform", "latent", (("low", 0.0), ("high", 1.0)),
                 "U[low, high), low and high rounded to the dtype first"),
    Distribution("truncated_normal", "latent", (("truncation", None),),
                 "N(0, 1) on [-t, t] by inverse transform (no clipping, no rejection loop)", encode=_truncation),
    Distribution("bernoulli", "latent", (("p", 0.5),), "1 with probability p, else 0"),
    Distribution("sphere", "latent", (), "uniform on the unit sphere S^(dim-1): normal rows, normalised (two more "
                 "launches)", op="normal", encode=lambda o: (0.0, 1.0)),
    Distribution("exponential", "inverse_transform", (("rate", 1.0),), "`-log(u) / rate`"),
    Distribution("logistic", "inverse_transform", (("loc", 0.0), ("scale", 1.0)), "`loc + scale log(u / (1 - u))`"),
    Distribution("cauchy", "inverse_transform", (("loc", 0.0), ("scale", 1.0)), "`loc + scale tan(pi (u - 1/2))`"),
    Distribution("laplace", "inverse_transform", (("loc", 0.0), ("scale", 1.0)),
                 "`loc - scale sign(u - 1/2) log(1 - 2 |u - 1/2|)`"),
    Distribution("gumbel", "inverse_transform", (("loc", 0.0), ("scale", 1.0)), "`loc - scale log(-log u)`"),
    Distribution("weibull", "inverse_transform", (("shape", 1.0), ("scale", 1.0)), "`scale (-log u)^(1 / shape)`"),
)}
LATENT_DISTS = tuple(name for name, d in DISTRIBUTIONS.items() if d.door == "latent")
INVERSE_TRANSFORM_DISTS = {name: dict(d.options) for name, d in DISTRIBUTIONS.items() if d.door == "inverse_transform"}


def _options(door: str, dist: str, given: dict) -> Tuple[Distribution, dict]:
    """The distribution `dist` of `door` and its options: the given ones (None: not given) over the defaults. An
    option the distribution does not use is an error, never silently ignored (latent(dist="normal",
    truncation=0.7) would otherwise draw untruncated normals)."""
    names = [name for name, d in DISTRIBUTIONS.items() if d.door == door]
    if dist not in names:
        raise ValueError(f"dist must be one of {', '.join(map(repr, names))}, got {dist!r}")
    distribution = DISTRIBUTIONS[dist]
    accepted = dict(distribution.options)
    stray = [name for name, value in given.items() if value is not None and name not in accepted]
    if stray:
        users = {name: [d.name for d in DISTRIBUTIONS.values() if name in dict(d.options)] for name in stray}
        if door == "inverse_transform":
            raise TypeError(f"{dist} takes parameters {sorted(accepted)}, got unknown {sorted(stray)}")
        raise ValueError("; ".join(f"{name} applies to dist={users[name][0]!r} only" for name in stray)
                         + f", got dist={dist!r}")
    values = {name: (default if given.get(name) is None else _args.real(given[name], name))
              for name, default in distribution.options}
    return distribution, values


def random_bits(n: int, *, seed: int, offset: int = 0, stream: int = 0, device=None) -> torch.Tensor:
    """Words offset .. offset + n - 1 of stream (seed, stream): Philox4x32-10, as int64 tensors holding the
    unsigned 32-bit values (torch's uint32 lacks most operators). Seed 0, stream 0 starts
    6627e8d5 e169c58d bc57ac4c 9b00dbd8."""
    n, offset = _count(n, "n"), _args.offset(offset)
    _args.draw_range(offset, n, "random_bits")
    out = torch.empty(n, dtype=torch.int64, device=device)
    _fill_bits(out, _word64(seed, "seed"), offset, _word64(stream, "stream"))
    return out


def latent(
    n: int,
    dim: int,
    *,
    dist: str = "normal",
    seed: Optional[int] = None,
    offset: int = 0,
    stream: int = 0,
    truncation: Optional[float] = None,
    low: Optional[float] = None,
    high: Optional[float] = None,
    p: Optional[float] = None,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Latent noise [n, dim], rows offset .. offset + n - 1 of the draw made from row 0. One kernel launch.

    - ``normal``: N(0, 1).
    - ``uniform``: U[low, high) (default [0, 1)), low and high first rounded to ``dtype``. float16 and bfloat16 use
      the dtype's own 11 or 8 significand bits, as ``torch.rand`` does, so no draw rounds up to ``high``.
    - ``truncated_normal``: N(0, 1) conditioned on [-truncation, truncation], by inverse transform
      (``sqrt(2) erfinv((2u - 1) erf(t / sqrt(2)))``): no clipping, no rejection loop (BigGAN's truncation trick).
    - ``bernoulli``: 1 with probability ``p`` (default 0.5), else 0.
    - ``sphere``: uniform on the unit sphere S^(dim-1) (normal rows, normalised: three launches).

    An option that the distribution does not use (``truncation`` with ``normal``, say) raises. ``seed=None`` draws a
    seed from torch's default CPU generator, so ``torch.manual_seed`` makes it reproducible (in compiled code, give
    the seed). Element offset * dim + i of the stream is element i of the draw: rows past 2**63 / dim raise.
    """
    n, dim, offset = _count(n, "n"), _count(dim, "dim"), _args.offset(offset)
    distribution, options = _options("latent", dist, {"truncation": truncation, "low": low, "high": high, "p": p})
    name, a, b = distribution.params(options)
    dtype = _args.float_dtype(dtype)
    _args.draw_range(offset * dim, n * dim, f"latent(n={n}, dim={dim}, offset={offset})")
    out = torch.empty((n, dim), dtype=dtype, device=device)
    _fill_latent(out, name, a, b, _seed(seed), offset * dim, None, _word64(stream, "stream"))
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
    - ``weibull(shape=1, scale=1)``: ``scale (-log u)^(1 / shape)``
    """
    distribution, options = _options("inverse_transform", dist, params)
    name, a, b = distribution.params(options)
    n, offset = _count(n, "n"), _args.offset(offset)
    _args.draw_range(offset, n, f"inverse_transform(n={n}, offset={offset})")
    out = torch.empty(n, dtype=_args.float_dtype(dtype), device=device)
    _fill_latent(out, name, a, b, _seed(seed), offset, None, _word64(stream, "stream"))
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

    With ``edges`` ([bins + 1], non-decreasing), also returns values: u's position inside its bin, linearly
    interpolated between the bin's edges (the exact inverse of the piecewise-linear CDF).

    ``validate=True`` checks that rows are finite, non-negative, non-decreasing and of positive, finite total (and
    ``edges`` finite and non-decreasing), raising ValueError otherwise; on CUDA that costs a synchronisation, so pass
    ``validate=False`` in a hot loop. Without it, a row that breaks these gives meaningless (but in-range) indices.
    """
    _args.tensor(cdf, "cdf", dtypes=(torch.float32, torch.float64))
    if cdf.dim() not in (1, 2):
        raise ValueError(f"cdf must be a 1-D [bins] or 2-D [rows, bins] tensor, got shape {tuple(cdf.shape)}")
    n, offset = _count(n, "n"), _args.offset(offset)
    _args.draw_range(offset, n, f"sample_cdf(n={n}, offset={offset})")
    table = cdf.reshape(1, -1) if cdf.dim() == 1 else cdf
    if table.shape[1] == 0:
        raise ValueError("cdf has no bins")
    if edges is not None:
        _args.tensor(edges, "edges")
        if edges.shape != (table.shape[1] + 1,):
            raise ValueError(f"edges must have shape [bins + 1] = [{table.shape[1] + 1}], got {tuple(edges.shape)}")
        if edges.device != table.device:
            raise ValueError(f"edges must be on the device of cdf ({table.device}), got {edges.device}")
    if validate:
        name = "probs" if probs else "cdf"
        if not torch.isfinite(table).all():
            raise ValueError(f"{name} has non-finite entries")
        if (table < 0).any():
            raise ValueError("probs=True: probabilities must be >= 0" if probs else
                             "cdf entries are cumulative masses and must be >= 0 (pass probs=True for probabilities)")
    if probs:
        table = torch.cumsum(table, dim=1)
    if validate:
        if (table[:, 1:] < table[:, :-1]).any():
            raise ValueError("cdf rows must be non-decreasing (pass probs=True for probabilities)")
        if not torch.isfinite(table[:, -1]).all():
            raise ValueError(f"the probabilities of a row sum past the largest {table.dtype} (their cumulative sum "
                             f"overflows to inf); scale them down")
        if not (table[:, -1] > 0).all():
            raise ValueError("every cdf row needs a positive total mass")
        if edges is not None and not (torch.isfinite(edges).all() and (edges[1:] >= edges[:-1]).all()):
            raise ValueError("edges must be finite and non-decreasing")
    table = table.contiguous()
    seed, stream = _seed(seed), _word64(stream, "stream")
    out = torch.empty((table.shape[0], n), dtype=torch.int64, device=table.device)
    _sample_cdf(table, out, seed, offset, stream)
    indices = out[0] if cdf.dim() == 1 else out
    if edges is None:
        return indices
    words = torch.stack([random_bits(n, seed=seed, offset=offset, stream=_args.next_stream(stream, r),
                                     device=table.device)
                         for r in range(table.shape[0])]) if table.shape[0] else out.new_empty((0, n))
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
    on every replay. ``sampler.offset`` (a Python int, synchronising) tells the next row. A draw that would run past
    the stream's end (2**63 elements) is NaN: the position lives on the device, where a kernel cannot raise."""

    def __init__(self, dim: int, *, seed: Optional[int] = None, device=None, dist: str = "normal",
                 stream: int = 0, dtype: torch.dtype = torch.float32, truncation: Optional[float] = None,
                 low: Optional[float] = None, high: Optional[float] = None, p: Optional[float] = None,
                 offset: int = 0):
        if dist == "sphere":
            raise ValueError("LatentSampler draws one kernel's distributions; normalise 'normal' rows for 'sphere'")
        self.dim = _count(dim, "dim")
        device = torch.device(device) if device is not None else torch.device("cpu")
        if device.type == "cuda" and device.index is None:
            # Resolved now: the position tensor and every output must stay on one device, whichever is current
            # when the sampler is called later.
            device = torch.device("cuda", torch.cuda.current_device())
        self.dtype, self.device = _args.float_dtype(dtype), device
        distribution, options = _options("latent", dist, {"truncation": truncation, "low": low, "high": high, "p": p})
        self._name, self._a, self._b = distribution.params(options)
        self._seed, self._stream = _seed(seed), _word64(stream, "stream")
        offset = _args.offset(offset)
        _args.draw_range(offset * self.dim, 0, f"LatentSampler(dim={self.dim}, offset={offset})")
        self._position = torch.full((), offset * self.dim, dtype=torch.int64, device=self.device)
        # Check the parameters once, now, not at the first draw: an empty draw runs the op's checks.
        _fill_latent(torch.empty((0,), dtype=self.dtype, device=self.device), self._name, self._a, self._b,
                     self._seed, 0, None, self._stream)

    @property
    def offset(self) -> int:
        return int(self._position.item()) // max(self.dim, 1)

    def __call__(self, n: int) -> torch.Tensor:
        n = _count(n, "n")
        out = torch.empty((n, self.dim), dtype=self.dtype, device=self.device)
        _fill_latent(out, self._name, self._a, self._b, self._seed, 0, self._position, self._stream)
        self._position.add_(n * self.dim)
        return out

