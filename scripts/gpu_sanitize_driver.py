#!/usr/bin/env python3
"""Every CUDA kernel family launched once at small sizes, for compute-sanitizer (scripts/gpu_check.sh runs it under
memcheck and racecheck): the loss forward and backward, the samplers (fill, words, sample_cdf), MCMC (mh_step,
mh_select, accept_compact), the MMD forward and backward, and the gradient penalty's forward and backward.

Sizes are odd and small, so ragged tails and partial blocks run while the sanitizers stay quick; each family also
gets a size that needs several blocks (a grid-wide reduction's last-block ticket, a persistent grid's second trip).
--device simt runs the same launches on the SIMT emulator (the CUDA kernels on the CPU: what GPU_CHECK_DRY_RUN
uses to catch a broken driver without a GPU), --device cpu on the CPU kernels.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import torch

import fastgan
from fastgan import _simt


def launches(device: str):
    """(name, call) per kernel family; each call launches that family's kernels once or twice."""
    gen = torch.Generator().manual_seed(0)

    def randn(*shape, grad=False, dtype=torch.float32):
        return torch.randn(*shape, generator=gen, dtype=dtype).to(device).requires_grad_(grad)

    for n in (257, 70_001):  # one block; several blocks and the grid-sum ticket
        real, fake = randn(n, 1, grad=True), randn(n, 1, grad=True)
        yield f"losses forward+backward d_loss n={n}", lambda r=real, f=fake: fastgan.fused_gan_loss(r, f).backward()
        yield (f"losses forward+backward g_loss reduction=none n={n}",
               lambda f=fake: fastgan.fused_generator_loss(f, reduction="none").sum().backward())
    half = randn(1001, 1, grad=True, dtype=torch.float16) if device != "cpu" else None
    if half is not None:
        yield "losses forward+backward float16", lambda: fastgan.fused_generator_loss(half).backward()
    yield "fill (latent normal)", lambda: fastgan.latent(257, 3, seed=1, device=device)
    yield "fill (latent uniform float64)", lambda: fastgan.latent(33, 7, dist="uniform", seed=1, device=device,
                                                                   dtype=torch.float64)
    yield "fill (inverse_transform cauchy)", lambda: fastgan.inverse_transform(1001, "cauchy", seed=1, device=device)
    yield "words (random_bits)", lambda: fastgan.random_bits(1001, seed=1, offset=3, device=device)
    cdf = torch.rand(5, 17, generator=gen).cumsum(1).to(device)
    yield "sample_cdf", lambda: fastgan.sample_cdf(cdf, 101, seed=1)
    x0 = randn(1000, 2)
    yield "mh_step (metropolis_hastings, 3 steps)", lambda: fastgan.metropolis_hastings(
        lambda x: -0.5 * (x * x).sum(1), x0, 3, step_size=0.5, seed=1)
    logits = randn(37, 65)
    yield "mh_select (mh_gan_select)", lambda: fastgan.mh_gan_select(logits, seed=1)
    log_ratio = randn(100_003)
    yield "accept_compact", lambda: torch.ops.fastgan.accept_compact(log_ratio, 0, 0, 0)
    x, y = randn(70, 33, grad=True), randn(45, 33, grad=True)
    yield "mmd forward+backward rbf", lambda: fastgan.mmd(x, y).backward()
    yield "mmd forward+backward polynomial float64", lambda: fastgan.mmd(
        x.detach().double().requires_grad_(), y.detach().double().requires_grad_(), kernel="polynomial").backward()
    # the GEMM path (d >= 64): two row tiles of 40 (FASTGAN_MMD_GEMM_TILE), rbf in float32 and polynomial float64
    xg, yg = randn(70, 64, grad=True), randn(45, 64, grad=True)

    def gemm_mmd(kernel, dtype):
        os.environ.update(FASTGAN_MMD_GEMM_TILE="40")
        try:
            a, b = (t.detach().to(dtype).requires_grad_() for t in (xg, yg))
            fastgan.mmd(a, b, kernel=kernel).backward()
        finally:
            os.environ.pop("FASTGAN_MMD_GEMM_TILE")

    yield "mmd GEMM path rbf", lambda: gemm_mmd("rbf", torch.float32)
    yield "mmd GEMM path polynomial float64", lambda: gemm_mmd("polynomial", torch.float64)
    for b in (3, 300):
        grads = randn(b, 5, 7, grad=True)
        yield f"gradient_penalty forward+backward B={b}", lambda g=grads: fastgan.gradient_penalty(
            g, centre=1.0).backward()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "simt", "cpu"), default="cuda")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device (use --device simt or cpu off a GPU machine)")
    if args.device == "simt" and not _simt.available():
        parser.error("this build has no SIMT emulator (make build compiles it in)")
    context = _simt.emulated() if args.device == "simt" else contextlib.nullcontext()
    device = "cuda" if args.device == "cuda" else "cpu"
    count = 0
    with context:
        for name, call in launches(device):
            start = time.perf_counter()
            call()
            if device == "cuda":
                torch.cuda.synchronize()  # a kernel's fault surfaces here, next to its name
            print(f"ok  {name}  ({time.perf_counter() - start:.2f} s)", flush=True)
            count += 1
    print(f"{count} launches of every kernel family on {args.device}: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
