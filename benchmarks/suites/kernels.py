"""CUDA only: each named kernel's own device time (torch.profiler) and the bandwidth its bytes imply, as a fraction of a
copy_ of the same tensors measured in the same run."""

from __future__ import annotations

import torch

import fastgan
from benchmarks.schema import format_time, measurement
from benchmarks.suites.base import Suite
from benchmarks.timing import copy_bandwidth


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
    """Each loss kernel's own time on the device at 256 logits (latency), 57,600 (a 64 x 30 x 30 PatchGAN map: does
    a mid size fill the SMs?) and 4M, with its achieved bandwidth as a fraction of a copy_ of the same tensors
    measured in the same run: forward reads both halves; backward reads them and writes both gradients. Also
    MH-GAN's selection at its default 256 chains x 640 proposals (a warp per chain), and the rejection sampler's
    select pass over 4M proposals."""
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


def table_kernels(rows: list) -> list:
    lines = ["## Kernels on the device (torch.profiler)", "",
             "Kernel time alone; bandwidth = bytes the kernel must move / its time, as a fraction of a `copy_` "
             "of the same tensors in this run (target: >= 80% at 4M).", "",
             "| case | launches per call | kernel time | bandwidth | of copy_ |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['case']} | {r['launches_per_call']:.0f} | {format_time(r['median_s'])} | "
              f"{r['bandwidth_bytes_per_s'] / 1e9:.0f} GB/s | {100 * r['fraction_of_copy']:.0f}% |" for r in rows]
    return lines + [""]


SUITE = Suite("kernels", lambda device, args: [()] if device == "cuda" else [],
              lambda device, args, t: bench_kernels(t), table_kernels)
