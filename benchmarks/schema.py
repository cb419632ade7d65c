"""The benchmark results' schema (benchmarks/README.md): every suite's rows share the common fields below, so
merging runs and compare.py need nothing per suite."""

SCHEMA_VERSION = 2
COMMON_FIELDS = ("suite", "case", "impl", "mode", "median_s", "iqr_s", "peak_bytes", "threads", "device")


def key(row: dict) -> tuple:
    """What identifies a measurement: a rerun replaces the row with the same key, and compare.py pairs rows by it."""
    return row["suite"], row["case"], row["impl"], row["mode"], row["threads"]


def format_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"
