"""Gradient penalties through a real discriminator: one penalty step (D's forward on the penalised points, the input
gradient with create_graph=True, the penalty, and its backward into D's parameters, the double backward) with the
penalty computed three ways: fastgan (r1_penalty, wgan_gp), the hand-written eager way, and torch.compile of it."""

from __future__ import annotations

import re

import torch

import fastgan
from benchmarks import setups
from benchmarks.report import impl_table
from benchmarks.schema import measurement
from benchmarks.suites.base import Suite, listed, names
from benchmarks.timing import time_interleaved

PENALTIES = ("r1", "wgan_gp")
# the D of a training setup (benchmarks/setups.py) and the batch: the ring's MLP D on [B, 2], the DCGAN D on the
# [B, 1, 32, 32] digits
DISCRIMINATORS = ("ring256", "dcgan128")
QUICK_DISCRIMINATORS = ("ring256",)
GAMMA = 10.0  # R1's gamma (the penalty is gamma / 2 * E |grad|^2) and WGAN-GP's weight


def r1_formula(grads):
    """R1 as it is written by hand, on D's input gradient: its square summed over every non-batch dim, the batch
    mean, times gamma / 2."""
    return GAMMA / 2 * grads.pow(2).sum(dim=tuple(range(1, grads.dim()))).mean()


def gp_formula(grads):
    """WGAN-GP's term as it is written by hand: weight * E (|grad|_2 - 1)^2, the norm over each sample."""
    return GAMMA * (grads.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def interpolate(real, fake):
    """WGAN-GP's points as they are written by hand: one eps ~ U[0, 1) per sample, eps real + (1 - eps) fake."""
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    return eps * real.detach() + (1 - eps) * fake.detach()


def hand_written(r1, gp, interp):
    """(R1, WGAN-GP) written by hand (Gulrajani et al. 2017, Mescheder et al. 2018) from these formulas: D's input
    gradient by torch.autograd.grad(create_graph=True), then the formula on it."""

    def r1_penalty(discriminator, real):
        real = real.detach().requires_grad_()
        (grads,) = torch.autograd.grad(discriminator(real).sum(), real, create_graph=True)
        return r1(grads)

    def wgan_gp(discriminator, real, fake):
        x_hat = interp(real, fake).requires_grad_()
        (grads,) = torch.autograd.grad(discriminator(x_hat).sum(), x_hat, create_graph=True)
        return gp(grads)

    return r1_penalty, wgan_gp


eager_r1, eager_wgan_gp = hand_written(r1_formula, gp_formula, interpolate)


def compiled():
    """torch.compile of the hand-written penalties. Not the whole function: compiled, D's forward runs through
    AOTAutograd, whose backward has no double backward ("torch.compile with aot_autograd does not currently support
    double backward", torch 2.13), so the penalty's backward fails. What compiles is everything around D: the
    interpolation and the penalty's formula on the input gradient (first order in it), D and the input gradient
    staying eager."""
    return hand_written(torch.compile(r1_formula), torch.compile(gp_formula), torch.compile(interpolate))


def fastgan_r1(discriminator, real):
    real = real.detach().requires_grad_()
    return fastgan.r1_penalty(discriminator(real), real, gamma=GAMMA)


def fastgan_wgan_gp(discriminator, real, fake):
    return fastgan.wgan_gp(discriminator, real, fake, weight=GAMMA)


def make_discriminator(case: str, device: str):
    """(D, draw() -> a [B, ...] batch of D's inputs) of a setup: the models of benchmarks/setups.py, seed 0."""
    batch = int(re.sub(r"\D", "", case))
    torch.manual_seed(0)
    if case.startswith("ring"):
        _, discriminator = setups.mlp_gan()
        centres = setups.ring_centres(device=device)
        return discriminator.to(device), lambda: setups.ring_batch(batch, centres)
    _, discriminator = setups.dcgan()
    data = setups.digits_32x32(device)
    return discriminator.to(device), lambda: data[torch.randint(len(data), (batch,), device=device)]


def bench_penalty(penalty: str, case: str, device: str, min_run_time: float, rounds: int = 5) -> list:
    """One penalty step per call, each implementation on its own copy of D (the same initial weights), timed in
    interleaved rounds. torch.compile's D cannot be differentiated twice, so "compile" compiles the hand-written
    formulas around D (see compiled())."""
    index = PENALTIES.index(penalty)
    fns = {"eager": (eager_r1, eager_wgan_gp)[index], "fastgan": (fastgan_r1, fastgan_wgan_gp)[index],
           "compile": compiled()[index]}
    calls = {}
    for impl, fn in fns.items():
        discriminator, draw = make_discriminator(case, device)
        fake = draw() + 0.1 * torch.randn_like(draw())  # the penalty's "fake" points: near the data, not on it

        def step(fn=fn, discriminator=discriminator, draw=draw, fake=fake):
            discriminator.zero_grad(set_to_none=True)
            loss = fn(discriminator, draw()) if penalty == "r1" else fn(discriminator, draw(), fake)
            loss.backward()
            return loss

        for _ in range(3):  # compile and warm up
            step()
        calls[impl] = step
    return [measurement("penalties", f"{penalty} {case}", impl, device, **t)
            for impl, t in time_interleaved(calls, device, min_run_time, rounds).items()]


def tasks(device: str, args) -> list:
    return [(penalty, case) for penalty in args.penalties or PENALTIES
            for case in args.penalty_setups or (QUICK_DISCRIMINATORS if args.quick else DISCRIMINATORS)]


def run(device: str, args, min_run_time: float, penalty: str, case: str) -> list:
    # 5 interleaved rounds of >= 0.4 s each: several steps even for the DCGAN D's double backward on the CPU
    return bench_penalty(penalty, case, device, 0.4 if args.quick else 2.0)


def add_flags(group) -> None:
    group.add_argument("--penalties", type=names(PENALTIES),
                       help=f"comma-separated gradient penalties (default: {listed(PENALTIES)})")
    group.add_argument("--penalty-setups", type=names(DISCRIMINATORS), help="comma-separated discriminators and "
                       f"batches (default: {listed(DISCRIMINATORS)}; --quick: {listed(QUICK_DISCRIMINATORS)})")


SUITE = Suite("penalties", tasks, run,
              impl_table("Gradient penalties (one step: D forward, input gradient, penalty, double backward)",
                         f"r1: gamma = {GAMMA:g} on real samples; wgan_gp: weight {GAMMA:g} at per-sample "
                         "interpolates. ring256: the ring's MLP D, batch 256; dcgan128: the DCGAN D, batch 128."),
              None, add_flags)
