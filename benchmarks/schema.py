"""The common row schema of every benchmark suite, derived from a result file's sections:

    {"suite", "case", "impl", "mode", "median_s", "iqr_s", "peak_bytes", "threads", "device"}

`run.py` writes each suite's rows with the suite's own fields (the tables and plots read those); `common_rows` maps
every timed row of every suite to this one shape, so `compare.py` (and anything else that reads results) handles a
new suite without code of its own: a suite is one `SUITES` entry naming the fields that identify its case.
"""

from __future__ import annotations

# suite (the result file's section) -> the fields that, with impl and mode, identify a measurement
SUITES = {
    "ops": ("op", "size"),
    "samplers": ("dist", "size"),
    "mmd": ("n", "d"),
    "mh": ("target", "chains", "steps"),
    "training": ("setup",),
    "scaling": ("case",),
    "metrics": ("case",),
    "kernels": ("op", "kernel", "size"),
}

COMMON_FIELDS = ("suite", "case", "impl", "mode", "median_s", "iqr_s", "peak_bytes", "threads", "device")


def case_name(suite: str, row: dict) -> str:
    """'d_loss size=4096', 'n=4096 d=64', ...: the case fields in order; a field named like the case ("case",
    "setup", "op", "dist", "target") is given bare."""
    parts = []
    for field in SUITES[suite]:
        if field not in row:
            continue
        bare = field in ("case", "setup", "op", "dist", "target", "kernel")
        parts.append(str(row[field]) if bare else f"{field}={row[field]}")
    return " ".join(parts)


def common_rows(result: dict) -> list:
    """Every timed row (one with a median, or the kernels' device time) of every known suite, in the common schema.
    Rows the run skipped (no median) are left out."""
    meta = result.get("meta", {})
    device = meta.get("device")
    rows = []
    for suite in SUITES:
        for row in result.get(suite, []) or []:
            median = row.get("median_s", row.get("kernel_s"))
            if median is None:
                continue
            rows.append({
                "suite": suite,
                "case": case_name(suite, row),
                "impl": row.get("impl", "fastgan"),
                "mode": row.get("mode", "full"),
                "median_s": median,
                "iqr_s": row.get("iqr_s"),
                "peak_bytes": row.get("peak_bytes"),
                "threads": row.get("threads", meta.get("cpu_threads") if device == "cpu" else None),
                "device": row.get("device", device),
            })
    return rows
