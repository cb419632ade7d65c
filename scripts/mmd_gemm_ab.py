#!/usr/bin/env python
"""A/B of the MMD's two CPU paths (docs/DESIGN.md, section 10a): rbf with the default 6 bandwidths, forward +
backward, the tile kernels (FASTGAN_MMD_GEMM_MIN_D set past d) against the GEMM path (set to 1), in one process,
rounds interleaved (each round alternates which path goes first), torch.utils.benchmark with the process's thread
count. Prints the median of each and their ratio.

    python scripts/mmd_gemm_ab.py --n 4096 --dims 16,64,128,512 --rounds 3
"""
import argparse
import os
import statistics

import torch
from torch.utils import benchmark

import fastgan

PATHS = {"tile": "1000000000", "gemm": "1"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--dims", default="16,64,128,512")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kernel", default="rbf", choices=["rbf", "polynomial"])
    args = parser.parse_args()
    saved = os.environ.get("FASTGAN_MMD_GEMM_MIN_D")
    try:
        for d in (int(v) for v in args.dims.split(",")):
            g = torch.Generator().manual_seed(0)
            x = torch.randn(args.n, d, generator=g).requires_grad_()
            y = (torch.randn(args.n, d, generator=g) + 0.5).requires_grad_()

            def run(min_d):
                os.environ["FASTGAN_MMD_GEMM_MIN_D"] = min_d
                fastgan.mmd(x, y, kernel=args.kernel).backward()

            times = {name: [] for name in PATHS}
            for r in range(args.rounds):
                for name in (list(PATHS) if r % 2 == 0 else list(PATHS)[::-1]):
                    timer = benchmark.Timer("run(m)", globals={"run": run, "m": PATHS[name]},
                                            num_threads=torch.get_num_threads())
                    times[name].append(timer.timeit(1).median)
            tile, gemm = (statistics.median(times[name]) for name in PATHS)
            print(f"n={args.n} d={d} {args.kernel}: tile {tile:.3f} s, gemm {gemm:.3f} s, ratio {tile / gemm:.2f}x",
                  flush=True)
    finally:
        if saved is None:
            os.environ.pop("FASTGAN_MMD_GEMM_MIN_D", None)
        else:
            os.environ["FASTGAN_MMD_GEMM_MIN_D"] = saved


if __name__ == "__main__":
    main()
