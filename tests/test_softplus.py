"""The float32 softplus and sigmoid of every loss kernel (csrc/common/math.h: exp_neg, log1p_unit, Logistic)
against float64, over every float32 of the ranges that cover each of their branches, in C++ (fastgan._C's
softplus_sweep): the vector lanes of the CPU ISA in use, and the scalar path, whose arithmetic (FMAs, rint, the
exponent-bit scaling, the correctly rounded reciprocal) gives the CUDA kernels' bits (math.h says why for the
reciprocal's MUFU sequence). The README promises softplus within 2 ulps in float32.

FASTGAN_SOFTPLUS_EXHAUSTIVE=1 (set by `make fuzz`) sweeps every float in [-128, 128] instead: about 2.2e9 values,
minutes."""

import os
import struct

import pytest

from fastgan import _ext

SOFTPLUS_ULPS = 2.0  # the README's promise
# sigmoid(x) = e / (1 + e) as e * (1 / (1 + e)): exp's 0.75 ulp, the sum's, the division's and the product's
# roundings (the library-exp version it replaced measured the same 2.77)
SIGMOID_ULPS = 3.0


def bits(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def sweep(lo: float, hi: float, stride: int = 1) -> dict:
    """Every `stride`-th float in [lo, hi] (lo, hi >= 0) and its negation."""
    return _ext._C.softplus_sweep(bits(lo), bits(hi), stride)


RANGES = {
    # the switch of log1p_unit's argument at e = 1/2 (|x| = ln 2), and the region where the log1p matters most
    "[0.5, 1]": (0.5, 1.0, 1),
    # exp(-|x|) subnormal past |x| = 87.3, zero past 103.3, and the clamp at 104
    "[64, 128]": (64.0, 128.0, 1),
    # tiny logits (the result is ln 2 to float's precision; every exponent of them)
    "[2^-30, 2^-20]": (2.0**-30, 2.0**-20, 1),
    # every binade from 0 to 128, strided (each float with probability 1/61)
    "[0, 128] / 61": (0.0, 128.0, 61),
}


@pytest.mark.parametrize("name", RANGES)
def test_softplus_and_sigmoid_within_their_bounds(name):
    lo, hi, stride = RANGES[name]
    result = sweep(lo, hi, stride)
    assert result["count"] >= 2 * ((bits(hi) - bits(lo)) // stride)
    assert result["non_finite_mismatches"] == 0
    for path in ("vector", "scalar"):
        ulps, at = result[f"softplus_{path}"]
        assert ulps <= SOFTPLUS_ULPS, f"softplus ({path}) {ulps:.3f} ulp at x = {at!r}"
        ulps, at = result[f"sigmoid_{path}"]
        assert ulps <= SIGMOID_ULPS, f"sigmoid ({path}) {ulps:.3f} ulp at x = {at!r}"


@pytest.mark.skipif(os.environ.get("FASTGAN_SOFTPLUS_EXHAUSTIVE") != "1", reason="minutes: make fuzz runs it")
def test_every_float_in_the_range():
    result = sweep(0.0, 128.0)
    for key in ("softplus_vector", "softplus_scalar"):
        assert result[key][0] <= SOFTPLUS_ULPS, (key, result[key])
    for key in ("sigmoid_vector", "sigmoid_scalar"):
        assert result[key][0] <= SIGMOID_ULPS, (key, result[key])
    assert result["non_finite_mismatches"] == 0
