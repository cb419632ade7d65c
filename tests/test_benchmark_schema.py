"""Every benchmark row is in the common schema, a rerun replaces only what it measured, and compare.py pairs the
rows of every suite."""

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.report import merge
from benchmarks.schema import COMMON_FIELDS, SCHEMA_VERSION, measurement
from benchmarks.suites import SUITES

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


def test_run_writes_common_rows_tables_and_a_plot_and_a_rerun_keeps_the_rest(tmp_path):
    """run.py end to end on the CPU at the smallest sizes (what CI can afford): every row has the common fields and
    a timing, the tables and the plot are written, and a rerun of one suite keeps the other's rows."""
    def run(*flags):
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--device", "cpu", "--quick",
                        *flags, "--loss-sizes", "64", "--output", str(tmp_path)],
                       check=True, capture_output=True, text=True)
        (path,) = tmp_path.glob("*.json")
        return json.loads(path.read_text()), path

    first, path = run("--suites", "ops,samplers", "--losses", "d_loss", "--samplers", "normal")
    assert {r["suite"] for r in first["rows"]} == {"ops", "samplers"}
    for row in first["rows"]:
        assert tuple(row)[:len(COMMON_FIELDS)] == COMMON_FIELDS and row["median_s"] > 0 and row["threads"] >= 1
    assert {r["impl"] for r in first["rows"] if r["suite"] == "ops"} == {"fastgan", "eager", "compile"}
    markdown = path.with_suffix(".md").read_text()
    assert "| d_loss n=64 | full |" in markdown and "| normal n=4096 | full |" in markdown
    assert path.with_suffix(".png").stat().st_size > 0
    second, _ = run("--suites", "samplers", "--samplers", "normal")
    assert [r for r in second["rows"] if r["suite"] == "ops"] == [r for r in first["rows"] if r["suite"] == "ops"]
    assert second["meta"]["suites_measured"] == {"ops": first["meta"]["date"], "samplers": second["meta"]["date"]}
