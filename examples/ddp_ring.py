#!/usr/bin/env python
"""Train a GAN on the 8-Gaussian ring across processes with DistributedDataParallel: fastgan's fused losses, R1
every few steps, each rank drawing its slice of the global batch from fastgan's streams, and the evaluation's
metrics gathered from every rank (docs/distributed.md).

    python examples/ddp_ring.py                                   # one process (world size 1, no process group)
    torchrun --nproc_per_node 2 examples/ddp_ring.py              # two processes on this machine
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 --rdzv_id ring \\
        examples/ddp_ring.py                                      # the same on every node

Backend: NCCL when the device is CUDA (rank r uses cuda:LOCAL_RANK), gloo on the CPU.

Seeds and streams: --seed s fixes the whole run, for any world size. The models are initialised from
torch.manual_seed(s) on the CPU (then moved; DDP also broadcasts rank 0's parameters). Every sampled number comes
from fastgan's counter-based streams of seed s, one stream per purpose:

    training latents     fastgan.latent(seed=s, stream=0)                rows step * B + rank * b .. + b - 1
    training data        fastgan.toy.ring(seed=s, stream=2) (2 and 3)    the same rows
    evaluation latents   fastgan.latent(seed=s, stream=4)                rows rank * n .. + n - 1
    evaluation data      fastgan.toy.ring(seed=s, stream=6) (6 and 7)    the same rows

with B = --global-batch, b = B / world size, n = --eval-samples / world size. So the ranks together draw exactly
the rows one process draws for the global batch, whatever the world size. The D step reuses the step's latents
for the G step (one G forward per step, as in PyTorch's DCGAN tutorial).

--record DIR writes DIR/rank<r>.json: per step the global losses, this rank's latents and data rows, D's and G's
parameters after the step and their gradients (as reduced across ranks); then the evaluation's samples and
metrics. --fail-rank/--fail-step make one rank raise (or hang, --fail-mode hang) after a step, to see how a job
ends when a rank fails: every rank reports the first failure and exits non-zero (see report_failure).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Optional

import warnings

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel

import fastgan
from fastgan.metrics import GANMetrics, gather_rows, mode_coverage

STD = 0.01  # the ring's mode standard deviation (PacGAN's setting)
# R1's double backward hands the output layer's weight ([1, hidden]) its gradient as a transposed [hidden, 1]
# (strides [1, 1]); DDP copies it into its bucket rather than reducing it in place, for one row a negligible cost,
# and warns once that this "is not an error, but may impair performance".
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
LATENT_STREAM, REAL_STREAM, EVAL_LATENT_STREAM, EVAL_REAL_STREAM = 0, 2, 4, 6  # toy.ring uses stream and stream + 1


def mlp(inputs: int, outputs: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, outputs))


def build_models(args) -> tuple[nn.Module, nn.Module]:
    """G and D as every world size initialises them (CPU generator, then moved to the device by the caller)."""
    torch.manual_seed(args.seed)
    return mlp(args.latent, 2, args.hidden), mlp(2, 1, args.hidden)


def draw_batch(args, step: int, rank: int, rows: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's latents and real samples of step `step`: rows step * B + rank * rows of the streams."""
    offset = step * args.global_batch + rank * rows
    z = fastgan.latent(rows, args.latent, seed=args.seed, stream=LATENT_STREAM, offset=offset, device=device)
    real, _ = fastgan.toy.ring(rows, std=STD, seed=args.seed, stream=REAL_STREAM, offset=offset, device=device)
    return z, real


def discriminator_loss(D, real: torch.Tensor, fake: torch.Tensor, *, r1: bool, gamma: float,
                       interval: int) -> torch.Tensor:
    """D's loss on a batch: the fused BCE on the real and the fake logits, and on an R1 step the penalty on the real
    half (lazy: weighted by the interval, fastgan.r1_penalty's `interval`).

    R1 under DDP: D is called through its DistributedDataParallel wrapper once, on real and fake together, and the
    penalty's input gradient is an autograd.grad with respect to `real` only (create_graph=True). That pass reaches
    no parameter's AccumulateGrad node, so none of DDP's gradient hooks fire in it. The caller's single
    loss.backward() then reaches each parameter's AccumulateGrad once, with the first-order term and the penalty's
    double-backward term already summed by the autograd engine, so each hook fires once, with the whole gradient,
    and DDP averages that. Hence DDP's defaults (find_unused_parameters=False, static_graph=False), on purpose:
    static_graph=True routes the output through DDP's _DDPSink, whose backward queues the delayed all-reduce on the
    first backward pass that crosses it, and on the first step that pass is the penalty's autograd.grad, before any
    gradient exists (tried with 2 gloo ranks: the ranks' gradients then differed from each other and from the mean
    of their shards' gradients, silently). tests/test_ddp.py checks that the reduced gradient of every step, R1
    steps included, is bit for bit the mean of the shards' gradients computed in one process."""
    if r1:
        real = real.detach().requires_grad_()
    logits = D(torch.cat([real, fake.detach()]))
    real_logits, fake_logits = logits[: len(real)], logits[len(real):]
    loss = fastgan.fused_gan_loss(real_logits, fake_logits)
    if r1:
        loss = loss + fastgan.r1_penalty(real_logits, real, gamma=gamma, interval=interval)
    return loss


# ---- processes ----

@dataclass
class Job:
    """Where this process stands: rank, world size, device; the training process group and a key/value store
    shared by the ranks (both None in a single process without torchrun)."""

    rank: int
    world: int
    device: torch.device
    group: Optional[dist.ProcessGroup] = None
    store: Optional[dist.Store] = None


def start(args) -> Job:
    """Joins the job that torchrun describes in the environment, or runs alone without it.

    Two timeouts: ranks start at different times (imports, nodes booting), so the start waits --init-timeout; once
    training, a rank that stops answering (crashed without closing its sockets, hung, its node gone) must end the
    job in --timeout, so the training collectives run in a group of their own with that timeout."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if "WORLD_SIZE" not in os.environ:
        return Job(0, 1, device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    init_timeout = timedelta(seconds=args.init_timeout)
    store, rank, world = next(dist.rendezvous("env://", timeout=init_timeout))
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=init_timeout)
    group = dist.new_group(timeout=timedelta(seconds=args.timeout))
    return Job(rank, world, device, group, dist.PrefixStore("ddp_ring", store))


class Terminated(Exception):
    """SIGTERM, which torchrun sends to the other ranks when one fails."""


def _terminated(signum, frame):
    raise Terminated("stopped by SIGTERM from the launcher")


def report_failure(job: Job, where: str, error: BaseException) -> bool:
    """Prints, on this rank's stderr, which rank failed first and why, and returns whether it was this one.

    The first rank to fail writes its reason to the job's store (compare_set: the first writer wins). A rank that
    fails because of it (a collective that lost its peer or timed out, or torchrun's SIGTERM) then names that root
    cause rather than only its own symptom, "Connection closed by peer"."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the launcher's SIGTERM must not cut this report short
    own = str(error).strip().splitlines()
    mine = f"rank {job.rank} failed {where}: {type(error).__name__}: {own[0] if own else ''}"
    first = mine
    if job.store is not None:
        try:
            first = job.store.compare_set("first_failure", "", mine).decode()
        except Exception as store_error:  # the store's host (torchrun's agent or rank 0) is gone
            mine += f" (the job's store did not answer: {type(store_error).__name__})"
            first = mine
    if first == mine:
        print(f"ddp_ring: {mine}", file=sys.stderr, flush=True)
        return True
    print(f"ddp_ring: rank {job.rank} stopped {where} because {first}. Here: {type(error).__name__}: "
          f"{own[0] if own else ''}", file=sys.stderr, flush=True)
    return False


# ---- training ----

def flat(tensors) -> list:
    return torch.cat([t.detach().flatten() for t in tensors]).cpu().tolist()


def global_mean(value: torch.Tensor, job: Job) -> float:
    """The mean over ranks of a per-rank mean: the global batch's mean, as every rank draws the same count."""
    value = value.detach().clone()
    if job.group is not None:
        dist.all_reduce(value, group=job.group)
    return float(value) / job.world


def train(args, job: Job, progress: dict) -> dict:
    if args.global_batch % job.world or args.eval_samples % job.world:
        raise ValueError(f"--global-batch {args.global_batch} and --eval-samples {args.eval_samples} must be "
                         f"multiples of the world size {job.world}")
    rows = args.global_batch // job.world
    G, D = (m.to(job.device) for m in build_models(args))
    d_module = D
    if job.group is not None:
        ids = [job.device.index] if job.device.type == "cuda" else None
        G = DistributedDataParallel(G, device_ids=ids, process_group=job.group)
        D = DistributedDataParallel(D, device_ids=ids, process_group=job.group)
        d_module = D.module
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.999))
    steps = []
    for step in range(args.steps):
        progress["where"] = f"at step {step}"
        z, real = draw_batch(args, step, job.rank, rows, job.device)
        fake = G(z)
        r1 = step % args.r1_interval == 0
        d_loss = discriminator_loss(D, real, fake, r1=r1, gamma=args.r1_gamma, interval=args.r1_interval)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        d_grads = [p.grad.clone() for p in D.parameters()] if args.record else None
        opt_d.step()
        # G's step goes through the unwrapped D with its parameters frozen: D's gradients are neither computed nor
        # all-reduced here, and D's DDP reducer, which expects every parameter's gradient after a forward through
        # the wrapper, is not engaged.
        d_module.requires_grad_(False)
        g_loss = fastgan.fused_generator_loss(d_module(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d_module.requires_grad_(True)

        if args.record or step % args.log_every == 0 or step == args.steps - 1:
            losses = {"d_loss": global_mean(d_loss, job), "g_loss": global_mean(g_loss, job)}
            if job.rank == 0 and (step % args.log_every == 0 or step == args.steps - 1):
                print(f"step {step:5d}  D loss {losses['d_loss']:.4f}  G loss {losses['g_loss']:.4f}", flush=True)
            if args.record:
                steps.append({"step": step, "r1": r1, **losses, "latents": z.cpu().tolist(),
                              "real": real.cpu().tolist(), "d_params": flat(D.parameters()),
                              "g_params": flat(G.parameters()), "d_grads": flat(d_grads),
                              "g_grads": flat(p.grad for p in G.parameters())})
        if job.rank == args.fail_rank and step == args.fail_step:
            if args.fail_mode == "raise":
                raise RuntimeError(f"injected failure after step {step} (--fail-rank {args.fail_rank} "
                                   f"--fail-step {args.fail_step})")
            while True:  # a rank that hangs: alive, its sockets open, never joining the next collective
                time.sleep(1)
    progress["where"] = "in the evaluation"
    return {"steps": steps, **evaluate(G.module if job.group is not None else G, args, job)}


def evaluate(G: nn.Module, args, job: Job) -> dict:
    """Metrics of --eval-samples generated samples against as many real ones, each rank drawing its slice; the
    features are the 2-D samples themselves. Every rank gets the metrics of all ranks' samples."""
    rows = args.eval_samples // job.world
    offset = job.rank * rows
    z = fastgan.latent(rows, args.latent, seed=args.seed, stream=EVAL_LATENT_STREAM, offset=offset,
                       device=job.device)
    with torch.no_grad():
        fake = G(z)
    real, centres = fastgan.toy.ring(rows, std=STD, seed=args.seed, stream=EVAL_REAL_STREAM, offset=offset,
                                     device=job.device)
    evaluator = GANMetrics()
    evaluator.update(real, real=True)
    evaluator.update(fake, real=False)
    metrics = evaluator.compute()  # gathers every rank's features
    coverage = mode_coverage(gather_rows(fake), centres, STD)
    samples = {f"eval_{name}": t.cpu().tolist() for name, t in (("latents", z), ("real", real), ("fake", fake))}
    return {"metrics": metrics, "mode_coverage": coverage, **(samples if args.record else {})}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--global-batch", type=int, default=256, help="rows per step over all ranks")
    parser.add_argument("--latent", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--r1-gamma", type=float, default=0.1)
    parser.add_argument("--r1-interval", type=int, default=4, help="R1 every k steps, weighted by k (lazy)")
    parser.add_argument("--eval-samples", type=int, default=4096, help="over all ranks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds a training collective waits for a silent rank before the job fails")
    parser.add_argument("--init-timeout", type=float, default=600.0, help="seconds the ranks wait for each other "
                        "at the start")
    parser.add_argument("--log-every", type=int, default=200)
    parser.add_argument("--record", metavar="DIR", help="write DIR/rank<r>.json (see above)")
    parser.add_argument("--fail-rank", type=int, default=-1, help="this rank fails after --fail-step")
    parser.add_argument("--fail-step", type=int, default=0)
    parser.add_argument("--fail-mode", choices=("raise", "hang"), default="raise")
    args = parser.parse_args(argv)
    if args.steps < 0 or args.global_batch < 1 or args.eval_samples < 1 or args.r1_interval < 1:
        parser.error("--steps >= 0, --global-batch, --eval-samples and --r1-interval >= 1")
    return args


@record
def main(argv=None) -> dict:
    args = parse(argv)
    job = start(args)
    progress = {"where": "at the start"}
    if job.group is not None:
        signal.signal(signal.SIGTERM, _terminated)
    try:
        result = train(args, job, progress)
    except BaseException as error:
        if job.group is None or report_failure(job, progress["where"], error):
            raise  # the root cause: its traceback, and torchrun's error file through @record
        sys.exit(1)
    if job.rank == 0:
        coverage = result["mode_coverage"]
        print(f"modes {coverage['modes']}/{coverage['num_modes']}  high quality {coverage['high_quality']:.1%}  "
              f"reverse KL {coverage['reverse_kl']:.3f}  "
              + "  ".join(f"{name} {value:.4g}" for name, value in result["metrics"].items()), flush=True)
    if args.record:
        Path(args.record).mkdir(parents=True, exist_ok=True)
        payload = {"rank": job.rank, "world_size": job.world, **result}
        (Path(args.record) / f"rank{job.rank}.json").write_text(json.dumps(payload))
    if job.group is not None:
        dist.destroy_process_group()
    return result


if __name__ == "__main__":
    main()
