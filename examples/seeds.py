"""What the seeded examples share: the mean ± standard error of a metric over seeds, the markdown table of them, and
the conclusions, which state a difference only where it exceeds its combined error.

The rule: A and B differ in a metric when |mean_A - mean_B| > 2 sqrt(se_A^2 + se_B^2) (se: the standard error of
the mean over seeds, scipy.stats.sem, n - 1 degrees of freedom), about a 95% two-sided test for independent seeds.
Where A and B are two ways of sampling the same seed's trained GAN (DRS and MH-GAN against the generator), the
seeds' GANs differ far more than the samplers do, so the comparison is paired: A and B differ when the mean of the
per-seed differences exceeds twice its standard error (PAIRED_RULE). With fewer than 2 seeds there is no standard
error and no conclusion is drawn.
"""

from __future__ import annotations

import argparse
import math
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy import stats

def parser(doc: str, seeds: int, seeds_help: str = "independent runs (seeds 0 .. N-1)") -> argparse.ArgumentParser:
    """The flags every seeded example takes: --seeds, --device and --output-dir; the example adds its own."""
    import torch

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=seeds, help=seeds_help)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--output-dir", default="examples/out",
                   help="where the figures, .md and .json go (default examples/out, git-ignored)")
    return p


def output_dir(args: argparse.Namespace) -> Path:
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


RULE = ("a difference is stated only where |Δmean| > 2·sqrt(se_A² + se_B²) (se: standard error of the mean over "
        "seeds, scipy.stats.sem)")
PAIRED_RULE = ("the samplers share each seed's GAN, so the comparison is paired: a difference is stated only where "
               "the mean of the per-seed differences Δ exceeds 2·se(Δ) (scipy.stats.sem over the seeds where both "
               "are finite)")


def mean_se(values) -> tuple:
    """(mean, standard error) of the finite values; se is NaN with fewer than 2 of them. A non-finite value (the
    reverse KL of a run without any high-quality sample is inf) is left out; cell() reports how many remain."""
    values = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(values) == 0:
        return math.nan, math.nan
    return float(values.mean()), float(stats.sem(values)) if len(values) > 1 else math.nan


def cell(values, fmt: str = "{:.3f}", percent: bool = False) -> str:
    mean, se = mean_se(values)
    scale = 100.0 if percent else 1.0
    text = fmt.format(mean * scale) + (" ± " + fmt.format(se * scale) if math.isfinite(se) else "")
    finite = sum(math.isfinite(v) for v in values)
    # a metric that is undefined for some seed (the reverse KL of a run with no high-quality sample is inf) is
    # averaged over the others, and the cell says so
    return text + ("%" if percent else "") + (f" ({finite} of {len(values)} seeds)" if finite < len(values) else "")


def table(runs: dict, metrics: dict, first: str = "") -> list:
    """Markdown lines: a row per name of runs ({name: {metric: [one value per seed]}}), a column per metric
    ({metric: (header, fmt, percent)})."""
    lines = [f"| {first} | " + " | ".join(header for header, _, _ in metrics.values()) + " |",
             "|---|" + "---:|" * len(metrics)]
    for name, values in runs.items():
        lines.append(f"| {name} | " + " | ".join(cell(values[m], fmt, pct) for m, (_, fmt, pct) in metrics.items())
                     + " |")
    return lines


def compare(name_a: str, a, name_b: str, b, metric: str, fmt: str = "{:.3f}", paired: bool = False) -> str:
    """One conclusion line: whether A's mean differs from B's by more than the combined error, or with paired=True
    (A and B measured on the same seeds' GANs) whether the mean per-seed difference exceeds twice its error."""
    if paired:
        pairs = [(x, y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]
        delta, se = mean_se([x - y for x, y in pairs])
        label, bound = "2·se(Δ)", 2 * se
    else:
        (ma, sa), (mb, sb) = mean_se(a), mean_se(b)
        delta, label, bound = ma - mb, "2·combined se", 2 * math.sqrt(sa ** 2 + sb ** 2)
    if not math.isfinite(bound):
        return f"- {metric}: {name_a} vs {name_b}: fewer than 2 seeds, no conclusion"
    numbers = f"Δ = {fmt.format(delta)}, {label} = {fmt.format(bound)}"
    if abs(delta) > bound:
        return f"- {metric}: {name_a} is {'higher' if delta > 0 else 'lower'} than {name_b} ({numbers})"
    return f"- {metric}: {name_a} and {name_b} do not differ beyond the error ({numbers})"


def machine() -> str:
    """The CPU model and the thread count torch uses, for the results files."""
    import torch

    model = platform.processor() or "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{model}, {torch.get_num_threads()} torch threads{gpu}, torch {torch.__version__}"


def command() -> str:
    return "python " + " ".join(sys.argv)
