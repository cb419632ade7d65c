"""What a suite is: the one interface that run.py, the report and the tests know (each suite module builds one
`Suite`), and the types of the flags that suites add to run.py."""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class Suite:
    name: str  # the rows' "suite", and what --suites calls it
    tasks: Callable  # (device, args) -> [task, ...]: what a run with these flags measures on the device (tuples)
    run: Callable  # (device, args, min_run_time, *task) -> [row, ...]: rows made by schema.measurement
    table: Callable  # (its rows) -> markdown lines; report.impl_table makes the usual one
    plot: Optional[Callable] = None  # (its rows) -> [draw(ax), ...]: panels of the result's figure
    add_flags: Optional[Callable] = None  # (argparse group) -> None: the flags that choose its cases and sizes
    meta: Optional[Callable] = None  # (device, args, its tasks) -> {field: value} for the result's meta
    quick: bool = True  # part of a --quick run that does not name its suites


def int_list(text: str) -> list:
    return [int(s) for s in text.split(",")]


def listed(values) -> str:
    """A default as the flag takes it, for --help."""
    return ",".join(map(str, values))


def names(choices) -> Callable:
    """The type of a flag that picks some of `choices`, comma-separated."""

    def parse(text: str) -> list:
        picked = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in picked if name not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(choices)}")
        return picked

    return parse


def deprecated(old: str, new: str) -> None:
    # Located at run.py itself (line 0: no source line shown): the caller is argparse, which a user did not write.
    warnings.warn_explicit(f"{old} is deprecated and will be removed in the next release: use {new}", FutureWarning,
                           "benchmarks/run.py", 0)


class Renamed(argparse.Action):
    """A flag's old spelling, kept for one release: warns, then stores what it is given under the new flag."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        super().__init__(option_strings, dest, help=f"deprecated spelling of {new}", **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        deprecated(option_string, self.new)
        setattr(namespace, self.dest, values)
