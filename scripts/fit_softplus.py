#!/usr/bin/env python
"""The polynomial coefficients of csrc/common/math.h's float32 softplus (exp_neg and log1p_unit), fitted here so
that they can be checked and refitted: weighted least-squares fits at Chebyshev nodes of the part after the exact
leading terms, for the relative error of the whole function, rounded to float32; each function is then evaluated
the way the kernels evaluate it (float32 FMAs, emulated) and its largest error printed. The exhaustive sweep in
tests/test_softplus.py measures the kernels' functions themselves against float64.

    python scripts/fit_softplus.py
"""

import numpy as np

f32 = np.float32


def fma32(a, b, c):
    """A float32 FMA: a * b is exact in float64, the sum rounds once to float64 and once to float32."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def fit(g, weight, lo, hi, degree, nodes=30000):
    """Monomial coefficients (constant first) minimising sum (weight (poly - g))^2 at Chebyshev nodes of [lo, hi]."""
    t = np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes)
    x = (lo + hi) / 2 + (hi - lo) / 2 * t
    basis = np.vander(x, degree + 1, increasing=True) * weight(x)[:, None]
    coefficients, *_ = np.linalg.lstsq(basis, g(x) * weight(x), rcond=None)
    return coefficients.astype(np.float32)


def horner(coefficients, x):
    p = np.full_like(x, coefficients[-1])
    for c in coefficients[-2::-1]:
        p = fma32(p, x, np.full_like(x, c))
    return p


def ulps(values, exact):
    return np.max(np.abs(values - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64))


# exp(-r) = 1 - r + r^2 (1/2 + r Q(r)) on [-ln2/2, ln2/2]
half_ln2 = np.log(2) / 2
q_exp = fit(lambda r: (np.exp(-r) - 1 + r - r * r / 2) / r**3, lambda r: np.abs(r) ** 3 / np.exp(-r),
            -half_ln2, half_ln2, 3)
r = np.float32(np.linspace(-half_ln2, half_ln2, 2000001))
p = fma32(fma32(fma32(horner(q_exp, r), r, np.full_like(r, f32(0.5))), r, np.full_like(r, f32(-1))), r,
          np.full_like(r, f32(1)))
print(f"exp(-r), Q = {[float(c) for c in q_exp]}: {ulps(p, np.exp(-r.astype(np.float64))):.3f} ulp")

# log1p(e) on [0, 1]: above e = 1/2, ln 2 + log1p((e - 1) / 2); log1p(a) = a + a (a S(a)), S(a) = -1/2 + a Q(a), the
# one polynomial on [-1/4, 1/2]
q_log = fit(lambda a: (np.log1p(a) / a - 1 + a / 2) / a**2, lambda a: a**2 / (np.log1p(a) / a), -0.25, 0.5, 7)
e = np.concatenate([np.linspace(1e-6, 1, 2000001), np.logspace(-30, -1, 100000)]).astype(np.float32)
upper = e > 0.5
a = np.where(upper, ((e - f32(1)) * f32(0.5)).astype(np.float32), e)
s = fma32(horner(q_log, a), a, np.full_like(a, f32(-0.5)))
log1p_a = fma32(a, (a * s).astype(np.float32), a)
value = np.where(upper, (f32(0.693145751953125) + (f32(1.428606765330187e-06) + log1p_a).astype(np.float32))
                 .astype(np.float32), log1p_a)
print(f"log1p(e), Q = {[float(c) for c in q_log]}: {ulps(value, np.log1p(e.astype(np.float64))):.3f} ulp")
