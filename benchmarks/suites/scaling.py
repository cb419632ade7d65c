"""CPU only: the large ops at 1 thread, the process's count and 4, 8, 16 below it, fastgan and the PyTorch way side
by side."""

from __future__ import annotations

import torch

from benchmarks.schema import format_time, measurement
from benchmarks.suites.base import Suite
from benchmarks.suites.mmd import mmd_impls
from benchmarks.suites.ops import loss_impls
from benchmarks.suites.samplers import sampler_impls
from benchmarks.timing import time_cpu


def scaling_cases(quick: bool) -> dict:
    """The large CPU ops (>= 1M elements, or MMD's 4096^2 pairs): name -> {impl: call}, fastgan and the PyTorch way
    side by side."""
    n, m, mmd_n = (1 << 20, 1 << 20, 1024) if quick else (1 << 22, 1 << 24, 4096)
    real, fake = (torch.randn(n, 1, requires_grad=True) for _ in range(2))
    losses = loss_impls("d_loss")
    return {
        f"d_loss fwd+bwd, n = {n}": {impl: lambda fn=losses[impl]: fn(real, fake).backward()
                                     for impl in ("fastgan", "eager")},
        f"normal, n = {m}": sampler_impls("normal", m, "cpu"),
        f"sample_cdf, n = {m}": sampler_impls("sample_cdf", m, "cpu"),
        f"mmd fwd+bwd, n = {mmd_n}, d = 64": mmd_impls(mmd_n, 64, "cpu"),
    }


def bench_scaling(quick: bool, min_run_time: float) -> list:
    """Each case at 1 thread, the process's count, and 4, 8, 16 where the machine has more."""
    available = torch.get_num_threads()
    rows = []
    for case, impls in scaling_cases(quick).items():
        for impl, call in impls.items():
            call()
            for threads in sorted({1, available} | {t for t in (4, 8, 16) if t < available}):
                rows.append(measurement("scaling", case, impl, "cpu", **time_cpu(call, min_run_time, threads)))
    return rows


def table_scaling(rows: list) -> list:
    threads = sorted({r["threads"] for r in rows})
    lines = ["## Thread scaling (CPU)", "",
             "Each large op at each thread count, fastgan and the PyTorch way side by side (eager reference; "
             "torch.randn, torch.multinomial, cdist MMD).", "",
             "| case | impl | " + " | ".join(f"{t} thr" for t in threads) + f" | 1 → {threads[-1]} speed-up |",
             "|---|---|" + "---:|" * (len(threads) + 1)]
    median = {(r["case"], r["impl"], r["threads"]): r["median_s"] for r in rows}
    for case, impl in dict.fromkeys((r["case"], r["impl"]) for r in rows):
        times = [median[(case, impl, t)] for t in threads]
        lines.append(f"| {case} | {impl} | " + " | ".join(format_time(t) for t in times) +
                     f" | {times[0] / times[-1]:.2f}x |")
    return lines + [""]


SUITE = Suite("scaling", lambda device, args: [()] if device == "cpu" else [],
              lambda device, args, t: bench_scaling(args.quick, t), table_scaling)
