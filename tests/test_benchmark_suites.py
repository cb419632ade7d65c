"""The benchmark suites without running them: CI has no GPU, so what it can check of the CUDA paths is that every
suite module imports, plans its tasks for "cuda" and hands each to its runner with the right arguments, and that no
function reads a name its module lacks. Also the CLI's flags, the deprecated --ops, and the committed results,
which the reporting code must render to the committed tables."""

import builtins
import importlib
import inspect
import json
import pkgutil
import symtable
from pathlib import Path

import pytest

import benchmarks.suites
from benchmarks import report, timing
from benchmarks.run import parse_args
from benchmarks.suites import SUITES

ROOT = Path(__file__).resolve().parent.parent
SUITE_MODULES = [importlib.import_module(f"benchmarks.suites.{m.name}")
                 for m in pkgutil.iter_modules(benchmarks.suites.__path__) if m.name != "base"]


def test_every_suite_module_is_registered_under_its_name():
    assert sorted(SUITES) == sorted(module.__name__.rsplit(".", 1)[1] for module in SUITE_MODULES)
    for module in SUITE_MODULES:
        assert SUITES[module.SUITE.name] is module.SUITE


@pytest.mark.parametrize("flags", [[], ["--quick"]], ids=["full", "quick"])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_every_suite_plans_its_tasks_and_each_fits_its_runner(device, flags):
    args = parse_args(["--device", device, "--suites", ",".join(SUITES), *flags])
    planned = {name: suite.tasks(device, args) for name, suite in SUITES.items()}
    for name, suite in SUITES.items():
        for task in planned[name]:
            inspect.signature(suite.run).bind(device, args, 0.1, *task)
        if suite.meta:
            inspect.signature(suite.meta).bind(device, args, planned[name])
    assert bool(planned["kernels"]) == (device == "cuda") and bool(planned["scaling"]) == (device == "cpu")
    assert all(planned[name] for name in SUITES if name not in ("kernels", "scaling"))


@pytest.mark.parametrize("module", SUITE_MODULES + [report, timing], ids=lambda m: m.__name__)
def test_no_function_reads_a_name_its_module_lacks(module):
    """A function moved between modules without its imports fails only when it runs: on the GPU, for the CUDA ones."""
    defined = set(vars(module)) | set(dir(builtins))
    missing = []

    def walk(table):
        for child in table.get_children():
            missing.extend(f"{child.get_name()}: {symbol.get_name()}" for symbol in child.get_symbols()
                           if symbol.is_global() and symbol.is_referenced() and symbol.get_name() not in defined)
            walk(child)

    walk(symtable.symtable(Path(module.__file__).read_text(), module.__file__, "exec"))
    assert missing == []


def test_quick_runs_every_suite_but_the_metrics_and_flags_choose_suites_and_cases():
    assert parse_args([]).suites == list(SUITES)
    assert parse_args(["--quick"]).suites == [name for name in SUITES if name != "metrics"]
    args = parse_args(["--suites", "training,ops", "--setups", "ring256", "--losses", "g_loss", "--loss-sizes", "64"])
    assert args.suites == ["training", "ops"]
    assert SUITES["ops"].tasks("cpu", args) == [("g_loss", 64)]
    assert SUITES["training"].tasks("cpu", args) == [("ring256",)]
    with pytest.raises(SystemExit):
        parse_args(["--suites", "ops,nope"])


def test_the_deprecated_ops_and_sizes_warn_and_become_the_new_flags():
    with pytest.warns(FutureWarning) as warned:
        args = parse_args(["--ops", "normal,mmd,d_loss", "--sizes", "64"])
    assert [str(w.message).split(" is deprecated")[0] for w in warned] == ["--sizes", "--ops"]
    assert str(warned[1].message).endswith("use --suites ops,samplers,mmd,kernels --losses d_loss --samplers normal")
    assert (args.suites, args.losses, args.samplers, args.setups, args.loss_sizes) == (
        ["ops", "samplers", "mmd", "kernels"], ["d_loss"], ["normal"], None, [64])
    with pytest.warns(FutureWarning, match="--ops is deprecated.*--suites training --setups tutorial128"):
        assert parse_args(["--quick", "--ops", "tutorial128"]).setups == ["tutorial128"]
    with pytest.raises(SystemExit):
        parse_args(["--ops", "mmd", "--suites", "mmd"])


# (cuda-report-*: make cuda-report's machine-code report, not benchmark rows; tests/test_cuda_report.py checks it)
@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "benchmarks" / "results").glob("*.json")
                                        if not p.stem.startswith("cuda-report")), ids=lambda p: p.stem)
def test_the_committed_results_render_to_the_committed_tables(path):
    assert report.markdown(json.loads(path.read_text()), SUITES) == path.with_suffix(".md").read_text()
