"""The latent samplers: n float32 draws per call, fastgan against the PyTorch way on the same device."""

from __future__ import annotations

import torch

import fastgan
from benchmarks.report import impl_table
from benchmarks.schema import measurement
from benchmarks.suites.base import Suite, listed, names
from benchmarks.timing import timer_for

SAMPLERS = ("normal", "uniform", "truncated_normal", "sample_cdf")
QUICK_SAMPLERS = ("normal",)
SIZES = (4096, 262144, 16777216, 67108864)
QUICK_SIZES = (4096, 1048576)


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


def tasks(device: str, args) -> list:
    dists = args.samplers or (QUICK_SAMPLERS if args.quick else SAMPLERS)
    return [(dist, n) for dist in dists for n in (QUICK_SIZES if args.quick else SIZES)]


def add_flags(group) -> None:
    group.add_argument("--samplers", type=names(SAMPLERS), help="comma-separated distributions (default: "
                       f"{listed(SAMPLERS)}; --quick: {listed(QUICK_SAMPLERS)})")


SUITE = Suite("samplers", tasks, lambda device, args, t, dist, n: bench_sampler(dist, n, device, t),
              impl_table("Samplers (float32)", "torch: torch.randn, torch.rand, torch.nn.init.trunc_normal_"
                         "(a=-2, b=2), and for sample_cdf torch.multinomial(probs, n, replacement=True) over "
                         "1000 bins."), add_flags=add_flags)
