"""What a run writes: the result's tables (markdown), its plot, and the JSON file, merged with the previous run on
the same machine. Each suite brings its own table and panels; the functions here only walk the suites given, in
their order, so that nothing here changes when a suite is added."""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path

import torch

from benchmarks.schema import SCHEMA_VERSION, format_time, key


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


# ---- tables ----


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


def markdown(result: dict, suites: dict) -> str:
    meta = result["meta"]
    lines = [f"# fastgan benchmarks on {meta['device_name']}", "",
             f"torch {meta['torch_version']}, fastgan {meta['fastgan_version']} ({meta['fastgan_cpu_isa']} CPU kernels), "
             f"{meta['date']}. CPU timings at {meta['cpu_threads']} threads, both sides. Medians ± interquartile "
             "range; `X / fastgan` is X's time over fastgan's, fastgan's speed-up over X.", ""]
    dates = meta["suites_measured"]
    if len(set(dates.values())) > 1:
        lines += ["Suites measured at different times (`run.py` keeps the measurements a run does not repeat): " +
                  ", ".join(f"{suite} {when}" for suite, when in dates.items()) + ".", ""]
    for name, suite in suites.items():
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


# ---- plot ----


def speedup_over_eager(rows: list, case: str, impl: str, mode: str = "full") -> float:
    time = {r["impl"]: r["median_s"] for r in rows if r["case"] == case and r["mode"] == mode}
    return time["eager"] / time[impl] if time.get(impl) and time.get("eager") else float("nan")


def plot(result: dict, path: Path, suites: dict) -> None:
    """The suites' panels side by side: each suite's `plot` returns its panels, functions that draw on an axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for name, suite in suites.items():
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


# ---- the result file ----


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


def write(result: dict, out_dir: Path, suites: dict, keep_previous: bool = True) -> tuple:
    """<out_dir>/<device>.json (merged into the file already there unless keep_previous is false), .md and .png:
    returns (the path without its suffix, the markdown)."""
    meta = result["meta"]
    path = out_dir / (slug(("cpu-" if meta["device"] == "cpu" else "") + meta["device_name"]) + ".json")
    if keep_previous and path.exists():
        result = merge(json.loads(path.read_text()), result)
    path.write_text(json.dumps(result, indent=1))
    text = markdown(result, suites)
    path.with_suffix(".md").write_text(text)
    plot(result, path.with_suffix(".png"), suites)
    return path.with_suffix(""), text
