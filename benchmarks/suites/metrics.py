"""The evaluation metrics (KID exact and subsampled, PRDC, FID) on n real and n fake random features of width 2048:
fastgan against torchmetrics, the prdc package and the full-matrix formulas, time and peak memory."""

from __future__ import annotations

import multiprocessing
import time as time_module
from pathlib import Path

import torch

import fastgan
from benchmarks.report import impl_table
from benchmarks.schema import measurement
from benchmarks.suites.base import Suite, int_list, listed
from benchmarks.timing import cuda_peak_bytes, memory_limit, quartiles

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


def tasks(device: str, args) -> list:
    sizes = args.metric_sizes or ((2000,) if args.quick else METRIC_SIZES)
    return [(metric, n) for n in sizes for metric in METRIC_IMPLS]


def add_flags(group) -> None:
    group.add_argument("--metric-sizes", type=int_list, help="comma-separated sample counts n = m (default: "
                       f"{listed(METRIC_SIZES)}; --quick: 2000)")


SUITE = Suite("metrics", tasks, lambda device, args, t, metric, n: bench_metrics(metric, n, device),
              impl_table("Evaluation metrics (n real + n fake random features, d = 2048, float32)",
                         "CPU: one call per implementation, each in its own process; memory = the peak "
                         "resident memory the call adds. CUDA: median of 3 calls; memory = peak allocated."),
              add_flags=add_flags, quick=False)
