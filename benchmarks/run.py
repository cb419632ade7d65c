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
import multiprocessing
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
from benchmarks.schema import COMMON_FIELDS, SCHEMA_VERSION, format_time, key  # noqa: E402

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


def measurement(suite: str, case: str, impl: str, device: str, mode: str = "full", **fields) -> dict:
    """One row of the common schema: `fields` hold its timing (or `skipped`, the reason it has none) and the suite's
    own extras. CPU rows are timed at the process's thread count unless the timing says otherwise."""
    row = dict.fromkeys(COMMON_FIELDS)
    row.update(suite=suite, case=case, impl=impl, mode=mode, device=device,
               threads=torch.get_num_threads() if device == "cpu" else None)
    return {**row, **fields}


# ---- timing ----


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
            peak = {"peak_bytes": cuda_peak_bytes(call)} if device == "cuda" and mode == "full" else {}
            rows.append(measurement("ops", f"{op} n={size}", impl, device, mode, size=size,
                                    **time(call, min_run_time), **peak))
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


def copy_bandwidth(t: torch.Tensor, min_run_time: float) -> float:
    """Bytes per second of a copy_ of t (one read and one write per byte): the yardstick of the kernel rows."""
    target = torch.empty_like(t)
    return 2 * t.nbytes / time_cuda(lambda: target.copy_(t), min_run_time)["median_s"]


def profile_kernels(op: str, call, kernel_bytes: dict, size: int, copy_bytes_per_s: float) -> list:
    """Rows of each named kernel's own device time per launch over 50 calls (torch.profiler, launch overhead
    excluded), with the bandwidth its bytes imply as a fraction of copy_bytes_per_s."""
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
            if kernel in event.key:
                seconds = event.device_time_total / 1e6 / event.count
                rows.append(measurement("kernels", f"{op} {kernel} n={size}", "fastgan", "cuda", "kernel",
                                        median_s=seconds, launches_per_call=event.count / calls,
                                        bandwidth_bytes_per_s=bytes_moved / seconds,
                                        fraction_of_copy=bytes_moved / seconds / copy_bytes_per_s,
                                        copy_bandwidth_bytes_per_s=copy_bytes_per_s))
    return rows


def bench_kernels(min_run_time: float) -> list:
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
        flat_copy = copy_bandwidth(flat, min_run_time)  # one yardstick for both ops at this size
        for op, call, tensor_bytes in (("d_loss", lambda: fastgan.fused_gan_loss(real, fake).backward(), flat.nbytes),
                                       ("g_loss", lambda: fastgan.fused_generator_loss(fake).backward(), fake.nbytes)):
            rows += profile_kernels(op, call, {"loss_forward_kernel": tensor_bytes,
                                               "loss_backward_kernel": 2 * tensor_bytes}, n, flat_copy)
    logits = torch.randn(256, 640, device="cuda")
    rows += profile_kernels("mh_gan_select", lambda: fastgan.mh_gan_select(logits, seed=0),
                            {"mh_select_kernel": logits.nbytes}, logits.numel(),
                            copy_bandwidth(logits, min_run_time))
    # rejection sampling's accept-and-compact: cub's select pass, the accept test (a Philox block per 4 words) as
    # its predicate; it reads the log ratios and writes the accepted indices
    log_ratio = torch.randn(1 << 22, device="cuda")
    accepted = int(torch.ops.fastgan.accept_compact(log_ratio, 0, 0, 0)[1])
    rows += profile_kernels("accept_compact", lambda: torch.ops.fastgan.accept_compact(log_ratio, 0, 0, 0),
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
        rows.append(measurement("samplers", f"{dist} n={n}", impl, device, **t,
                                write_bandwidth_bytes_per_s=4 * n / t["median_s"]))
    return rows


# ---- MMD ----


def memory_limit(device: str) -> int:
    """Where the full-matrix baselines stop: half the machine's memory on the CPU (beyond it the OS kills the run),
    the GPU's memory on CUDA (beyond it they cannot run)."""
    if device == "cpu":
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    return torch.cuda.get_device_properties(0).total_memory


def mmd_impls(n: int, d: int, device: str) -> dict:
    """name -> MMD^2 forward+backward between two [n, d] samples: fastgan and the full-matrix reference
    (torch.cdist and exp, as people write it)."""
    x = torch.randn(n, d, device=device, requires_grad=True)
    y = (torch.randn(n, d, device=device) + 0.5).requires_grad_()
    return {"fastgan": lambda: fastgan.mmd(x, y).backward(),
            "eager": lambda: reference.mmd(x, y, exact=False).backward()}


def bench_mmd(n: int, d: int, device: str, min_run_time: float) -> list:
    """mmd_impls timed. The reference holds three n x n matrices and their per-bandwidth exponentials; it is
    skipped where they exceed memory_limit, or when the CUDA allocator runs out of memory."""
    time = timer_for(device)
    case = f"n={n} d={d}"
    rows = []
    for impl, call in mmd_impls(n, d, device).items():
        reference_bytes = 3 * n * n * 4 * (len(reference.MMD_BANDWIDTHS) + 3)
        if impl == "eager" and reference_bytes > memory_limit(device):
            rows.append(measurement("mmd", case, impl, device, skipped=f"needs ~{reference_bytes / 2**30:.0f} GiB"))
            continue
        try:
            peak = cuda_peak_bytes(call) if device == "cuda" else call()  # a warm-up call, measured on CUDA
            rows.append(measurement("mmd", case, impl, device, **time(call, min_run_time), peak_bytes=peak))
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            rows.append(measurement("mmd", case, impl, device, skipped="out of memory"))
    if device == "cuda":
        rows.append(bench_mmd_forward_rate(n, d, min_run_time))
    return rows


def cuda_fp32_peak_flops() -> float:
    """FP32 peak of the current GPU: SMs x 128 FP32 lanes x 2 (an FMA) x the maximum SM clock (nvidia-smi)."""
    clock_mhz = float(subprocess.run(["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits",
                                      f"--id={torch.cuda.current_device()}"], capture_output=True, text=True,
                                     check=True).stdout.split()[0])
    return torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count * 128 * 2 * clock_mhz * 1e6


def bench_mmd_forward_rate(n: int, d: int, min_run_time: float) -> dict:
    """The tiled forward alone, as a rate: the pairs it must visit (same-set pairs once: 2 n^2 - n for n = m) x d
    coordinates x 3 flops (a subtract and an FMA per coordinate of d2), over the GPU's FP32 peak. Two instructions
    give 3 of the 4 flops an FMA pair would, so 75% is this kernel's ceiling."""
    x, y = torch.randn(n, d, device="cuda"), torch.randn(n, d, device="cuda") + 0.5
    t = time_cuda(lambda: fastgan.mmd(x, y), min_run_time)
    flops = 3.0 * d * (2 * n * n - n) / t["median_s"]
    return measurement("mmd", f"n={n} d={d}", "fastgan", "cuda", "forward", **t, flops_per_s=flops,
                       fp32_peak_fraction=flops / cuda_fp32_peak_flops())


# ---- evaluation metrics ----

METRIC_SIZES = (10000, 50000)
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


# metric (with its estimate: implementations in one entry compute the same number) -> impl -> (callable(real, fake),
# bytes its largest intermediates need at n samples, or None if O(n d))
METRIC_IMPLS = {
    "kid (exact)": {"fastgan": (lambda r, f: fastgan.metrics.kid(r, f), None),
                    "full matrix": (_full_matrix_kid, lambda n: 4 * 4 * n * n)},
    "kid (100 x 1000)": {
        "fastgan": (lambda r, f: fastgan.metrics.kid(r, f, subsets=100, subset_size=1000, seed=0), None),
        "torchmetrics": (_torchmetrics_kid, None)},
    "prdc": {"fastgan": (lambda r, f: fastgan.metrics.prdc(r, f, k=5), None),
             "prdc package": (_prdc_package, lambda n: 3 * 4 * n * n + 8 * n * n),  # + argpartition's int64 indices
             "full matrix": (_full_matrix_prdc, lambda n: 4 * 4 * n * n)},
    "fid": {"fastgan": (lambda r, f: fastgan.metrics.fid(r, f), None), "torchmetrics": (_torchmetrics_fid, None)},
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


def _metric_call_in_process(metric: str, impl: str, n: int, threads: int, queue) -> None:
    """In a fresh process (spawned): the peak resident memory the call adds (VmHWM after it minus VmRSS before it,
    inputs already made) and its time. One call per process: at n = 50k a call takes minutes."""
    torch.set_num_threads(threads)
    fn = METRIC_IMPLS[metric][impl][0]
    fn(*_metric_features(1000, "cpu"))  # libraries loaded, thread pool started (1000: KID's subset size)
    real, fake = _metric_features(n, "cpu")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: making the inputs had its own peak
    before = _vm_kib("VmRSS")
    start = time_module.perf_counter()
    fn(real, fake)
    elapsed = time_module.perf_counter() - start
    queue.put({"median_s": elapsed, "iqr_s": 0.0, "peak_bytes": (_vm_kib("VmHWM") - before) * 1024, "repeats": 1})


def _metric_call_cpu(metric: str, impl: str, n: int) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_metric_call_in_process, args=(metric, impl, n, torch.get_num_threads(), queue))
    process.start()
    process.join()
    return queue.get() if process.exitcode == 0 else {"skipped": f"failed (exit code {process.exitcode})"}


def _metric_call_cuda(fn, n: int) -> dict:
    """Median of 3 calls after a warm-up at KID's subset size and a call at full size that measures the peak."""
    real, fake = _metric_features(n, "cuda")
    try:
        fn(real[:1000], fake[:1000])
        peak = cuda_peak_bytes(lambda: fn(real, fake))
        times = []
        for _ in range(3):
            start = time_module.perf_counter()
            fn(real, fake)
            torch.cuda.synchronize()
            times.append(time_module.perf_counter() - start)
        return {**quartiles(times), "peak_bytes": peak}
    except torch.cuda.OutOfMemoryError:
        return {"skipped": "out of memory"}


def bench_metrics(metric: str, n: int, device: str) -> list:
    """Each implementation of one metric on n real and n fake random features of width 2048. CPU: one call per
    implementation in its own process (time and peak resident memory added by the call). CUDA: median of 3 calls,
    peak allocated memory. Full-matrix implementations are skipped where their matrices exceed memory_limit."""
    rows = []
    for impl, (fn, matrix_bytes) in METRIC_IMPLS[metric].items():
        if device == "cuda" and impl == "prdc package":
            continue  # numpy: CPU only
        if matrix_bytes and matrix_bytes(n) > memory_limit(device):
            timing = {"skipped": f"needs ~{matrix_bytes(n) / 2**30:.0f} GiB"}
        else:
            timing = _metric_call_cpu(metric, impl, n) if device == "cpu" else _metric_call_cuda(fn, n)
        rows.append(measurement("metrics", f"{metric} n={n} d={METRIC_DIM}", impl, device, "forward", **timing))
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


# ---- Metropolis-Hastings ----


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


# ---- thread scaling (CPU) ----


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


def format_cell(row: dict | None) -> str:
    """Median ± IQR (no IQR for a single call), and the peak memory where measured; or why it was skipped."""
    if row is None:
        return ""
    if row["median_s"] is None:
        return f"skipped: {row['skipped']}"
    text = format_time(row["median_s"])
    if row.get("repeats", 2) > 1:
        text += f" ± {format_time(row['iqr_s'])}"
    return text if row["peak_bytes"] is None else text + f", {max(row['peak_bytes'], 0) / 2**20:.1f} MiB"


def impl_table(title: str, notes: str = ""):
    """A suite's table: a line per (case, mode), a column per implementation, then each other implementation's time
    over fastgan's (fastgan's speed-up over it)."""

    def table(rows: list) -> list:
        impls = list(dict.fromkeys(r["impl"] for r in rows))
        others = [impl for impl in impls if impl != "fastgan"]
        by_key = {(r["case"], r["mode"], r["impl"]): r for r in rows}
        lines = [f"## {title}", "", *([notes, ""] if notes else []),
                 "| case | mode | " + " | ".join(impls + [f"{other} / fastgan" for other in others]) + " |",
                 "|---|---|" + "---:|" * (len(impls) + len(others))]
        for case, mode in dict.fromkeys((r["case"], r["mode"]) for r in rows):
            cells = [format_cell(by_key.get((case, mode, impl))) for impl in impls]
            ours = by_key.get((case, mode, "fastgan"))
            for other in others:
                theirs = by_key.get((case, mode, other))
                timed = ours and theirs and ours["median_s"] and theirs["median_s"]
                cells.append(f"{theirs['median_s'] / ours['median_s']:.2f}x" if timed else "")
            lines.append(f"| {case} | {mode} | " + " | ".join(cells) + " |")
        return lines + [""]

    return table


def table_mmd(rows: list) -> list:
    """The impl table, then the CUDA forward rate as a fraction of the GPU's FP32 peak."""
    lines = impl_table("MMD^2 (rbf, 6 bandwidths), n = m, float32",
                       "full: forward+backward; eager: torch.cdist and exp on the full matrices.")(rows)
    rates = [r for r in rows if "flops_per_s" in r]
    if rates:
        lines += ["Forward alone: pairs x d x 3 flops (subtract, FMA) per second, as a fraction of the GPU's FP32 "
                  "peak (the subtract-and-FMA form's ceiling is 75%).", "",
                  "| case | TFLOP/s | of FP32 peak |", "|---|---:|---:|"]
        lines += [f"| {r['case']} | {r['flops_per_s'] / 1e12:.1f} | {100 * r['fp32_peak_fraction']:.0f}% |"
                  for r in rates] + [""]
    return lines


def table_kernels(rows: list) -> list:
    lines = ["## Kernels on the device (torch.profiler)", "",
             "Kernel time alone; bandwidth = bytes the kernel must move / its time, as a fraction of a `copy_` "
             "of the same tensors in this run (target: >= 80% at 4M).", "",
             "| case | launches per call | kernel time | bandwidth | of copy_ |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['case']} | {r['launches_per_call']:.0f} | {format_time(r['median_s'])} | "
              f"{r['bandwidth_bytes_per_s'] / 1e9:.0f} GB/s | {100 * r['fraction_of_copy']:.0f}% |" for r in rows]
    return lines + [""]


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


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [f"# fastgan benchmarks on {meta['device_name']}", "",
             f"torch {meta['torch_version']}, fastgan {meta['fastgan_version']} ({meta['fastgan_cpu_isa']} CPU kernels), "
             f"{meta['date']}. CPU timings at {meta['cpu_threads']} threads, both sides. Medians ± interquartile "
             "range; `X / fastgan` is X's time over fastgan's, fastgan's speed-up over X.", ""]
    dates = meta["suites_measured"]
    if len(set(dates.values())) > 1:
        lines += ["Suites measured at different times (`run.py` keeps the measurements a run does not repeat): " +
                  ", ".join(f"{suite} {when}" for suite, when in dates.items()) + ".", ""]
    for name, suite in SUITES.items():
        rows = [r for r in result["rows"] if r["suite"] == name]
        if rows:
            lines += suite.table(rows)
    if "tutorial_max_loss_difference" in meta:
        lines.append(f"DCGAN tutorial loop vs its one-line fastgan swap: largest |loss difference| over 20 steps "
                     f"= {meta['tutorial_max_loss_difference']:.2e}.")
    overhead = meta["call_overhead"]
    lines.append(f"Call overhead (1 element, no autograd): fused_gan_loss "
                 f"{format_time(overhead['fused_gan_loss_1_element_s'])}, torch.neg "
                 f"{format_time(overhead['torch_neg_1_element_s'])}. Autograd floor, "
                 f"(r.sum() + f.sum()).backward() on two [256, 1] leaves: "
                 f"{format_time(overhead['autograd_floor_256_s'])}.")
    return "\n".join(lines) + "\n"


def speedup_over_eager(rows: list, case: str, impl: str, mode: str = "full") -> float:
    time = {r["impl"]: r["median_s"] for r in rows if r["case"] == case and r["mode"] == mode}
    return time["eager"] / time[impl] if time.get(impl) and time.get("eager") else float("nan")


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


def plot(result: dict, path: Path) -> None:
    """The suites' panels side by side: each suite's `plot` returns its panels, functions that draw on an axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for name, suite in SUITES.items():
        rows = [r for r in result["rows"] if r["suite"] == name]
        if rows and suite.plot:
            panels += suite.plot(rows)
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
# A suite is one entry of SUITES: the tasks a run gives it, how one task runs, its table and optionally its plot
# panels. run_device, markdown and plot only walk SUITES, and every row is in the common schema (measurement), so
# merging and compare.py need nothing per suite.


@dataclass(frozen=True)
class Suite:
    tasks: Callable  # (device, args) -> [task, ...]
    run: Callable  # (device, args, min_run_time, *task) -> [row, ...]
    table: Callable  # (its rows) -> markdown lines
    plot: Optional[Callable] = None  # (its rows) -> [draw(ax), ...]


def _mh_tasks(device: str, args) -> list:
    """(bench function, its leading arguments): MH on each target, then MH-GAN's selection of 640 proposals."""
    if "mh" not in args.ops:
        return []
    chains = (4096,) if args.quick else (4096, 65536)
    return ([(bench_mh, n, target) for target in MH_TARGETS for n in chains] +
            [(bench_mh_gan, n, 640) for n in ((256,) if args.quick else (256, 4096))])


def _run_training(device: str, args, min_run_time: float, setup: str) -> list:
    # 5 interleaved rounds of >= 0.8 s each: several steps even for the ~250 ms CPU DCGAN step
    impls = ("eager", "fastgan") if args.no_compile_training else setups.IMPLS
    return bench_training(setup, device, 0.4 if args.quick else 4.0, impls)


def _mmd_tasks(device: str, args) -> list:
    sizes = args.mmd_sizes or (MMD_SIZES[device][:1] if args.quick else MMD_SIZES[device])
    return [(n, d) for d in (args.mmd_dims or MMD_DIMS[device]) for n in sizes] if "mmd" in args.ops else []


def _metric_tasks(device: str, args) -> list:
    sizes = args.metric_sizes or ((2000,) if args.quick else METRIC_SIZES)
    return [(metric, n) for n in sizes for metric in METRIC_IMPLS] if "metrics" in args.ops else []


SUITES = {
    "ops": Suite(lambda device, args: [(op, n) for op in args.ops if op in LOSS_OPS for n in args.sizes],
                 lambda device, args, t, op, n: bench_loss(op, n, device, t),
                 impl_table("Loss ops ([n, 1] logits)", "full: forward+backward."), plot_ops),
    "samplers": Suite(lambda device, args: [(dist, n) for dist in args.ops if dist in SAMPLERS
                                            for n in (QUICK_SAMPLER_SIZES if args.quick else SAMPLER_SIZES)],
                      lambda device, args, t, dist, n: bench_sampler(dist, n, device, t),
                      impl_table("Samplers (float32)", "torch: torch.randn, torch.rand, torch.nn.init.trunc_normal_"
                                 "(a=-2, b=2), and for sample_cdf torch.multinomial(probs, n, replacement=True) over "
                                 "1000 bins.")),
    "mmd": Suite(_mmd_tasks, lambda device, args, t, n, d: bench_mmd(n, d, device, t), table_mmd),
    "mh": Suite(_mh_tasks, lambda device, args, t, bench, *task: bench(*task, device, t), impl_table(
        "Metropolis-Hastings (2-D, 50 steps per call) and MH-GAN's selection (k proposals per chain)",
        "The same target callable for both; `log_prob` is the target alone, called as often: the floor of both. "
        "The MH-GAN torch loop draws its uniforms with torch.rand.")),
    "training": Suite(lambda device, args: [(setup,) for setup in args.ops if setup in TRAINING], _run_training,
                      impl_table("Training steps (one D step + one G step)"), plot_training),
    "kernels": Suite(lambda device, args: [()] if device == "cuda" and set(args.ops) & set(LOSS_OPS) else [],
                     lambda device, args, t: bench_kernels(t), table_kernels),
    "scaling": Suite(lambda device, args: [()] if device == "cpu" and "scaling" in args.ops else [],
                     lambda device, args, t: bench_scaling(args.quick, t), table_scaling),
    "metrics": Suite(_metric_tasks, lambda device, args, t, metric, n: bench_metrics(metric, n, device),
                     impl_table("Evaluation metrics (n real + n fake random features, d = 2048, float32)",
                                "CPU: one call per implementation, each in its own process; memory = the peak "
                                "resident memory the call adds. CUDA: median of 3 calls; memory = peak allocated.")),
}


def run_device(device: str, args) -> dict:
    min_run_time = 0.1 if args.quick else args.min_run_time
    tasks = [(name, task) for name, suite in SUITES.items() for task in suite.tasks(device, args)]
    rows = []
    for name, task in tqdm(tasks, desc=f"benchmarks on {device}", unit="task"):
        rows += SUITES[name].run(device, args, min_run_time, *task)
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    meta = {
        "device": device,
        "device_name": device_name(device),
        "torch_version": torch.__version__,
        "fastgan_version": fastgan.__version__,
        "fastgan_cpu_isa": fastgan.build_info()["cpu_isa"],
        "cpu_threads": torch.get_num_threads(),
        "date": date,
        "quick": args.quick,
        "call_overhead": call_overhead(device, min_run_time),
        "suites_measured": {name: date for name in dict.fromkeys(r["suite"] for r in rows)},
    }
    if any(t.startswith("tutorial") for t in args.ops):
        meta["tutorial_max_loss_difference"] = tutorial_agreement(device)
    return {"schema_version": SCHEMA_VERSION, "meta": meta, "rows": rows}


def merge(previous: dict, result: dict) -> dict:
    """The previous result file (same machine) keeps its place and every measurement this run did not repeat, so
    one suite or one size can be rerun alone; meta.suites_measured dates each suite's latest run."""
    if previous.get("schema_version") != SCHEMA_VERSION:
        return result
    fresh = {key(r): r for r in result["rows"]}
    result["rows"] = [fresh.pop(key(r), r) for r in previous["rows"]] + list(fresh.values())
    meta = result["meta"]
    meta["suites_measured"] = {**previous["meta"]["suites_measured"], **meta["suites_measured"]}
    if "tutorial_max_loss_difference" in previous["meta"]:
        meta.setdefault("tutorial_max_loss_difference", previous["meta"]["tutorial_max_loss_difference"])
    return result


def int_list(text: str) -> list:
    return [int(s) for s in text.split(",")]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all",
                        help="where to run (default: CPU, and CUDA when available)")
    parser.add_argument("--ops", default=",".join(ALL_OPS), help=f"comma-separated subset of {', '.join(ALL_OPS)}")
    parser.add_argument("--sizes", type=int_list, default=None, help="comma-separated logit counts for the loss ops")
    parser.add_argument("--mmd-sizes", type=int_list, default=None, help="comma-separated sample counts n = m for mmd")
    parser.add_argument("--mmd-dims", type=int_list, default=None, help="comma-separated dimensions d for mmd")
    parser.add_argument("--metric-sizes", type=int_list, default=None,
                        help="comma-separated sample counts n = m for metrics")
    parser.add_argument("--quick", action="store_true", help="two sizes, short timing: a smoke run")
    parser.add_argument("--min-run-time", type=float, default=0.3, help="seconds of timing per measurement")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for every measurement (default: the process's, torch.get_num_threads())")
    parser.add_argument("--no-compile-training", action="store_true",
                        help="skip torch.compile in the training steps (its compilation dominates a CPU run)")
    parser.add_argument("--no-merge", action="store_true",
                        help="replace the device's result file instead of keeping the measurements this run skips")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "results"),
                        help="directory for <device>.json, .md and .png")
    args = parser.parse_args(argv)
    args.ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    unknown = sorted(set(args.ops) - set(ALL_OPS))
    if unknown:
        parser.error(f"unknown --ops {unknown}; choose from {', '.join(ALL_OPS)}")
    args.sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
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
        path = out_dir / (slug(("cpu-" if device == "cpu" else "") + result["meta"]["device_name"]) + ".json")
        if not args.no_merge and path.exists():
            result = merge(json.loads(path.read_text()), result)
        path.write_text(json.dumps(result, indent=1))
        text = markdown(result)
        path.with_suffix(".md").write_text(text)
        plot(result, path.with_suffix(".png"))
        print(text)
        print(f"wrote {path.with_suffix('')}.{{json,md,png}}")


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    main()
