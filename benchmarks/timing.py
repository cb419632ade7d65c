"""How the suites measure: CPU timers at the process's thread count, CUDA events, interleaved rounds, peak memory,
and the yardsticks a table is read against (the copy_ bandwidth, the call overhead and autograd's floor)."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.utils.benchmark as benchmark

import fastgan


def time_cpu(fn, min_run_time: float, threads: int | None = None) -> dict:
    """At `threads` threads, by default the process's: torch.utils.benchmark.Timer itself defaults to one thread,
    which is not how anyone runs PyTorch."""
    threads = threads or torch.get_num_threads()
    m = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads).blocked_autorange(
        min_run_time=min_run_time)
    return {"median_s": m.median, "iqr_s": m.iqr, "repeats": len(m.times) * m.number_per_run, "threads": threads}


def quartiles(times: list) -> dict:
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return {"median_s": float(median), "iqr_s": float(q3 - q1), "repeats": len(times)}


def time_cuda(fn, min_run_time: float) -> dict:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    # calls per timed block: enough that one block takes ~10 ms, so event resolution does not matter
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    per_call = max(start.elapsed_time(end) / 1e3, 1e-6)
    inner = max(1, int(0.01 / per_call))
    times = []
    for _ in range(max(5, int(min_run_time / (per_call * inner)))):
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / inner)
    return {**quartiles(times), "repeats": len(times) * inner}


def timer_for(device: str):
    return time_cuda if device == "cuda" else time_cpu


def time_interleaved(calls: dict, device: str, min_run_time: float, rounds: int = 5) -> dict:
    """Times each call in interleaved rounds (A B C A B C ...), so that a machine's drift (frequency, other tenants)
    lands on every implementation alike: name -> median and IQR over the rounds' medians."""
    time = timer_for(device)
    per_round = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            per_round[name].append(time(call, min_run_time / rounds)["median_s"])
    return {name: quartiles(times) for name, times in per_round.items()}


def cuda_peak_bytes(call) -> int:
    """The memory one call allocates on the GPU at its peak, beyond what was allocated before it."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    call()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def memory_limit(device: str) -> int:
    """Where the full-matrix baselines stop: half the machine's memory on the CPU (beyond it the OS kills the run),
    the GPU's memory on CUDA (beyond it they cannot run)."""
    if device == "cpu":
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    return torch.cuda.get_device_properties(0).total_memory


def copy_bandwidth(t: torch.Tensor, min_run_time: float) -> float:
    """Bytes per second of a copy_ of t (one read and one write per byte): the yardstick of the kernel rows."""
    target = torch.empty_like(t)
    return 2 * t.nbytes / time_cuda(lambda: target.copy_(t), min_run_time)["median_s"]


def call_overhead(device: str, min_run_time: float) -> dict:
    """Python call to kernel launch: a fused D loss on one element, no autograd, against a trivial aten op."""
    x = torch.randn(1, device=device)
    time = timer_for(device)
    with torch.inference_mode():
        ours = time(lambda: fastgan.fused_gan_loss(x, x), min_run_time)
        neg = time(lambda: torch.neg(x), min_run_time)
    # The autograd engine's own floor for a D step: backward through the cheapest loss of two [256, 1] leaves.
    real = torch.randn(256, 1, device=device, requires_grad=True)
    fake = torch.randn(256, 1, device=device, requires_grad=True)
    floor = time(lambda: (real.sum() + fake.sum()).backward(), min_run_time)
    return {"fused_gan_loss_1_element_s": ours["median_s"], "torch_neg_1_element_s": neg["median_s"],
            "autograd_floor_256_s": floor["median_s"]}
