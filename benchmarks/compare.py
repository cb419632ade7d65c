#!/usr/bin/env python
"""Compare two benchmark results (benchmarks/run.py JSON, schema in benchmarks/README.md):

    python benchmarks/compare.py A.json B.json

prints, for every measurement present in both, A's and B's median and the ratio A / B (> 1: B is faster)."""

from __future__ import annotations

import argparse
import json
import sys


def load(path: str) -> dict:
    with open(path) as f:
        result = json.load(f)
    if result.get("schema_version") != 1:
        sys.exit(f"{path}: schema_version {result.get('schema_version')!r}, this script reads version 1")
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    args = parser.parse_args(argv)
    a, b = load(args.a), load(args.b)
    print(f"A: {a['meta']['device_name']}, torch {a['meta']['torch_version']}, {a['meta']['date']}")
    print(f"B: {b['meta']['device_name']}, torch {b['meta']['torch_version']}, {b['meta']['date']}")
    ops_b = {(r["op"], r["size"], r["impl"], r["mode"]): r for r in b["ops"]}
    header = f"{'op':8} {'size':>9} {'impl':8} {'mode':9} {'A':>11} {'B':>11} {'A/B':>7}"
    print(header)
    for r in a["ops"]:
        other = ops_b.get((r["op"], r["size"], r["impl"], r["mode"]))
        if other:
            print(f"{r['op']:8} {r['size']:>9} {r['impl']:8} {r['mode']:9} {r['median_s'] * 1e6:>9.1f}us "
                  f"{other['median_s'] * 1e6:>9.1f}us {r['median_s'] / other['median_s']:>6.2f}x")
    train_b = {(r["setup"], r["impl"]): r for r in b["training"]}
    for r in a["training"]:
        other = train_b.get((r["setup"], r["impl"]))
        if other:
            print(f"{r['setup']:12} {r['impl']:8} steps/s A {r['steps_per_s']:8.1f}  B {other['steps_per_s']:8.1f}  "
                  f"A/B time {other['steps_per_s'] / r['steps_per_s']:.2f}x")


if __name__ == "__main__":
    main()
