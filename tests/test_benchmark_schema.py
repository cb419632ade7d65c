"""Every benchmark row is in the common schema, a rerun replaces only what it measured, and compare.py pairs the
rows of every suite."""

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.run import SUITES, measurement, merge
from benchmarks.schema import COMMON_FIELDS, SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent


def result(rows: list, date: str) -> dict:
    meta = {"device": "cpu", "device_name": "test", "torch_version": "x", "date": date,
            "suites_measured": {r["suite"]: date for r in rows}}
    return {"schema_version": SCHEMA_VERSION, "meta": meta, "rows": rows}


def one_row_per_suite(median_s: float) -> list:
    return [measurement(suite, "case", "fastgan", "cpu", median_s=median_s, iqr_s=0.0) for suite in SUITES]


def test_a_row_starts_with_the_common_fields_and_a_skipped_one_has_no_timing():
    row = measurement("mmd", "n=1 d=2", "eager", "cpu", skipped="needs ~9 GiB", steps=3)
    assert tuple(row)[:len(COMMON_FIELDS)] == COMMON_FIELDS
    assert row["median_s"] is None and row["threads"] >= 1 and row["steps"] == 3


def test_merge_replaces_the_measurements_a_run_repeats_and_keeps_the_rest_in_place():
    previous = result(one_row_per_suite(1.0), "old")
    rerun = [measurement("mmd", "case", "fastgan", "cpu", median_s=0.5), measurement("mmd", "new", "fastgan", "cpu")]
    merged = merge(previous, result(rerun, "new"))
    assert [(r["suite"], r["case"]) for r in merged["rows"]] == [(s, "case") for s in SUITES] + [("mmd", "new")]
    assert [r["median_s"] for r in merged["rows"] if r["suite"] != "mmd"] == [1.0] * (len(SUITES) - 1)
    assert merged["rows"][list(SUITES).index("mmd")]["median_s"] == 0.5
    assert merged["meta"]["suites_measured"] == {**{s: "old" for s in SUITES}, "mmd": "new"}


def test_compare_reports_every_suite_present_in_both(tmp_path):
    paths = []
    for name, median_s in (("a", 1.0), ("b", 0.5)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(result(one_row_per_suite(median_s), name)))
        paths.append(str(path))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare.py"), *paths], capture_output=True,
                         text=True, check=True).stdout.splitlines()[3:]
    assert [line.split()[0] for line in out] == list(SUITES)
    assert all(line.rstrip().endswith("2.00x") for line in out)
