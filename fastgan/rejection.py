"""Acceptance-rejection sampling whose uniforms come from fastgan's counter-based streams: the generic sampler
(propose, test, compact the accepted indices in one kernel) and discriminator rejection sampling (DRS, Azadi et al.,
ICLR 2019), whose test ``drs_accept`` uses the discriminator's logits as the log density ratio p_data / p_g.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Optional, Tuple

import torch

from . import _args
from . import _ext  # noqa: F401  (loads the ops)
from ._args import nonnegative_int as _count, seed as _seed, word64 as _word64
from .sampling import latent

_accept_compact = torch.ops.fastgan.accept_compact.default


def drs_accept(
    logits: torch.Tensor,
    *,
    max_logit: float,
    gamma: Optional[float] = None,
    seed: Optional[int] = None,
    eps: float = 1e-6,
    offset: int = 0,
    stream: int = 0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Discriminator rejection sampling's acceptance test, in logit space (Azadi et al. 2019, eq. 8):
    ``F = logit - max_logit - log(1 - exp(logit - max_logit - eps)) - gamma``, accept when ``u <= sigmoid(F)``.
    ``gamma=None`` takes the batch's 95th percentile of F (the paper's choice). Returns (accept mask, F).
    Logits above max_logit are clamped to it (the paper's running maximum); non-finite logits raise. ``max_logit``
    and ``gamma`` must be finite, ``eps`` finite and > 0 (at eps <= 0 the log's argument reaches 0 or below)."""
    _args.tensor(logits, "logits", dtypes=_args.FLOAT_DTYPES)
    max_logit = _args.finite(max_logit, "max_logit")
    if gamma is not None:
        gamma = _args.finite(gamma, "gamma")
    eps = _args.finite(eps, "eps")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    _args.check_finite("logits", logits)
    shifted = torch.clamp(logits.double() - max_logit, max=0.0)
    f = shifted - torch.log(-torch.expm1(shifted - eps))  # log(1 - exp(z)) = log(-expm1(z)), z < 0
    if gamma is None:  # kept on the device: no synchronisation
        gamma = torch.quantile(f, 0.95) if f.numel() else 0.0
    f = f - gamma
    u = latent(logits.numel(), 1, dist="uniform", seed=seed, offset=offset, stream=stream, device=logits.device,
               dtype=torch.float64).view(logits.shape)
    return u <= torch.sigmoid(f), f.to(logits.dtype)


def drs(*args, **kwargs):
    """Deprecated name of :func:`drs_accept` (DRS's acceptance test), kept for one release: it was easy to take for
    an alias of the sampler, ``discriminator_rejection_sampling``."""
    warnings.warn("fastgan.drs is deprecated: it is DRS's acceptance test, now named fastgan.drs_accept (the sampler "
                  "is fastgan.discriminator_rejection_sampling)", DeprecationWarning, stacklevel=2)
    return drs_accept(*args, **kwargs)


def rejection_sample(
    log_target: Callable[[torch.Tensor], torch.Tensor],
    propose: Callable[[int], Tuple[torch.Tensor, torch.Tensor]],
    log_envelope: float,
    n: int,
    *,
    seed: Optional[int] = None,
    max_rounds: int = 100,
    stream: int = 0,
) -> Tuple[torch.Tensor, float]:
    """Acceptance-rejection sampling: ``propose(k)`` returns k proposals [k, ...] and their log-density under the
    proposal [k]; ``log_target`` maps proposals to the (unnormalised) log target [k]; ``log_envelope`` is log M with
    target <= M proposal. A proposal is accepted with probability exp(log_target - log_envelope - log_q): the test,
    on stream uniforms (proposal i of the run uses word i), and the compaction of the accepted indices are one
    kernel; the accepted rows are then gathered. Rounds are sized from the acceptance
    rate seen so far. Returns (exactly n samples, acceptance rate); raises after ``max_rounds`` rounds with the rate
    seen. A log ratio above 0 means the envelope does not bound the target there: that draws a warning.
    ``log_envelope`` is the number log M (a float), not a function. n = 0 returns ``propose(0)``'s empty samples and
    a NaN rate (no proposal was made)."""
    for name, fn in (("log_target", log_target), ("propose", propose)):
        if not callable(fn):
            raise TypeError(f"{name} must be a callable, got {type(fn).__name__}")
    log_envelope = _args.finite(log_envelope, "log_envelope (log M, a number)")
    n, max_rounds = _count(n, "n"), _args.positive_int(max_rounds, "max_rounds")
    seed, stream = _seed(seed), _word64(stream, "stream")
    if n == 0:
        empty, _ = propose(0)
        return empty[:0], math.nan
    accepted, got, proposed = [], 0, 0
    violated = None  # a device flag, read once at the end: the round's only sync is the compaction's count
    for _ in range(max_rounds):
        if got >= n:
            break
        need = n - got
        rate = got / proposed if got else None
        k = max(16, need * 2 if rate is None else math.ceil(1.2 * need / rate))
        x, log_q = propose(k)
        if not isinstance(x, torch.Tensor) or x.shape[:1] != (k,) or not isinstance(log_q, torch.Tensor) \
                or log_q.shape != (k,):
            raise ValueError(f"propose({k}) must return (samples [{k}, ...], log-densities [{k}])")
        log_t = log_target(x)
        if not isinstance(log_t, torch.Tensor) or log_t.shape != (k,):
            raise ValueError(f"log_target must return a [{k}] tensor for {k} proposals")
        log_ratio = (log_t - log_envelope - log_q).to(torch.float64 if log_t.dtype == torch.float64 else torch.float32)
        _args.draw_range(proposed, k, "rejection_sample")
        index, count = _accept_compact(log_ratio.contiguous(), seed, proposed, stream)
        exceeded = (log_ratio > 1e-6).any()
        violated = exceeded if violated is None else violated | exceeded
        accepted.append(x.index_select(0, index[:int(count)]))
        got += accepted[-1].shape[0]
        proposed += k
    if violated is not None and bool(violated):
        warnings.warn("rejection_sample: log_target - log_q exceeded log_envelope for some proposals; the samples "
                      "are biased there. Raise log_envelope.", RuntimeWarning, stacklevel=2)
    if got < n:
        raise RuntimeError(f"rejection_sample: {got} of {n} samples accepted after {max_rounds} rounds (acceptance "
                           f"rate {got / max(proposed, 1):.3g}); raise max_rounds or tighten log_envelope")
    return torch.cat(accepted)[:n], got / proposed


@torch.no_grad()
def discriminator_rejection_sampling(
    generator: Callable[[torch.Tensor], torch.Tensor],
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    latent_dim: int,
    *,
    seed: Optional[int] = None,
    batch: int = 4096,
    pilot: int = 10_000,
    gamma: Optional[float] = None,
    eps: float = 1e-6,
    max_rounds: int = 1000,
    device=None,
) -> Tuple[torch.Tensor, float]:
    """DRS (Azadi et al. 2019): estimate max_logit on a pilot batch of G(z), then draw batches, keep max_logit
    updated with every logit seen, and keep x = G(z) where ``drs_accept`` accepts. z ~ N(0, I) from fastgan's stream
    (stream 0 for the noise, 1 for the acceptance uniforms). Returns (n samples, acceptance rate); n = 0 returns
    G's output for no latents and a NaN rate."""
    n, latent_dim, seed = _count(n, "n"), _count(latent_dim, "latent_dim"), _seed(seed)
    batch, pilot = _args.positive_int(batch, "batch"), _args.positive_int(pilot, "pilot")
    max_rounds = _args.positive_int(max_rounds, "max_rounds")
    if gamma is not None:
        gamma = _args.finite(gamma, "gamma")
    if not _args.finite(eps, "eps") > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if n == 0:
        return generator(latent(0, latent_dim, seed=seed, device=device)), math.nan
    rows = 0

    def draw(k):
        nonlocal rows
        z = latent(k, latent_dim, seed=seed, offset=rows, device=device)
        rows += k
        x = generator(z)
        return x, _args.logits_of(discriminator, x)

    _, pilot_logits = draw(pilot)
    max_logit = pilot_logits.max().item()
    kept, got, proposed = [], 0, 0
    for _ in range(max_rounds):
        if got >= n:
            break
        x, logits = draw(batch)
        max_logit = max(max_logit, logits.max().item())
        accept, _ = drs_accept(logits, max_logit=max_logit, gamma=gamma, seed=seed, eps=eps, offset=proposed, stream=1)
        kept.append(x[accept])
        got += kept[-1].shape[0]
        proposed += batch
    if got < n:
        raise RuntimeError(f"discriminator_rejection_sampling: {got} of {n} accepted after {max_rounds} batches")
    return torch.cat(kept)[:n], got / proposed


@torch.library.register_fake("fastgan::accept_compact")
def _(log_ratio, seed, offset, stream):
    return log_ratio.new_empty((log_ratio.numel(),), dtype=torch.int64), log_ratio.new_empty((), dtype=torch.int64)
