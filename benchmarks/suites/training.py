"""Whole GAN training steps (one D step and one G step) of the setups in benchmarks/setups.py, with the losses
computed three ways; and how closely the DCGAN tutorial loop and its one-line fastgan swap agree."""

from __future__ import annotations

import re

import numpy as np

from benchmarks import setups
from benchmarks.report import impl_table, speedup_over_eager
from benchmarks.schema import measurement
from benchmarks.suites.base import Suite, listed, names
from benchmarks.timing import time_interleaved

SETUPS = ("ring256", "ring4096", "dcgan128", "tutorial128")
QUICK_SETUPS = ("ring256",)


def bench_training(setup: str, device: str, min_run_time: float, impls, rounds: int = 5) -> list:
    """Steps per second of each implementation, measured in interleaved rounds (A B C A B C ...), so that a
    machine's slow drift (frequency, other tenants) lands on every implementation alike; the median and IQR are
    over the rounds' medians."""
    batch = int(re.sub(r"\D", "", setup))
    trainers = {}
    for impl in impls:
        if setup.startswith("tutorial"):
            if impl == "compile":
                continue
            trainers[impl] = setups.make_tutorial_trainer(swap=impl == "fastgan", batch=batch, device=device)
        else:
            trainers[impl] = setups.make_trainer("ring" if setup.startswith("ring") else "dcgan", impl, batch, device)
        for _ in range(3):  # compile and warm up
            trainers[impl]()
    return [measurement("training", setup, impl, device, **t)
            for impl, t in time_interleaved(trainers, device, min_run_time, rounds).items()]


def tutorial_agreement(device: str, steps: int = 20) -> float:
    """Largest |loss difference| between the DCGAN tutorial loop and its one-line fastgan swap, same seed."""
    eager = setups.make_tutorial_trainer(False, 128, device)
    swapped = setups.make_tutorial_trainer(True, 128, device)
    worst = 0.0
    for _ in range(steps):
        for a, b in zip(eager(), swapped()):
            worst = max(worst, abs(a.item() - b.item()))
    return worst


def plot_training(rows: list) -> list:
    """One panel: each setup's whole-step speed-up over eager, per implementation."""

    def draw(ax):
        setups_seen = list(dict.fromkeys(r["case"] for r in rows))
        width = 0.27
        for k, impl in enumerate(setups.IMPLS):
            values = [speedup_over_eager(rows, setup, impl) for setup in setups_seen]
            ax.bar(np.arange(len(setups_seen)) + (k - 1) * width, np.nan_to_num(values), width, label=impl)
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xticks(np.arange(len(setups_seen)), setups_seen)
        ax.set(ylabel="training speed-up over eager", title="whole steps (D step + G step)")
        ax.legend()
    return [draw]


def tasks(device: str, args) -> list:
    return [(setup,) for setup in args.setups or (QUICK_SETUPS if args.quick else SETUPS)]


def run(device: str, args, min_run_time: float, setup: str) -> list:
    # 5 interleaved rounds of >= 0.8 s each: several steps even for the ~250 ms CPU DCGAN step
    impls = ("eager", "fastgan") if args.no_compile_training else setups.IMPLS
    return bench_training(setup, device, 0.4 if args.quick else 4.0, impls)


def meta(device: str, args, tasks: list) -> dict:
    if any(setup.startswith("tutorial") for (setup,) in tasks):
        return {"tutorial_max_loss_difference": tutorial_agreement(device)}
    return {}


def add_flags(group) -> None:
    group.add_argument("--setups", type=names(SETUPS), help="comma-separated training setups (default: "
                       f"{listed(SETUPS)}; --quick: {listed(QUICK_SETUPS)})")
    group.add_argument("--no-compile-training", action="store_true",
                       help="skip torch.compile in the training steps (its compilation dominates a CPU run)")


SUITE = Suite("training", tasks, run, impl_table("Training steps (one D step + one G step)"), plot_training,
              add_flags, meta)
