"""What the seeded examples share: the mean ± standard error of a metric over seeds, the markdown table of them, and
the conclusions, which state a difference only where it exceeds its combined error.

The rule: A and B differ in a metric when |mean_A - mean_B| > 2 sqrt(se_A^2 + se_B^2) (se: the standard error of
the mean over seeds, scipy.stats.sem, n - 1 degrees of freedom), about a 95% two-sided test for independent seeds.
With fewer than 2 seeds there is no standard error and no conclusion is drawn.
"""

from __future__ import annotations

import math
import platform
import subprocess
import sys

import numpy as np
from scipy import stats

RULE = ("a difference is stated only where |Δmean| > 2·sqrt(se_A² + se_B²) (se: standard error of the mean over "
        "seeds, scipy.stats.sem)")


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


def compare(name_a: str, a, name_b: str, b, metric: str, fmt: str = "{:.3f}") -> str:
    """One conclusion line: whether A's mean differs from B's by more than the combined error."""
    (ma, sa), (mb, sb) = mean_se(a), mean_se(b)
    if not (math.isfinite(sa) and math.isfinite(sb)):
        return f"- {metric}: {name_a} vs {name_b}: fewer than 2 seeds, no conclusion"
    delta, bound = ma - mb, 2 * math.sqrt(sa ** 2 + sb ** 2)
    numbers = f"Δ = {fmt.format(delta)}, 2·combined se = {fmt.format(bound)}"
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
