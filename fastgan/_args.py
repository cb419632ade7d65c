"""The argument conversions the Python wrappers share, in one place.

Validation policy: every op checks all of its arguments in C++ (the raw ops under torch.ops.fastgan are public, and
their errors name the argument). A wrapper checks in Python only what it needs before the op runs: Python types
and the conversions here, and values that decide work done before the op (an output's size, a user callback such
as metropolis_hastings' log_prob, which should not run on arguments the op will reject).
"""

from __future__ import annotations

import numbers

import torch


def count(value, name: str) -> int:
    """A non-negative Python int (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def word64(value, name: str) -> int:
    """A 64-bit seed or stream id, passed to the op as the int64 with the same bits."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must lie in [0, 2**64), got {value}")
    return int(value) - 2**64 if value >= 2**63 else int(value)


def seed(value) -> int:
    """A seed as the op takes it; None draws one from torch's default CPU generator (seeded by
    torch.manual_seed), with no device synchronisation."""
    if value is None:
        return int(torch.randint(0, 2**62, (), dtype=torch.int64).item())
    return word64(value, "seed")
