"""The loss ops on [n, 1] logits: fastgan against the eager reference and torch.compile of it, forward, backward and
both."""

from __future__ import annotations

import torch

import fastgan
from fastgan import reference
from benchmarks.report import impl_table, speedup_over_eager
from benchmarks.schema import measurement
from benchmarks.suites.base import Renamed, Suite, int_list, listed, names
from benchmarks.timing import cuda_peak_bytes, timer_for

LOSS_OPS = ("d_loss", "g_loss")
DEFAULT_SIZES = (64, 256, 4096, 65536, 4194304)
QUICK_SIZES = (256, 65536)


def loss_impls(op: str):
    """name -> loss function of (real, fake) for the op, as users write it, fastgan, and compiled."""
    if op == "d_loss":
        eager = lambda r, f: reference.gan_loss(r, f)  # noqa: E731
        fused = lambda r, f: fastgan.fused_gan_loss(r, f)  # noqa: E731
    else:
        eager = lambda r, f: reference.generator_loss(f)  # noqa: E731
        fused = lambda r, f: fastgan.fused_generator_loss(f)  # noqa: E731
    return {"fastgan": fused, "eager": eager, "compile": torch.compile(eager, dynamic=True)}


def bench_loss(op: str, size: int, device: str, min_run_time: float) -> list:
    time = timer_for(device)
    rows = []
    for impl, fn in loss_impls(op).items():
        real = torch.randn(size, 1, device=device, requires_grad=True)
        fake = torch.randn(size, 1, device=device, requires_grad=True)
        for _ in range(3):  # compile and warm up
            fn(real, fake).backward()
        retained = fn(real, fake)

        def fresh_grads(call):
            # as in a training step after optimizer.zero_grad() (set_to_none, torch's default): the gradients are
            # new tensors, not added into old ones (an extra pass over 3 n elements, the same for every side)
            def run():
                real.grad = fake.grad = None
                call()
            return run

        calls = {
            "forward": lambda: fn(real, fake),
            "backward": fresh_grads(lambda: retained.backward(retain_graph=True)),
            "full": fresh_grads(lambda: fn(real, fake).backward()),
        }
        for mode, call in calls.items():
            peak = {"peak_bytes": cuda_peak_bytes(call)} if device == "cuda" and mode == "full" else {}
            rows.append(measurement("ops", f"{op} n={size}", impl, device, mode, size=size,
                                    **time(call, min_run_time), **peak))
    return rows


def plot_ops(rows: list) -> list:
    """One panel per loss op: fastgan's and torch.compile's speed-up over eager (forward+backward) by size."""
    panels = []
    for op in LOSS_OPS:
        sizes = sorted({r["size"] for r in rows if r["case"].startswith(op + " ")})
        if not sizes:
            continue

        def draw(ax, op=op, sizes=sizes):
            for impl, style, label in (("fastgan", "o-", "fastgan"), ("compile", "s--", "torch.compile")):
                ax.plot(sizes, [speedup_over_eager(rows, f"{op} n={n}", impl) for n in sizes], style, label=label)
            ax.axhline(1.0, color="gray", lw=0.8)
            ax.set(xscale="log", xlabel="logits", ylabel="speed-up over eager (forward+backward)", title=op)
            ax.legend()
        panels.append(draw)
    return panels


def tasks(device: str, args) -> list:
    sizes = args.loss_sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    return [(op, n) for op in args.losses or LOSS_OPS for n in sizes]


def add_flags(group) -> None:
    group.add_argument("--losses", type=names(LOSS_OPS),
                       help=f"comma-separated loss ops (default: {listed(LOSS_OPS)})")
    group.add_argument("--loss-sizes", type=int_list, help="comma-separated logit counts n of the [n, 1] logits "
                       f"(default: {listed(DEFAULT_SIZES)}; --quick: {listed(QUICK_SIZES)})")
    group.add_argument("--sizes", type=int_list, dest="loss_sizes", action=Renamed, new="--loss-sizes")


SUITE = Suite("ops", tasks, lambda device, args, t, op, n: bench_loss(op, n, device, t),
              impl_table("Loss ops ([n, 1] logits)", "full: forward+backward."), plot_ops, add_flags)
