"""Each family is declared once per language: fastgan's Python tables (the reference terms and flags, the docs'
lines) and the C++ tables (the kernels' terms and checks) must agree, and the docs' tables are rendered from them."""

import pathlib

import fastgan
from fastgan import _args, _ext, reference

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_loss_families_agree_between_python_and_cpp():
    cpp = {row["name"]: row for row in _ext._C.loss_families()}
    assert list(cpp) == list(reference.LOSS_FAMILIES)  # the same names, in the same order (the messages list them)
    for name, family in reference.LOSS_FAMILIES.items():
        assert cpp[name] == {"name": name, "smoothable": family.smoothable, "saturating_form": family.saturating_form,
                             "accepts_probs": family.accepts_probs, "paired": family.paired}, name
    assert fastgan.LOSSES == tuple(reference.LOSS_FAMILIES)


def test_the_docs_loss_table_is_rendered_from_the_family_table():
    table = reference.loss_table()
    assert table in (ROOT / "docs" / "losses.md").read_text(), f"paste this table into docs/losses.md:\n{table}"


def test_the_distributions_agree_between_python_and_cpp():
    from fastgan.sampling import DISTRIBUTIONS
    cpp = {name: (a, b) for name, a, b, _ in _ext._C.distributions()}
    assert {d.op or d.name for d in DISTRIBUTIONS.values()} == set(cpp)
    for d in DISTRIBUTIONS.values():
        if d.encode is None:  # the options are the op's parameters a and b, in order
            assert tuple(name for name, _ in d.options) == tuple(p for p in cpp[d.name] if p), d.name


def test_the_accumulate_dtype_rule_agrees_between_python_and_cpp():
    import torch
    for dtype in _args.FLOAT_DTYPES:
        _, stats = torch.ops.fastgan.gan_loss(torch.zeros(2, dtype=dtype), torch.zeros(2, dtype=dtype))
        assert stats.dtype == _args.accumulate_dtype(dtype)
