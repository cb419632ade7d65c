"""benchmarks/schema.py maps every suite's rows to the common schema, and compare.py reads every suite through it."""

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.schema import COMMON_FIELDS, SUITES, common_rows

ROOT = Path(__file__).resolve().parent.parent


def synthetic_result():
    meta = {"device": "cpu", "device_name": "test", "torch_version": "x", "date": "d", "cpu_threads": 2}
    rows = {
        "ops": [{"op": "d_loss", "size": 256, "impl": "fastgan", "mode": "forward", "median_s": 1e-5, "iqr_s": 0}],
        "samplers": [{"dist": "normal", "size": 4096, "impl": "torch", "median_s": 2e-5, "iqr_s": 0}],
        "mmd": [{"n": 1024, "d": 2, "impl": "eager", "median_s": 0.1, "iqr_s": 0},
                {"n": 65536, "d": 2, "impl": "eager", "skipped": "out of memory"}],
        "mh": [{"target": "ring8", "chains": 4096, "steps": 50, "impl": "fastgan", "median_s": 0.01, "iqr_s": 0}],
        "training": [{"setup": "ring256", "impl": "compile", "median_s": 0.002, "iqr_s": 0}],
        "scaling": [{"case": "mmd", "impl": "fastgan", "threads": 1, "median_s": 1.0, "iqr_s": 0}],
        "metrics": [{"suite": "metrics", "case": "kid n=10 d=4", "impl": "fastgan (exact)", "mode": "forward",
                     "median_s": 3.0, "iqr_s": 0, "peak_bytes": 5, "threads": 2, "device": "cpu"}],
        "kernels": [{"op": "d_loss", "kernel": "loss_forward_kernel", "size": 4194304, "kernel_s": 6e-6}],
    }
    return {"schema_version": 1, "meta": meta, **rows}


def test_every_suite_maps_to_the_common_schema_and_skipped_rows_are_left_out():
    result = synthetic_result()
    assert set(result) - {"schema_version", "meta"} == set(SUITES)  # the fixture covers every suite
    rows = common_rows(result)
    assert len(rows) == len(SUITES)  # one timed row per suite; the skipped mmd row is not one
    for row in rows:
        assert tuple(row) == COMMON_FIELDS
        assert row["median_s"] > 0 and row["device"] == "cpu"
    by_suite = {r["suite"]: r for r in rows}
    assert by_suite["ops"]["case"] == "d_loss size=256" and by_suite["ops"]["threads"] == 2
    assert by_suite["mmd"]["case"] == "n=1024 d=2" and by_suite["mmd"]["mode"] == "full"
    assert by_suite["metrics"]["peak_bytes"] == 5 and by_suite["scaling"]["threads"] == 1


def test_compare_reports_every_suite_present_in_both(tmp_path):
    a, b = synthetic_result(), synthetic_result()
    for row in b["mmd"]:
        if "median_s" in row:
            row["median_s"] = 0.05
    paths = []
    for name, result in (("a", a), ("b", b)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(result))
        paths.append(str(path))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare.py"), *paths], capture_output=True,
                         text=True, check=True).stdout
    suites = {line.split()[0] for line in out.splitlines()[3:]}
    assert suites == set(SUITES)
    mmd_line = next(line for line in out.splitlines() if line.startswith("mmd"))
    assert mmd_line.rstrip().endswith("2.00x")
