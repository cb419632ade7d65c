"""Sampling with chains and with the discriminator: Metropolis-Hastings over parallel chains, the MH-GAN
independent chain (Turner et al., ICML 2019) and discriminator rejection sampling (Azadi et al., ICLR 2019).
Every uniform comes from fastgan's counter-based streams, so a run is reproducible from its seed on any device.

With D = sigmoid(logit) a discriminator trained to optimality, p_data(x) / p_g(x) = exp(logit(x)): the logits
are the log density ratio that both GAN samplers correct the generator with.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch

from . import _ext  # noqa: F401  (loads the ops)
from .sampling import _count, _seed, _word64, latent

_ops = torch.ops.fastgan
_mh_select = _ops.mh_select.default
_mh_accept = _ops.mh_accept_.default


def _check_finite(name: str, t: torch.Tensor) -> None:
    if not torch.isfinite(t).all():  # a device synchronisation on CUDA: validate=False skips it
        raise ValueError(f"{name} has non-finite entries")


def mh_gan_select(
    logits: torch.Tensor,
    *,
    seed: Optional[int] = None,
    init_logit: Optional[torch.Tensor] = None,
    offset: int = 0,
    stream: int = 0,
    validate: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """MH-GAN's selection: for C chains of K proposals (logits [C, K], float32/float64), the independent
    Metropolis-Hastings chain that accepts proposal k with probability min(1, exp(l_k - l_current)), scanned in one
    kernel. Starts at the initial state given by ``init_logit`` [C] (MH-GAN starts at a real sample) or at
    proposal 0. Returns (index [C] of each chain's final state, -1 for the initial state; moved [C], whether any
    proposal was accepted). Proposal k of chain c uses word offset + c K + k of stream (seed, stream)."""
    if validate:
        _check_finite("logits", logits)
        if init_logit is not None:
            _check_finite("init_logit", init_logit)
    return _mh_select(logits, init_logit, _seed(seed), _count(offset, "offset"), _word64(stream, "stream"))


def metropolis_hastings(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    steps: int,
    *,
    step_size: float,
    seed: Optional[int] = None,
    burn_in: int = 0,
    thin: int = 1,
    stream: int = 0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random-walk Metropolis-Hastings on C parallel chains: x0 [C, d], ``log_prob`` a vectorised callable
    [C, d] -> [C] (the unnormalised log target; -inf outside its support). Each step proposes
    x' = x + step_size N(0, I) (stream ``stream``, rows t C ..) and accepts with probability
    min(1, exp(log_prob(x') - log_prob(x))) in one fused kernel (uniforms from stream ``stream + 1``).

    Returns (samples [C, kept, d]: the states after steps burn_in, burn_in + thin, ...; acceptance rate [C])."""
    steps, burn_in, thin = _count(steps, "steps"), _count(burn_in, "burn_in"), _count(thin, "thin")
    if thin < 1:
        raise ValueError("thin must be >= 1")
    if not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    if x0.dim() != 2 or x0.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"x0 must be a float32/float64 [chains, d] tensor, got {x0.dtype} {tuple(x0.shape)}")
    seed, stream = _seed(seed), _word64(stream, "stream")
    chains, d = x0.shape
    x = x0.clone().contiguous()

    def evaluate(points: torch.Tensor) -> torch.Tensor:
        values = log_prob(points)
        if not isinstance(values, torch.Tensor) or values.shape != (chains,):
            shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"log_prob must return a [chains] = [{chains}] tensor, got {shape}")
        return values.to(x.dtype).contiguous()

    lp = evaluate(x)
    accepted = torch.zeros(chains, dtype=torch.int64, device=x.device)
    kept = []
    for t in range(steps):
        noise = latent(chains, d, seed=seed, offset=t * chains, stream=stream, device=x.device, dtype=x.dtype)
        proposal = torch.add(x, noise, alpha=step_size)
        _mh_accept(x, lp, proposal, evaluate(proposal), accepted, seed, t * chains, (stream + 1) % 2**64)
        if t >= burn_in and (t - burn_in) % thin == 0:
            kept.append(x.clone())
    samples = torch.stack(kept, dim=1) if kept else x.new_empty((chains, 0, d))
    return samples, accepted.to(x.dtype) / max(steps, 1)


def drs(
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
    Logits above max_logit are clamped to it (the paper's running maximum); non-finite logits raise."""
    _check_finite("logits", logits)
    shifted = torch.clamp(logits.double() - max_logit, max=0.0)
    f = shifted - torch.log(-torch.expm1(shifted - eps))  # log(1 - exp(z)) = log(-expm1(z)), z < 0
    if gamma is None:
        gamma = torch.quantile(f, 0.95).item() if f.numel() else 0.0
    f = f - gamma
    u = latent(logits.numel(), 1, dist="uniform", seed=seed, offset=offset, stream=stream, device=logits.device,
               dtype=torch.float64).view(logits.shape)
    return u <= torch.sigmoid(f), f.to(logits.dtype)


@torch.library.register_fake("fastgan::mh_select")
def _(logits, init_logit, seed, offset, stream):
    chains = logits.shape[0]
    return logits.new_empty((chains,), dtype=torch.int64), logits.new_empty((chains,), dtype=torch.bool)


@torch.library.register_fake("fastgan::mh_accept_")
def _(state, log_prob, proposal, proposal_log_prob, accepted, seed, offset, stream):
    return None
