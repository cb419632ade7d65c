#!/usr/bin/env python
"""fastgan against pure PyTorch, measured on this machine: every op (fastgan vs the eager reference vs
torch.compile of that reference; forward, backward, forward+backward) and whole GAN training steps.

    python benchmarks/run.py                   # every suite this machine can run (CPU, and CUDA when present)
    python benchmarks/run.py --quick           # a smoke run: fewer suites, cases and sizes, shorter timing
    python benchmarks/run.py --device cpu --suites ops,mmd --losses d_loss --loss-sizes 256,4194304 --output /tmp/r
    python benchmarks/run.py --suites training --setups ring256,dcgan128 --no-compile-training

--suites picks the suites; each suite's own flags (listed under its name below) pick its cases and sizes, and
apply only when it runs. Writes <output>/<device>.json (schema: benchmarks/README.md), <device>.md and <device>.png,
and prints the tables. Timing (benchmarks/timing.py): torch.utils.benchmark on the CPU, CUDA events on the GPU;
medians and interquartile ranges over many repeats after warm-up; inputs drawn fresh from N(0, 1). Each suite is a
module of benchmarks/suites/.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastgan  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks.schema import SCHEMA_VERSION  # noqa: E402
from benchmarks.suites import SUITES, ops, samplers, training  # noqa: E402
from benchmarks.suites.base import deprecated, listed, names  # noqa: E402
from benchmarks.timing import call_overhead  # noqa: E402

QUICK_SUITES = [name for name, suite in SUITES.items() if suite.quick]
# The deprecated --ops named loss ops, samplers, setups and suites in one list; a loss op also chose the kernel rows.
OLD_OPS = {"losses": (ops.LOSS_OPS, ("ops", "kernels")), "samplers": (samplers.SAMPLERS, ("samplers",)),
           "setups": (training.SETUPS, ("training",))}
OLD_SUITES = ("mmd", "mh", "metrics", "scaling")


def run_device(device: str, args) -> dict:
    min_run_time = 0.1 if args.quick else args.min_run_time
    tasks = {name: suite.tasks(device, args) for name, suite in SUITES.items() if name in args.suites}
    rows = []
    for name, task in tqdm([(name, task) for name, its in tasks.items() for task in its],
                           desc=f"benchmarks on {device}", unit="task"):
        rows += SUITES[name].run(device, args, min_run_time, *task)
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    meta = {
        "device": device,
        "device_name": report.device_name(device),
        "torch_version": torch.__version__,
        "fastgan_version": fastgan.__version__,
        "fastgan_cpu_isa": fastgan.build_info()["cpu_isa"],
        "cpu_threads": torch.get_num_threads(),
        "date": date,
        "quick": args.quick,
        "call_overhead": call_overhead(device, min_run_time),
        "suites_measured": {name: date for name in dict.fromkeys(r["suite"] for r in rows)},
    }
    for name, its in tasks.items():
        if SUITES[name].meta:
            meta.update(SUITES[name].meta(device, args, its))
    return {"schema_version": SCHEMA_VERSION, "meta": meta, "rows": rows}


def replace_old_ops(args, parser) -> None:
    """--ops (deprecated) as the flags that replace it: the suites it touched, and their cases it named."""
    if any(getattr(args, dest) is not None for dest in ("suites", *OLD_OPS)):
        parser.error(f"--ops is deprecated and cannot be combined with --suites, --{', --'.join(OLD_OPS)}")
    flags = {dest: [name for name in args.ops if name in cases] or None for dest, (cases, _) in OLD_OPS.items()}
    chosen = {name for name in OLD_SUITES if name in args.ops}
    chosen.update(suite for dest, (_, suites) in OLD_OPS.items() if flags[dest] for suite in suites)
    args.suites = [name for name in SUITES if name in chosen]
    vars(args).update(flags)
    deprecated("--ops", " ".join(f"--{dest} {listed(value)}" for dest, value in
                                 {"suites": args.suites, **flags}.items() if value))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all",
                        help="where to run (default: CPU, and CUDA when available)")
    parser.add_argument("--suites", type=names(SUITES), help=f"comma-separated suites (default: {listed(SUITES)}; "
                        f"--quick: {listed(QUICK_SUITES)}); kernels runs on CUDA only, scaling on the CPU only")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: fewer suites, cases and sizes, and shorter timing")
    parser.add_argument("--min-run-time", type=float, default=0.3, help="seconds of timing per measurement")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for every measurement (default: the process's, torch.get_num_threads())")
    parser.add_argument("--no-merge", action="store_true",
                        help="replace the device's result file instead of keeping the measurements this run skips")
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "results"),
                        help="directory for <device>.json, .md and .png")
    old = [*OLD_SUITES] + [name for cases, _ in OLD_OPS.values() for name in cases]
    parser.add_argument("--ops", type=names(old), help="deprecated: loss ops, samplers, setups and suites in one "
                        "list; use --suites and each suite's flags")
    for name, suite in SUITES.items():
        if suite.add_flags:
            suite.add_flags(parser.add_argument_group(f"the {name} suite"))
    args = parser.parse_args(argv)
    if args.ops is not None:
        replace_old_ops(args, parser)
    if args.suites is None:
        args.suites = QUICK_SUITES if args.quick else list(SUITES)
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
        path, text = report.write(run_device(device, args), out_dir, SUITES, keep_previous=not args.no_merge)
        print(text)
        print(f"wrote {path}.{{json,md,png}}")


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    main()
