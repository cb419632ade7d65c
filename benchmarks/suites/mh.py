"""Metropolis-Hastings in 2-D (50 steps per call) on a cheap and a mixture target, and MH-GAN's selection of k
proposals per chain: fastgan against the torch loops of fastgan.reference, the target alone as the floor."""

from __future__ import annotations

import torch

import fastgan
from fastgan import reference
from benchmarks import setups
from benchmarks.report import impl_table
from benchmarks.schema import measurement
from benchmarks.suites.base import Suite
from benchmarks.timing import time_interleaved


def ring_log_prob(x: torch.Tensor) -> torch.Tensor:
    """The 2-D target of the MH benchmark: 8 Gaussians (std 0.3) on the unit circle, unnormalised."""
    centres = setups.ring_centres(8, device=x.device).to(x.dtype)
    return torch.logsumexp(-((x[:, None, :] - centres) ** 2).sum(-1) / (2 * 0.09), dim=1)


def gaussian_log_prob(x: torch.Tensor) -> torch.Tensor:
    """The cheap target: N(0, I), unnormalised; most of a step is then the sampler's own work."""
    return -0.5 * (x * x).sum(1)


MH_TARGETS = {"gaussian": gaussian_log_prob, "ring8": ring_log_prob}


def bench_mh(chains: int, target: str, device: str, min_run_time: float, steps: int = 50) -> list:
    """Random-walk MH on `chains` 2-D chains, `steps` steps per call, the same target callable for both: fastgan
    (one fused kernel per step besides log_prob) vs the straightforward torch loop
    (fastgan.reference.metropolis_hastings); and the target's log_prob alone, called as often (steps + 1 times):
    the floor neither can go below."""
    log_prob = MH_TARGETS[target]
    x0 = torch.randn(chains, 2, device=device)
    impls = {
        "fastgan": lambda: fastgan.metropolis_hastings(log_prob, x0, steps, step_size=0.5, seed=0, burn_in=steps - 1),
        "eager": lambda: reference.metropolis_hastings(log_prob, x0, steps, 0.5),
        "log_prob": lambda: [log_prob(x0) for _ in range(steps + 1)],
    }
    if device == "cuda":  # a call captures one step (its cost included) and replays it `steps` times
        impls["fastgan (CUDA graph)"] = lambda: fastgan.metropolis_hastings(
            log_prob, x0, steps, step_size=0.5, seed=0, burn_in=steps - 1, cuda_graph=True)
    return chain_rows(impls, f"{target} chains={chains}", steps, device, min_run_time)


def chain_rows(impls: dict, case: str, steps: int, device: str, min_run_time: float) -> list:
    """The MH suite's rows: each implementation timed side by side in 9 interleaved rounds after a warm-up call."""
    for call in impls.values():
        call()
    return [measurement("mh", case, impl, device, **t, steps=steps)
            for impl, t in time_interleaved(impls, device, 3 * min_run_time, rounds=9).items()]


def bench_mh_gan(chains: int, k: int, device: str, min_run_time: float) -> list:
    """MH-GAN's selection over `chains` chains of k proposals (its default 256 x 640, from a real sample's logit):
    fastgan's one kernel vs the torch loop over proposals (fastgan.reference.mh_gan_select, its uniforms drawn by
    torch.rand)."""
    logits = torch.randn(chains, k, device=device)
    init = torch.randn(chains, device=device)
    impls = {"fastgan": lambda: fastgan.mh_gan_select(logits, seed=0, init_logit=init),
             "eager": lambda: reference.mh_gan_select(logits, torch.rand(chains, k, device=device).log(), init)}
    return chain_rows(impls, f"MH-GAN selection chains={chains} k={k}", k, device, min_run_time)


def tasks(device: str, args) -> list:
    """(bench function, its leading arguments): MH on each target, then MH-GAN's selection of 640 proposals."""
    chains = (4096,) if args.quick else (4096, 65536)
    return ([(bench_mh, n, target) for target in MH_TARGETS for n in chains] +
            [(bench_mh_gan, n, 640) for n in ((256,) if args.quick else (256, 4096))])


SUITE = Suite("mh", tasks, lambda device, args, t, bench, *task: bench(*task, device, t), impl_table(
    "Metropolis-Hastings (2-D, 50 steps per call) and MH-GAN's selection (k proposals per chain)",
    "The same target callable for both; `log_prob` is the target alone, called as often: the floor of both. "
    "The MH-GAN torch loop draws its uniforms with torch.rand."))
