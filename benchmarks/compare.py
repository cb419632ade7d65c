#!/usr/bin/env python
"""Compare two benchmark results (benchmarks/run.py JSON, schema in benchmarks/README.md):

    python benchmarks/compare.py A.json B.json [--suite mmd --suite metrics]

prints, for every measurement present in both, in every suite, A's and B's median and the ratio A / B (> 1: B is
faster)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from schema import SCHEMA_VERSION, format_time, key  # noqa: E402


def load(path: str) -> dict:
    result = json.loads(Path(path).read_text())
    if result.get("schema_version") != SCHEMA_VERSION:
        sys.exit(f"{path}: schema_version {result.get('schema_version')!r}, this script reads {SCHEMA_VERSION}")
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--suite", action="append", help="only these suites (repeatable)")
    args = parser.parse_args(argv)
    a, b = load(args.a), load(args.b)
    print(f"A: {a['meta']['device_name']}, torch {a['meta']['torch_version']}, {a['meta']['date']}")
    print(f"B: {b['meta']['device_name']}, torch {b['meta']['torch_version']}, {b['meta']['date']}")
    timed_b = {key(r): r for r in b["rows"] if r["median_s"]}
    print(f"{'suite':9} {'case':34} {'impl':26} {'mode':9} {'A':>10} {'B':>10} {'A/B':>7}")
    shown = 0
    for r in a["rows"]:
        other = timed_b.get(key(r))
        if other is None or not r["median_s"] or (args.suite and r["suite"] not in args.suite):
            continue
        shown += 1
        print(f"{r['suite']:9} {r['case'][:34]:34} {r['impl'][:26]:26} {r['mode']:9} "
              f"{format_time(r['median_s']):>10} {format_time(other['median_s']):>10} "
              f"{r['median_s'] / other['median_s']:>6.2f}x")
    if shown == 0:
        print("(no measurement is in both files)")


if __name__ == "__main__":
    main()
