"""MMD^2 (rbf, the default bandwidths) forward and backward: fastgan's tiled kernels against the full-matrix
reference; on CUDA also the forward's rate as a fraction of the GPU's FP32 peak. On the CPU, d >= 16 takes the GEMM
path (docs/DESIGN.md, section 10a): d = 512 is its row."""

from __future__ import annotations

import subprocess

import torch

import fastgan
from fastgan import reference
from benchmarks.report import impl_table
from benchmarks.schema import measurement
from benchmarks.suites.base import Suite, int_list, listed
from benchmarks.timing import cuda_peak_bytes, memory_limit, time_cuda, timer_for

SIZES = {"cpu": (1024, 4096), "cuda": (1024, 4096, 16384, 65536)}
DIMS = {"cpu": (2, 64, 512), "cuda": (2, 64, 128)}


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


def tasks(device: str, args) -> list:
    sizes = args.mmd_sizes or (SIZES[device][:1] if args.quick else SIZES[device])
    return [(n, d) for d in (args.mmd_dims or DIMS[device]) for n in sizes]


def add_flags(group) -> None:
    group.add_argument("--mmd-sizes", type=int_list, help="comma-separated sample counts n = m (default: CPU "
                       f"{listed(SIZES['cpu'])}, CUDA {listed(SIZES['cuda'])}; "
                       "--quick: the first)")
    group.add_argument("--mmd-dims", type=int_list, help="comma-separated dimensions d (default: CPU "
                       f"{listed(DIMS['cpu'])}, CUDA {listed(DIMS['cuda'])})")


SUITE = Suite("mmd", tasks, lambda device, args, t, n, d: bench_mmd(n, d, device, t), table_mmd,
              add_flags=add_flags)
