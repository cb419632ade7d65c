"""The benchmark results' schema (benchmarks/README.md): every suite's rows share the common fields below, so
merging runs and compare.py need nothing per suite."""

SCHEMA_VERSION = 2
COMMON_FIELDS = ("suite", "case", "impl", "mode", "median_s", "iqr_s", "peak_bytes", "threads", "device")


def measurement(suite: str, case: str, impl: str, device: str, mode: str = "full", **fields) -> dict:
    """One row of the common schema: `fields` hold its timing (or `skipped`, the reason it has none) and the suite's
    own extras. CPU rows are timed at the process's thread count unless the timing says otherwise."""
    import torch  # here, not above: compare.py reads results with this module and needs no torch

    row = dict.fromkeys(COMMON_FIELDS)
    row.update(suite=suite, case=case, impl=impl, mode=mode, device=device,
               threads=torch.get_num_threads() if device == "cpu" else None)
    return {**row, **fields}


def key(row: dict) -> tuple:
    """What identifies a measurement: a rerun replaces the row with the same key, and compare.py pairs rows by it."""
    return row["suite"], row["case"], row["impl"], row["mode"], row["threads"]


def format_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"
