#!/usr/bin/env python
"""fastgan against pure PyTorch, measured on this machine: every op (fastgan vs the eager reference vs
torch.compile of that reference; forward, backward, forward+backward) and whole GAN training steps.

    python benchmarks/run.py                   # everything this machine can run (CPU, and CUDA when present)
    python benchmarks/run.py --quick           # fewer sizes, shorter timing: under a minute on 2 CPU cores
    python benchmarks/run.py --device cpu --ops d_loss,g_loss --sizes 256,4194304 --output /tmp/results

Writes <output>/<device>.json (schema: benchmarks/README.md), <device>.md and <device>.png, and prints the tables.
Timing: torch.utils.benchmark on the CPU, CUDA events on the GPU; medians and interquartile ranges over many
repeats after warm-up; inputs drawn fresh from N(0, 1).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
import time as time_module
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.utils.benchmark as benchmark
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastgan  # noqa: E402
from fastgan import reference  # noqa: E402
from benchmarks import setups  # noqa: E402
from benchmarks.schema import SUITES  # noqa: E402

SCHEMA_VERSION = 1
LOSS_OPS = ("d_loss", "g_loss")
TRAINING = ("ring256", "ring4096", "dcgan128", "tutorial128")
SAMPLERS = ("normal", "uniform", "truncated_normal", "sample_cdf")
ALL_OPS = LOSS_OPS + SAMPLERS + ("mmd", "mh", "metrics") + TRAINING + ("scaling",)  # scaling: the CPU thread-scaling section
MMD_SIZES = {"cpu": (1024, 4096), "cuda": (1024, 4096, 16384, 65536)}
MMD_DIMS = {"cpu": (2, 64), "cuda": (2, 64, 128)}
SAMPLER_SIZES = (4096, 262144, 16777216, 67108864)
QUICK_SAMPLER_SIZES = (4096, 1048576)
DEFAULT_SIZES = (64, 256, 4096, 65536, 4194304)
QUICK_SIZES = (256, 65536)
MODES = ("forward", "backward", "full")


# ---- timing ----


def time_cpu(fn, min_run_time: float, threads: int | None = None) -> dict:
    """At `threads` threads, by default the process's: torch.utils.benchmark.Timer itself defaults to one thread,
    which is not how anyone runs PyTorch."""
    threads = threads or torch.get_num_threads()
    m = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads).blocked_autorange(
        min_run_time=min_run_time)
    return {"median_s": m.median, "iqr_s": m.iqr, "repeats": len(m.times) * m.number_per_run, "threads": threads}


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
    blocks = max(5, int(min_run_time / (per_call * inner)))
    times = []
    for _ in range(blocks):
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / inner)
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return {"median_s": float(median), "iqr_s": float(q3 - q1), "repeats": blocks * inner}


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
    result = {}
    for name, times in per_round.items():
        q1, median, q3 = np.percentile(times, [25, 50, 75])
        result[name] = {"median_s": float(median), "iqr_s": float(q3 - q1), "repeats": rounds}
    return result


# ---- the loss ops ----


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
        calls = {
            "forward": lambda: fn(real, fake),
            "backward": lambda: retained.backward(retain_graph=True),
            "full": lambda: fn(real, fake).backward(),
        }
        for mode, call in calls.items():
            row = {"op": op, "size": size, "impl": impl, "mode": mode, **time(call, min_run_time)}
            if device == "cuda" and mode == "full":
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                call()
                torch.cuda.synchronize()
                row["peak_bytes"] = torch.cuda.max_memory_allocated() - base
            rows.append(row)
    return rows


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


def _profile_kernels(op: str, call, kernel_bytes: dict, size: int, copy_bytes_per_s: float) -> list:
    """Rows of each named kernel's own device time per launch over 50 calls (torch.profiler, launch overhead
    excluded), with the bandwidth its bytes imply as a fraction of copy_'s."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        call()
    torch.cuda.synchronize()
    calls = 50
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            call()
        torch.cuda.synchronize()
    rows = []
    for event in prof.key_averages():
        for kernel, bytes_moved in kernel_bytes.items():
            if kernel not in event.key:
                continue
            seconds = event.device_time_total / 1e6 / event.count
            rows.append({"op": op, "kernel": kernel, "size": size, "launches_per_call": event.count / calls,
                         "kernel_s": seconds, "bandwidth_bytes_per_s": bytes_moved / seconds,
                         "fraction_of_copy": bytes_moved / seconds / copy_bytes_per_s,
                         "copy_bandwidth_bytes_per_s": copy_bytes_per_s})
    return rows


def copy_bandwidth(t: torch.Tensor, min_run_time: float) -> float:
    """Bytes per second of a copy_ of t (one read and one write per byte): the yardstick of the kernel rows."""
    target = torch.empty_like(t)
    return 2 * t.nbytes / time_cuda(lambda: target.copy_(t), min_run_time)["median_s"]


def bench_loss_kernels(min_run_time: float) -> list:
    """CUDA only: each loss kernel's own time on the device at 256 logits (latency), 57,600 (a 64 x 30 x 30
    PatchGAN map: does a mid size fill the SMs?) and 4M, with its achieved bandwidth as a fraction of a copy_ of the
    same tensors measured in the same run: forward reads both halves; backward reads them and writes both
    gradients. Also MH-GAN's selection at its default 256 chains x 640 proposals (a warp per chain), and the
    rejection sampler's select pass over 4M proposals."""
    rows = []
    for n in (256, 57_600, 1 << 22):
        real = torch.randn(n, 1, device="cuda", requires_grad=True)
        fake = torch.randn(n, 1, device="cuda", requires_grad=True)
        flat = torch.cat([real.detach(), fake.detach()])
        flat_copy = copy_bandwidth(flat, min_run_time)
        for op, call, tensor_bytes in (("d_loss", lambda: fastgan.fused_gan_loss(real, fake).backward(), flat.nbytes),
                                       ("g_loss", lambda: fastgan.fused_generator_loss(fake).backward(), fake.nbytes)):
            rows += _profile_kernels(op, call, {"loss_forward_kernel": tensor_bytes,
                                                "loss_backward_kernel": 2 * tensor_bytes}, n, flat_copy)
    logits = torch.randn(256, 640, device="cuda")
    rows += _profile_kernels("mh_gan_select", lambda: fastgan.mh_gan_select(logits, seed=0),
                             {"mh_select_kernel": logits.nbytes}, logits.numel(), copy_bandwidth(logits, min_run_time))
    # rejection sampling's accept-and-compact: cub's select pass, the accept test (a Philox block per 4 words) as
    # its predicate; it reads the log ratios and writes the accepted indices
    log_ratio = torch.randn(1 << 22, device="cuda")
    accepted = int(torch.ops.fastgan.accept_compact(log_ratio, 0, 0, 0)[1])
    rows += _profile_kernels("accept_compact", lambda: torch.ops.fastgan.accept_compact(log_ratio, 0, 0, 0),
                             {"DeviceSelectSweepKernel": log_ratio.nbytes + 8 * accepted}, log_ratio.numel(),
                             copy_bandwidth(log_ratio, min_run_time))
    return rows


# ---- samplers ----


def sampler_impls(dist: str, n: int, device: str):
    """name -> call drawing n float32 samples: fastgan and the PyTorch way (same device)."""
    if dist == "sample_cdf":  # 1000 bins, n draws with replacement
        probs = torch.rand(1000, device=device) + 0.01
        cdf = probs.cumsum(0)
        return {"fastgan": lambda: fastgan.sample_cdf(cdf, n, seed=0, validate=False),
                "torch": lambda: torch.multinomial(probs, n, replacement=True)}
    if dist == "normal":
        torch_way = lambda: torch.randn(n, device=device)  # noqa: E731
    elif dist == "uniform":
        torch_way = lambda: torch.rand(n, device=device)  # noqa: E731
    else:  # on [-2, 2]; trunc_normal_ is PyTorch's (and timm's) truncated normal initialiser
        torch_way = lambda: torch.nn.init.trunc_normal_(torch.empty(n, device=device), a=-2.0, b=2.0)  # noqa: E731
    kwargs = {"truncation": 2.0} if dist == "truncated_normal" else {}
    sampler = fastgan.LatentSampler(1, seed=0, dist=dist, device=device, **kwargs)
    return {"fastgan": lambda: sampler(n), "torch": torch_way}


def bench_sampler(dist: str, n: int, device: str, min_run_time: float) -> list:
    time = timer_for(device)
    rows = []
    for impl, call in sampler_impls(dist, n, device).items():
        call()
        t = time(call, min_run_time)
        row = {"dist": dist, "size": n, "impl": impl, "samples_per_s": n / t["median_s"], **t}
        if device == "cuda":
            row["write_bandwidth_bytes_per_s"] = 4 * n / t["median_s"]
        rows.append(row)
    return rows


# ---- MMD ----


def physical_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def bench_mmd(n: int, d: int, device: str, min_run_time: float) -> list:
    """MMD^2 forward+backward between two [n, d] samples: fastgan vs the full-matrix reference (torch.cdist and
    exp, as people write it). The reference holds three n x n matrices and their per-bandwidth exponentials; on
    the CPU it is skipped where that would take more than half the machine's memory (the OS would kill the run),
    on CUDA it runs until the allocator raises out-of-memory."""
    time = timer_for(device)
    x = torch.randn(n, d, device=device, requires_grad=True)
    y = (torch.randn(n, d, device=device) + 0.5).requires_grad_()
    impls = {"fastgan": lambda: fastgan.mmd(x, y).backward(),
             "eager": lambda: reference.mmd(x, y, exact=False).backward()}
    rows = []
    for impl, call in impls.items():
        row = {"n": n, "d": d, "impl": impl}
        reference_bytes = 3 * n * n * 4 * (len(reference.MMD_BANDWIDTHS) + 3)
        if impl == "eager" and device == "cpu" and reference_bytes > physical_memory_bytes() // 2:
            rows.append({**row, "skipped": f"needs ~{reference_bytes / 2**30:.0f} GiB"})
            continue
        try:
            if device == "cuda":
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
            call()
            if device == "cuda":
                torch.cuda.synchronize()
                row["peak_bytes"] = torch.cuda.max_memory_allocated() - base
            rows.append({**row, **time(call, min_run_time)})
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            rows.append({**row, "skipped": "out of memory"})
        x.grad = y.grad = None
    if device == "cuda":
        rows.append(bench_mmd_forward_rate(x.detach(), y.detach(), min_run_time))
    return rows


def cuda_fp32_peak_flops() -> float:
    """FP32 peak of the current GPU: SMs x 128 FP32 lanes x 2 (an FMA) x the maximum SM clock (nvidia-smi)."""
    clock_mhz = float(subprocess.run(["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits",
                                      f"--id={torch.cuda.current_device()}"], capture_output=True, text=True,
                                     check=True).stdout.split()[0])
    return torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count * 128 * 2 * clock_mhz * 1e6


def bench_mmd_forward_rate(x, y, min_run_time: float) -> dict:
    """The tiled forward alone, as a rate: the pairs it must visit (same-set pairs once: 2 n^2 - n for n = m) x d
    coordinates x 3 flops (a subtract and an FMA per coordinate of d2), over the GPU's FP32 peak. Two instructions
    give 3 of the 4 flops an FMA pair would, so 75% is this kernel's ceiling."""
    n, d = x.shape
    row = {"n": n, "d": d, "impl": "fastgan forward", **time_cuda(lambda: fastgan.mmd(x, y), min_run_time)}
    flops = 3.0 * d * (2 * n * n - n) / row["median_s"]
    return {**row, "flops_per_s": flops, "fp32_peak_fraction": flops / cuda_fp32_peak_flops()}


# ---- evaluation metrics (issue 14) ----
# Rows in the common schema: suite, case, impl, mode, median_s, iqr_s, peak_bytes, threads, device.

METRIC_SIZES = {"cpu": (10000, 50000), "cuda": (10000, 50000)}
METRIC_DIM = 2048  # Inception pool features' width; the features are random (|N(0, 1)|, float32), not Inception's


class _Identity(torch.nn.Module):
    """torchmetrics' KID takes a feature extractor; the features here are given."""

    def forward(self, x):
        return x


def _torchmetrics_kid(real, fake):
    from torchmetrics.image.kid import KernelInceptionDistance
    metric = KernelInceptionDistance(feature=_Identity(), subsets=100, subset_size=1000).to(real.device)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return metric.compute()


def _full_matrix_kid(real, fake):
    from torchmetrics.image.kid import poly_mmd
    return poly_mmd(real, fake)  # the three n x n kernel matrices at once: torchmetrics' formula on all samples


def _prdc_package(real, fake):
    import prdc
    return prdc.compute_prdc(real.cpu().numpy(), fake.cpu().numpy(), nearest_k=5)


def _full_matrix_prdc(real, fake, k=5):
    """prdc's algorithm in PyTorch on full n x n distance matrices (as StudioGAN and others write it)."""
    real_radii = torch.cdist(real, real).kthvalue(k + 1, dim=1).values
    fake_radii = torch.cdist(fake, fake).kthvalue(k + 1, dim=1).values
    cross = torch.cdist(real, fake)
    inside = cross < real_radii[:, None]
    return {"precision": inside.any(0).float().mean(), "recall": (cross < fake_radii[None]).any(1).float().mean(),
            "density": inside.sum(0).float().mean() / k, "coverage": inside.any(1).float().mean()}


def _torchmetrics_fid(real, fake):
    from torchmetrics.image.fid import _compute_fid
    real, fake = real.double(), fake.double()
    return _compute_fid(real.mean(0), torch.cov(real.T), fake.mean(0), torch.cov(fake.T))


# case -> impl -> (callable(real, fake), bytes its largest intermediates need at n samples, or None if O(n d))
METRIC_IMPLS = {
    "kid": {
        "fastgan (exact)": (lambda r, f: fastgan.metrics.kid(r, f), None),
        "fastgan (100 x 1000)": (lambda r, f: fastgan.metrics.kid(r, f, subsets=100, subset_size=1000, seed=0), None),
        "torchmetrics (100 x 1000)": (_torchmetrics_kid, None),
        "full matrix (exact)": (_full_matrix_kid, lambda n: 4 * 4 * n * n),
    },
    "prdc": {
        "fastgan": (lambda r, f: fastgan.metrics.prdc(r, f, k=5), None),
        "prdc package": (_prdc_package, lambda n: 3 * 4 * n * n + 8 * n * n),  # + argpartition's int64 indices
        "full matrix": (_full_matrix_prdc, lambda n: 4 * 4 * n * n),
    },
    "fid": {
        "fastgan": (lambda r, f: fastgan.metrics.fid(r, f), None),
        "torchmetrics": (_torchmetrics_fid, None),
    },
}


def _metric_features(n: int, device: str):
    generator = torch.Generator().manual_seed(n)
    real = torch.randn(n, METRIC_DIM, generator=generator).abs_()
    fake = (torch.randn(n, METRIC_DIM, generator=generator) + 0.1).abs_()
    return real.to(device), fake.to(device)


def _vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _metric_call_cpu(case: str, impl: str, n: int, threads: int, queue) -> None:
    """In a fresh process (spawned): the peak resident memory the call adds (VmHWM after it minus VmRSS before it,
    inputs already made) and its time. One call per process: at n = 50k a call takes minutes."""
    torch.set_num_threads(threads)
    fn = METRIC_IMPLS[case][impl][0]
    fn(*_metric_features(1000, "cpu"))  # libraries loaded, thread pool started (1000: KID's subset size)
    real, fake = _metric_features(n, "cpu")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: making the inputs had its own peak
    before = _vm_kib("VmRSS")
    start = time_module.perf_counter()
    fn(real, fake)
    elapsed = time_module.perf_counter() - start
    queue.put({"median_s": elapsed, "iqr_s": 0.0, "peak_bytes": (_vm_kib("VmHWM") - before) * 1024, "repeats": 1})


def bench_metrics(case: str, n: int, device: str, threads: int) -> list:
    """Each implementation of one metric on n real and n fake random features of width 2048. CPU: one call per
    implementation in its own process (time and peak resident memory added by the call). CUDA: median of 3 calls
    after a warm-up, peak allocated memory. Full-matrix implementations are skipped where their matrices would
    take more than half the machine's memory (CPU) or run out of it (CUDA)."""
    import multiprocessing
    rows = []
    for impl, (fn, matrix_bytes) in METRIC_IMPLS[case].items():
        row = {"suite": "metrics", "case": f"{case} n={n} d={METRIC_DIM}", "impl": impl, "mode": "forward",
               "threads": threads, "device": device, "n": n, "d": METRIC_DIM}
        limit = physical_memory_bytes() // 2 if device == "cpu" else torch.cuda.get_device_properties(0).total_memory
        if matrix_bytes and matrix_bytes(n) > limit:
            rows.append({**row, "skipped": f"needs ~{matrix_bytes(n) / 2**30:.0f} GiB"})
            continue
        if device == "cuda" and impl == "prdc package":
            continue  # numpy: CPU only
        if device == "cpu":
            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            process = context.Process(target=_metric_call_cpu, args=(case, impl, n, threads, queue))
            process.start()
            process.join()
            rows.append({**row, **queue.get()} if process.exitcode == 0 else
                        {**row, "skipped": f"failed (exit code {process.exitcode})"})
            continue
        real, fake = _metric_features(n, device)
        try:
            fn(real[:1000], fake[:1000])
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(3):
                start = time_module.perf_counter()
                fn(real, fake)
                torch.cuda.synchronize()
                times.append(time_module.perf_counter() - start)
            q1, median, q3 = np.percentile(times, [25, 50, 75])
            rows.append({**row, "median_s": float(median), "iqr_s": float(q3 - q1), "repeats": 3,
                         "peak_bytes": torch.cuda.max_memory_allocated() - base})
        except torch.cuda.OutOfMemoryError:
            rows.append({**row, "skipped": "out of memory"})
        del real, fake
        torch.cuda.empty_cache()
    return rows


# ---- Metropolis-Hastings ----


def ring_log_prob(x: torch.Tensor) -> torch.Tensor:
    """The 2-D target of the MH benchmark: 8 Gaussians (std 0.3) on the unit circle, unnormalised."""
    angles = torch.arange(8, device=x.device, dtype=x.dtype) * (math.pi / 4)
    centres = torch.stack([angles.cos(), angles.sin()], dim=1)
    return torch.logsumexp(-((x[:, None, :] - centres) ** 2).sum(-1) / (2 * 0.09), dim=1)


def gaussian_log_prob(x: torch.Tensor) -> torch.Tensor:
    """The cheap target: N(0, I), unnormalised; most of a step is then the sampler's own work."""
    return -0.5 * (x * x).sum(1)


MH_TARGETS = {"gaussian": gaussian_log_prob, "ring8": ring_log_prob}


def bench_mh(chains: int, target: str, device: str, min_run_time: float, steps: int = 50) -> list:
    """Random-walk MH on `chains` 2-D chains, `steps` steps per call, the same target callable for both: fastgan
    (one fused kernel per step besides log_prob) vs the straightforward torch loop
    (fastgan.reference.metropolis_hastings); and the target's log_prob alone, called as often (steps + 1 times):
    the floor neither can go below. Interleaved rounds: the three are timed side by side."""
    log_prob = MH_TARGETS[target]
    x0 = torch.randn(chains, 2, device=device)
    impls = {
        "fastgan": lambda: fastgan.metropolis_hastings(log_prob, x0, steps, step_size=0.5, seed=0, burn_in=steps - 1),
        "eager": lambda: reference.metropolis_hastings(log_prob, x0, steps, 0.5),
        "log_prob": lambda: [log_prob(x0) for _ in range(steps + 1)],
    }
    if device == "cuda":  # a call captures one step (its cost included) and replays it `steps` times
        impls["fastgan_cuda_graph"] = lambda: fastgan.metropolis_hastings(log_prob, x0, steps, step_size=0.5, seed=0,
                                                                           burn_in=steps - 1, cuda_graph=True)
    return _chain_rows(impls, chains, target, steps, device, min_run_time)


def _chain_rows(impls: dict, chains: int, target: str, steps: int, device: str, min_run_time: float) -> list:
    """The MH table's rows: each implementation timed in 9 interleaved rounds after a warm-up call."""
    for call in impls.values():
        call()
    return [{"chains": chains, "target": target, "steps": steps, "impl": impl,
             "chain_steps_per_s": chains * steps / t["median_s"], **t}
            for impl, t in time_interleaved(impls, device, 3 * min_run_time, rounds=9).items()]


def bench_mh_gan(chains: int, k: int, device: str, min_run_time: float) -> list:
    """MH-GAN's selection over `chains` chains of k proposals (its default 256 x 640, from a real sample's logit):
    fastgan's one kernel vs the torch loop over proposals (fastgan.reference.mh_gan_select, its uniforms drawn by
    torch.rand), in interleaved rounds. Rows in the MH table's shape: a chain step is one proposal."""
    logits = torch.randn(chains, k, device=device)
    init = torch.randn(chains, device=device)
    impls = {"fastgan": lambda: fastgan.mh_gan_select(logits, seed=0, init_logit=init),
             "eager": lambda: reference.mh_gan_select(logits, torch.rand(chains, k, device=device).log(), init)}
    return _chain_rows(impls, chains, "MH-GAN selection", k, device, min_run_time)


# ---- thread scaling (CPU) ----


def scaling_cases(quick: bool) -> dict:
    """The large CPU ops (>= 1M elements, or MMD's 4096^2 pairs): name -> {impl: call}, fastgan and the PyTorch way
    side by side."""
    n = 1 << (20 if quick else 22)
    real = torch.randn(n, 1, requires_grad=True)
    fake = torch.randn(n, 1, requires_grad=True)
    m = 1 << (20 if quick else 24)
    x = torch.randn(1024 if quick else 4096, 64, requires_grad=True)
    y = (torch.randn(x.shape) + 0.5).requires_grad_()
    probs = torch.rand(1000) + 0.01
    cdf = probs.cumsum(0)
    latent = fastgan.LatentSampler(1, seed=0)
    return {
        f"d_loss fwd+bwd, n = {n}": {"fastgan": lambda: fastgan.fused_gan_loss(real, fake).backward(),
                                     "eager": lambda: reference.gan_loss(real, fake).backward()},
        f"normal, n = {m}": {"fastgan": lambda: latent(m), "eager": lambda: torch.randn(m)},
        f"sample_cdf, n = {m}": {"fastgan": lambda: fastgan.sample_cdf(cdf, m, seed=0, validate=False),
                                 "eager": lambda: torch.multinomial(probs, m, replacement=True)},
        f"mmd fwd+bwd, n = {len(x)}, d = 64": {"fastgan": lambda: fastgan.mmd(x, y).backward(),
                                               "eager": lambda: reference.mmd(x, y, exact=False).backward()},
    }


def scaling_threads(available: int) -> list:
    """1 and the process's count, and 4, 8, 16 where the machine has them."""
    return sorted({1, available} | {t for t in (4, 8, 16) if t < available})


def bench_scaling(quick: bool, min_run_time: float) -> list:
    rows = []
    for case, impls in scaling_cases(quick).items():
        for impl, call in impls.items():
            call()
            for threads in scaling_threads(torch.get_num_threads()):
                rows.append({"case": case, "impl": impl, **time_cpu(call, min_run_time, threads)})
    return rows


# ---- training steps ----


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
            trainers[impl].step()
    return [{"setup": setup, "impl": impl, "steps_per_s": 1.0 / t["median_s"], **t}
            for impl, t in time_interleaved({impl: trainer.step for impl, trainer in trainers.items()}, device,
                                            min_run_time, rounds).items()]


def tutorial_agreement(device: str, steps: int = 20) -> float:
    """Largest |loss difference| between the DCGAN tutorial loop and its one-line fastgan swap, same seed."""
    eager = setups.make_tutorial_trainer(False, 128, device)
    swapped = setups.make_tutorial_trainer(True, 128, device)
    worst = 0.0
    for _ in range(steps):
        for a, b in zip(eager.step(), swapped.step()):
            worst = max(worst, abs(a.item() - b.item()))
    return worst


# ---- output ----


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({torch.get_num_threads()} threads)"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def speedups(ops: list) -> list:
    """Per (op, size, mode): eager time / impl time for fastgan and compile."""
    index = {(r["op"], r["size"], r["impl"], r["mode"]): r for r in ops}
    rows = []
    for (op, size, impl, mode), r in index.items():
        if impl != "eager":
            continue
        row = {"op": op, "size": size, "mode": mode, "eager_s": r["median_s"]}
        for other in ("fastgan", "compile"):
            o = index.get((op, size, other, mode))
            if o:
                row[f"{other}_s"] = o["median_s"]
                row[f"{other}_speedup"] = r["median_s"] / o["median_s"]
        if ("fastgan_s" in row) and ("compile_s" in row):
            row["fastgan_vs_compile"] = row["compile_s"] / row["fastgan_s"]
        rows.append(row)
    return rows


def format_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def table_ops(result: dict) -> list:
    """Markdown lines for a non-empty section: the loss ops, eager / compile / fastgan side by side."""
    spread = {(r["op"], r["size"], r["impl"], r["mode"]): r["iqr_s"] for r in result["ops"]}
    lines = ["## Loss ops ([n, 1] logits)", "",
              "| op | n | mode | eager | compile | fastgan | fastgan vs eager | fastgan vs compile |",
              "|---|---:|---|---:|---:|---:|---:|---:|"]
    for s in result["speedups"]:
        key = (s["op"], s["size"])
        cells = [s["op"], str(s["size"]), s["mode"],
                 f"{format_time(s['eager_s'])} ± {format_time(spread[key + ('eager', s['mode'])])}",
                 format_time(s.get("compile_s", float("nan"))),
                 f"{format_time(s['fastgan_s'])} ± {format_time(spread[key + ('fastgan', s['mode'])])}",
                 f"{s['fastgan_speedup']:.2f}x", f"{s.get('fastgan_vs_compile', float('nan')):.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def table_samplers(result: dict) -> list:
    """Markdown lines for a non-empty section: the samplers against torch."""
    lines = ["## Samplers (float32)", "",
              "| dist | n | fastgan | PyTorch | fastgan samples/s | speed-up |", "|---|---:|---:|---:|---:|---:|"]
    index = {(r["dist"], r["size"], r["impl"]): r for r in result["samplers"]}
    for (dist, size, impl), r in index.items():
        if impl != "fastgan":
            continue
        other = index[(dist, size, "torch")]
        lines.append(f"| {dist} | {size} | {format_time(r['median_s'])} ± {format_time(r['iqr_s'])} | "
                     f"{format_time(other['median_s'])} ± {format_time(other['iqr_s'])} | "
                     f"{r['samples_per_s']:.3g} | {other['median_s'] / r['median_s']:.2f}x |")
    lines += ["", "PyTorch: torch.randn, torch.rand, torch.nn.init.trunc_normal_(a=-2, b=2), and for sample_cdf "
              "torch.multinomial(probs, n, replacement=True) over 1000 bins.", ""]
    return lines


def table_mmd(result: dict) -> list:
    """Markdown lines for a non-empty section: MMD forward+backward, and the CUDA forward rate."""
    lines = ["## MMD^2 forward+backward (rbf, 6 bandwidths), n = m", "",
              "| n | d | fastgan | eager (cdist + exp) | speed-up | peak memory fastgan / eager |",
              "|---:|---:|---:|---:|---:|---:|"]
    index = {(r["n"], r["d"], r["impl"]): r for r in result["mmd"]}
    rates = [r for r in result["mmd"] if r["impl"] == "fastgan forward"]
    for (n, d, impl), r in index.items():
        if impl != "fastgan":
            continue
        other = index[(n, d, "eager")]
        if "skipped" in other:
            eager, ratio = f"skipped: {other['skipped']}", "-"
        else:
            eager, ratio = format_time(other["median_s"]), f"{other['median_s'] / r['median_s']:.2f}x"
        memory = (f"{r['peak_bytes'] / 2**20:.1f} MiB / " + (f"{other['peak_bytes'] / 2**20:.0f} MiB"
                  if "peak_bytes" in other else "-")) if "peak_bytes" in r else "-"
        lines.append(f"| {n} | {d} | {format_time(r['median_s'])} ± {format_time(r['iqr_s'])} | {eager} | "
                     f"{ratio} | {memory} |")
    lines.append("")
    if rates:
        lines += ["Forward alone (float32): pairs x d x 3 flops (subtract, FMA) per second, as a fraction of the "
                  "GPU's FP32 peak (the subtract-and-FMA form's ceiling is 75%).", "",
                  "| n | d | forward | TFLOP/s | of FP32 peak |", "|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['n']} | {r['d']} | {format_time(r['median_s'])} | {r['flops_per_s'] / 1e12:.1f} | "
                  f"{100 * r['fp32_peak_fraction']:.0f}% |" for r in rates]
        lines.append("")
    return lines


def table_mh(result: dict) -> list:
    """Markdown lines for a non-empty section: Metropolis-Hastings chains."""
    lines = ["## Metropolis-Hastings (2-D, 50 steps per call) and MH-GAN's selection (640 proposals per chain)", "",
              "The same target callable for both; `log_prob alone` is the target called as often, the floor of "
              "both. For MH-GAN a chain step is one proposal; the torch loop draws its uniforms with torch.rand.", "",
              "| target | chains | fastgan | torch loop | log_prob alone | fastgan chain-steps/s | speed-up |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    index = {(r.get("target", "ring8"), r["chains"], r["impl"]): r for r in result["mh"]}
    for (target, chains, impl), r in index.items():
        if impl.startswith("fastgan"):
            other = index[(target, chains, "eager")]
            floor = index.get((target, chains, "log_prob"))
            label = target + (" (CUDA graph)" if impl == "fastgan_cuda_graph" else "")
            lines.append(f"| {label} | {chains} | {format_time(r['median_s'])} ± {format_time(r['iqr_s'])} | "
                         f"{format_time(other['median_s'])} | "
                         f"{format_time(floor['median_s']) if floor else '-'} | {r['chain_steps_per_s']:.3g} | "
                         f"{other['median_s'] / r['median_s']:.2f}x |")
    lines.append("")
    return lines


def table_training(result: dict) -> list:
    """Markdown lines for a non-empty section: whole training steps."""
    lines = ["## Training steps (one D step + one G step)", "",
              "| setup | impl | steps/s | ms/step | vs eager |", "|---|---|---:|---:|---:|"]
    eager = {r["setup"]: r["median_s"] for r in result["training"] if r["impl"] == "eager"}
    for r in result["training"]:
        lines.append(f"| {r['setup']} | {r['impl']} | {r['steps_per_s']:.1f} | "
                     f"{r['median_s'] * 1e3:.2f} ± {r['iqr_s'] * 1e3:.2f} | {eager[r['setup']] / r['median_s']:.2f}x |")
    lines.append("")
    return lines


def table_kernels(result: dict) -> list:
    """Markdown lines for a non-empty section: CUDA kernels alone (torch.profiler)."""
    lines = ["## Kernels on the device (torch.profiler)", "",
              "Kernel time alone; bandwidth = bytes the kernel must move / its time, as a fraction of a `copy_` "
              "of the same tensors in this run (target: >= 80% at 4M).", "",
              "| op | kernel | n | launches per call | kernel time | bandwidth | of copy_ |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for r in result["kernels"]:
        lines.append(f"| {r['op']} | {r['kernel']} | {r['size']} | {r['launches_per_call']:.0f} | "
                     f"{format_time(r['kernel_s'])} | {r['bandwidth_bytes_per_s'] / 1e9:.0f} GB/s | "
                     f"{100 * r['fraction_of_copy']:.0f}% |")
    lines.append("")
    return lines


def table_scaling(result: dict) -> list:
    """Markdown lines for a non-empty section: CPU thread scaling."""
    threads = sorted({r["threads"] for r in result["scaling"]})
    lines = ["## Thread scaling (CPU)", "",
              "Each large op at each thread count, fastgan and the PyTorch way side by side (eager reference; "
              "torch.randn, torch.multinomial, cdist MMD).", "",
              "| case | impl | " + " | ".join(f"{t} thr" for t in threads) +
              f" | 1 → {threads[-1]} speed-up |", "|---|---|" + "---:|" * (len(threads) + 1)]
    index = {(r["case"], r["impl"], r["threads"]): r["median_s"] for r in result["scaling"]}
    for case, impl in dict.fromkeys((r["case"], r["impl"]) for r in result["scaling"]):
        times = [index[(case, impl, t)] for t in threads]
        lines.append(f"| {case} | {impl} | " + " | ".join(format_time(t) for t in times) +
                     f" | {times[0] / times[-1]:.2f}x |")
    lines.append("")
    return lines


def table_metrics(result: dict) -> list:
    """Markdown lines for a non-empty section: the evaluation metrics."""
    lines = ["## Evaluation metrics (n real + n fake random features, d = 2048, float32)", "",
              "CPU: one call per implementation, each in its own process; memory = the peak resident memory the "
              "call adds. CUDA: median of 3 calls; memory = peak allocated. KID subsets: 100 of 1000 samples.",
              "", "| case | impl | time | peak memory | time / fastgan's (same estimate) |", "|---|---|---:|---:|---:|"]
    def protocol(row):  # KID on all samples or on 100 subsets: compare like with like
        return (row["case"], "100 x 1000" in row["impl"])
    fastgan_time = {protocol(r): r["median_s"] for r in result["metrics"]
                    if r["impl"].startswith("fastgan") and "median_s" in r}
    for r in result["metrics"]:
        if "skipped" in r:
            lines.append(f"| {r['case']} | {r['impl']} | skipped: {r['skipped']} | | |")
            continue
        ratio = r["median_s"] / fastgan_time.get(protocol(r), float("nan"))
        lines.append(f"| {r['case']} | {r['impl']} | {format_time(r['median_s'])} | "
                     f"{max(r['peak_bytes'], 0) / 2**20:.0f} MiB | {ratio:.2f}x |")
    lines.append("")
    return lines


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [f"# fastgan benchmarks on {meta['device_name']}", "",
             f"torch {meta['torch_version']}, fastgan {meta['fastgan_version']} ({meta['fastgan_cpu_isa']} CPU kernels), "
             f"{meta['date']}. CPU timings at {meta['cpu_threads']} threads, both sides. Medians; ± is the "
             f"interquartile range. Speed-up = eager time / time.", ""]
    dates = meta.get("sections_measured", {})
    if len(set(dates.values())) > 1:
        lines += ["Sections measured at different times (`run.py` keeps the sections a run of some `--ops` skips): " +
                  ", ".join(f"{section} {when}" for section, when in dates.items()) + ".", ""]
    for suite in REGISTRY:
        if result.get(suite.section):
            lines += suite.table(result)
    if "tutorial_max_loss_difference" in meta:
        lines.append(f"DCGAN tutorial loop vs its one-line fastgan swap: largest |loss difference| over 20 steps "
                     f"= {meta['tutorial_max_loss_difference']:.2e}.")
    overhead = meta.get("call_overhead")
    if overhead:
        lines.append(f"Call overhead (1 element, no autograd): fused_gan_loss "
                     f"{format_time(overhead['fused_gan_loss_1_element_s'])}, torch.neg "
                     f"{format_time(overhead['torch_neg_1_element_s'])}. Autograd floor, "
                     f"(r.sum() + f.sum()).backward() on two [256, 1] leaves: "
                     f"{format_time(overhead['autograd_floor_256_s'])}.")
    return "\n".join(lines) + "\n"


def plot_ops(result: dict) -> list:
    """One panel per loss op: fastgan's and torch.compile's speed-up over eager (forward+backward) by size."""
    panels = []
    for op in LOSS_OPS:
        rows = sorted((s for s in result.get("speedups", []) if s["op"] == op and s["mode"] == "full"),
                      key=lambda s: s["size"])
        if not rows:
            continue

        def draw(ax, op=op, rows=rows):
            sizes = [s["size"] for s in rows]
            ax.plot(sizes, [s["fastgan_speedup"] for s in rows], "o-", label="fastgan")
            ax.plot(sizes, [s.get("compile_speedup", float("nan")) for s in rows], "s--", label="torch.compile")
            ax.axhline(1.0, color="gray", lw=0.8)
            ax.set(xscale="log", xlabel="logits", ylabel="speed-up over eager (forward+backward)", title=op)
            ax.legend()
        panels.append(draw)
    return panels


def plot_training(result: dict) -> list:
    """One panel: each setup's whole-step speed-up over eager, per implementation."""
    if not result.get("training"):
        return []

    def draw(ax):
        setups_seen = list(dict.fromkeys(r["setup"] for r in result["training"]))
        width = 0.27
        eager = {r["setup"]: r["median_s"] for r in result["training"] if r["impl"] == "eager"}
        for k, impl in enumerate(setups.IMPLS):
            values = [next((eager[s] / r["median_s"] for r in result["training"]
                            if r["setup"] == s and r["impl"] == impl), 0) for s in setups_seen]
            ax.bar(np.arange(len(setups_seen)) + (k - 1) * width, values, width, label=impl)
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xticks(np.arange(len(setups_seen)), setups_seen)
        ax.set(ylabel="training speed-up over eager", title="whole steps (D step + G step)")
        ax.legend()
    return [draw]


def plot(result: dict, path: Path) -> None:
    """The suites' panels side by side: each suite's `plot` returns its panels, functions that draw on an axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [panel for suite in REGISTRY if suite.plot is not None for panel in suite.plot(result)]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, draw in zip(axes[0], panels):
        draw(ax)
    fig.suptitle(result["meta"]["device_name"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- the suites ----
# Each suite: its result section (benchmarks/schema.py SUITES, which compare.py reads), the tasks a run gives it
# (device, args) -> [task, ...], how one task runs (device, args, min_run_time, *task) -> rows, its markdown table
# and, optionally, its plot panels. A new suite is one entry here and one in schema.SUITES; run_device, markdown
# and plot only walk the list.


@dataclass(frozen=True)
class Suite:
    section: str
    tasks: Callable
    run: Callable
    table: Callable
    plot: Optional[Callable] = None  # (result) -> [draw(ax), ...]: its plot panels (none when its section is empty)


def _loss_tasks(device: str, args) -> list:
    return [(op, size) for op in args.ops if op in LOSS_OPS for size in args.sizes]


def _sampler_tasks(device: str, args) -> list:
    sizes = QUICK_SAMPLER_SIZES if args.quick else SAMPLER_SIZES
    return [(dist, size) for dist in args.ops if dist in SAMPLERS for size in sizes]


def _mmd_tasks(device: str, args) -> list:
    if "mmd" not in args.ops:
        return []
    sizes = args.mmd_sizes or (MMD_SIZES[device][:1] if args.quick else MMD_SIZES[device])
    return [(n, d) for d in (args.mmd_dims or MMD_DIMS[device]) for n in sizes]


def _mh_tasks(device: str, args) -> list:
    chains = (4096,) if args.quick else (4096, 65536)
    mh_gan = [(256, "MH-GAN selection")] + ([] if args.quick else [(4096, "MH-GAN selection")])
    return [(n, target) for target in MH_TARGETS for n in chains] + mh_gan if "mh" in args.ops else []


def _run_mh(device: str, args, min_run_time: float, chains: int, target: str) -> list:
    if target == "MH-GAN selection":
        return bench_mh_gan(chains, 640, device, min_run_time)
    return bench_mh(chains, target, device, min_run_time)


def _training_tasks(device: str, args) -> list:
    return [(setup,) for setup in args.ops if setup in TRAINING]


def _run_training(device: str, args, min_run_time: float, setup: str) -> list:
    # 5 interleaved rounds of >= 0.8 s each: several steps even for the ~250 ms CPU DCGAN step
    impls = ("eager", "fastgan") if args.no_compile_training else setups.IMPLS
    return bench_training(setup, device, 0.4 if args.quick else 4.0, impls)


def _kernel_tasks(device: str, args) -> list:
    return [()] if device == "cuda" and any(op in LOSS_OPS for op in args.ops) else []


def _scaling_tasks(device: str, args) -> list:
    return [()] if device == "cpu" and "scaling" in args.ops else []


def _metric_tasks(device: str, args) -> list:
    if "metrics" not in args.ops:
        return []
    sizes = args.metric_sizes or ((2000,) if args.quick else METRIC_SIZES[device])
    return [(case, n) for n in sizes for case in METRIC_IMPLS]


REGISTRY = (
    Suite("ops", _loss_tasks, lambda device, args, t, op, size: bench_loss(op, size, device, t), table_ops,
          plot_ops),
    Suite("samplers", _sampler_tasks, lambda device, args, t, dist, size: bench_sampler(dist, size, device, t),
          table_samplers),
    Suite("mmd", _mmd_tasks, lambda device, args, t, n, d: bench_mmd(n, d, device, t), table_mmd),
    Suite("mh", _mh_tasks, _run_mh, table_mh),
    Suite("training", _training_tasks, _run_training, table_training, plot_training),
    Suite("kernels", _kernel_tasks, lambda device, args, t: bench_loss_kernels(t), table_kernels),
    Suite("scaling", _scaling_tasks, lambda device, args, t: bench_scaling(args.quick, t), table_scaling),
    Suite("metrics", _metric_tasks,
          lambda device, args, t, case, n: bench_metrics(case, n, device, torch.get_num_threads()), table_metrics),
)
assert {suite.section for suite in REGISTRY} == set(SUITES), "every suite is in benchmarks/schema.py, and back"


def run_device(device: str, args) -> dict:
    min_run_time = 0.1 if args.quick else args.min_run_time
    tasks = [(suite, task) for suite in REGISTRY for task in suite.tasks(device, args)]
    result = {"schema_version": SCHEMA_VERSION, **{suite.section: [] for suite in REGISTRY}}
    for suite, task in tqdm(tasks, desc=f"benchmarks on {device}", unit="task"):
        result[suite.section] += suite.run(device, args, min_run_time, *task)
    meta = {
        "device": device,
        "device_name": device_name(device),
        "torch_version": torch.__version__,
        "fastgan_version": fastgan.__version__,
        "fastgan_cpu_isa": fastgan.build_info()["cpu_isa"],
        "cpu_threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "call_overhead": call_overhead(device, min_run_time),
    }
    if any(t.startswith("tutorial") for t in args.ops):
        meta["tutorial_max_loss_difference"] = tutorial_agreement(device)
    result["meta"] = meta
    result["speedups"] = speedups(result["ops"])
    return result


# Every timed section is a suite of benchmarks/schema.py (compare.py reads them all through it), plus the derived
# speed-ups.
RESULT_SECTIONS = tuple(SUITES) + ("speedups",)


def _has_common_schema(rows) -> bool:
    return bool(rows) and isinstance(rows, list) and all(isinstance(r, dict) and "case" in r and "impl" in r
                                                         for r in rows)


def merge_sections(previous: dict, result: dict) -> dict:
    """A run of some --ops keeps the sections of the previous result file (same machine) that it did not measure,
    each with the date it was measured (meta.sections_measured), so one suite can be rerun alone."""
    if previous.get("schema_version") != result["schema_version"]:
        return result
    date = result["meta"]["date"]
    earlier = previous["meta"].get("sections_measured", {})
    measured = {}
    for section in RESULT_SECTIONS:
        if result.get(section) and _has_common_schema(result[section]) and _has_common_schema(previous.get(section)):
            # rows of the common schema merge by (case, impl): rerunning some sizes keeps the others
            fresh = {(r["case"], r["impl"]) for r in result[section]}
            result[section] = [r for r in previous[section] if (r["case"], r["impl"]) not in fresh] + result[section]
            measured[section] = date
        elif result.get(section):
            measured[section] = date
        elif previous.get(section):
            result[section] = previous[section]
            measured[section] = earlier.get(section, previous["meta"]["date"])
    if "tutorial_max_loss_difference" not in result["meta"] and "tutorial_max_loss_difference" in previous["meta"]:
        result["meta"]["tutorial_max_loss_difference"] = previous["meta"]["tutorial_max_loss_difference"]
    result["meta"]["sections_measured"] = measured
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all",
                        help="where to run (default: CPU, and CUDA when available)")
    parser.add_argument("--ops", default=",".join(ALL_OPS), help=f"comma-separated subset of {', '.join(ALL_OPS)}")
    parser.add_argument("--sizes", default=None, help="comma-separated logit counts for the loss ops")
    parser.add_argument("--mmd-sizes", default=None, help="comma-separated sample counts n = m for mmd")
    parser.add_argument("--mmd-dims", default=None, help="comma-separated dimensions d for mmd")
    parser.add_argument("--metric-sizes", default=None, help="comma-separated sample counts n = m for metrics")
    parser.add_argument("--quick", action="store_true", help="two sizes, short timing: a smoke run")
    parser.add_argument("--min-run-time", type=float, default=0.3, help="seconds of timing per measurement")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for every measurement (default: the process's, torch.get_num_threads())")
    parser.add_argument("--no-compile-training", action="store_true",
                        help="skip torch.compile in the training steps (its compilation dominates a CPU run)")
    parser.add_argument("--no-merge", action="store_true",
                        help="replace the device's result file instead of keeping the sections this run skips")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "results"),
                        help="directory for <device>.json, .md and .png")
    args = parser.parse_args(argv)
    args.ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    unknown = sorted(set(args.ops) - set(ALL_OPS))
    if unknown:
        parser.error(f"unknown --ops {unknown}; choose from {', '.join(ALL_OPS)}")
    args.mmd_sizes = [int(s) for s in args.mmd_sizes.split(",")] if args.mmd_sizes else None
    args.mmd_dims = [int(s) for s in args.mmd_dims.split(",")] if args.mmd_dims else None
    args.metric_sizes = [int(s) for s in args.metric_sizes.split(",")] if args.metric_sizes else None
    if args.sizes:
        args.sizes = [int(s) for s in args.sizes.split(",")]
    else:
        args.sizes = list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if args.quick and args.ops == list(ALL_OPS):
        args.ops = ["d_loss", "g_loss", "normal", "mmd", "mh", "ring256", "scaling"]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        if args.device == "cuda":
            sys.exit("--device cuda: no CUDA GPU is visible to torch")
        devices.remove("cuda")
    if "cuda" in devices and not fastgan.build_info()["cuda"]:
        sys.exit("a GPU is present but this fastgan build has no CUDA kernels: rebuild with FASTGAN_CUDA=1")
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", message=".*TensorFloat32.*")
    for device in devices:
        result = run_device(device, args)
        name = slug(("cpu-" if device == "cpu" else "") + result["meta"]["device_name"])
        if not args.no_merge and (out_dir / f"{name}.json").exists():
            result = merge_sections(json.loads((out_dir / f"{name}.json").read_text()), result)
        (out_dir / f"{name}.json").write_text(json.dumps(result, indent=1))
        text = markdown(result)
        (out_dir / f"{name}.md").write_text(text)
        plot(result, out_dir / f"{name}.png")
        print(text)
        print(f"wrote {out_dir / name}.{{json,md,png}}")


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    main()
