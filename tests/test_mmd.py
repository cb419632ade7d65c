"""fastgan.mmd against the full-matrix float64 reference, closed forms, gradients and bad input."""

import math

import pytest
import torch

import fastgan
from fastgan import _simt, reference
from helpers import at_thread_counts

KERNELS = ["rbf", "laplacian", "energy", "polynomial"]
ESTIMATORS = ["unbiased", "biased"]
# kernel_params of the raw op: two bandwidths, none for energy, [degree, gamma, coef]
OP_PARAMS = {"rbf": [0.5, 2.0], "laplacian": [0.5, 2.0], "energy": [], "polynomial": [3.0, 0.5, 1.0]}
# the same as keyword arguments of fastgan.mmd / reference.mmd
OPTIONS = {"rbf": {"bandwidths": (0.5, 2.0)}, "laplacian": {"bandwidths": (0.5, 2.0)}, "energy": {},
           "polynomial": {"degree": 3, "gamma": 0.5, "coef": 1.0}}


def samples(n, m, d, dtype, device, generator):
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    y = 1.3 * torch.randn(m, d, generator=generator, dtype=torch.float64) + 0.2
    return x.to(dtype).to(device), y.to(dtype).to(device)


@pytest.mark.parametrize("shape", [(2, 2, 1), (7, 5, 3), (37, 29, 5), (70, 90, 64)], ids=str)
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_value_and_gradient_match_the_reference_in_float64(kernel, estimator, shape, device, generator):
    n, m, d = shape
    x, y = samples(n, m, d, torch.float64, device, generator)
    x.requires_grad_()
    y.requires_grad_()
    ours = fastgan.mmd(x, y, kernel=kernel, estimator=estimator)
    expected = reference.mmd(x.detach().cpu().requires_grad_(), y.detach().cpu().requires_grad_(), kernel=kernel,
                             estimator=estimator)
    torch.testing.assert_close(ours.cpu(), expected.detach(), rtol=1e-12, atol=1e-13)
    grads = torch.autograd.grad(ours, (x, y))
    inputs = [t.detach().cpu().requires_grad_() for t in (x, y)]
    expected_grads = torch.autograd.grad(reference.mmd(*inputs, kernel=kernel, estimator=estimator), inputs)
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g.cpu(), e, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("kernel", KERNELS)
def test_float32_and_narrower_inputs(kernel, device, generator):
    """float32: each kernel value within a few ulps, summed in float lanes per row and double across rows; MMD^2 is
    a difference of three means of size ~ sum_s 1 = 6, so its error is ~ 6 * 1e-6 absolute, not relative."""
    x, y = samples(300, 200, 8, torch.float64, device, generator)
    expected = reference.mmd(x.cpu(), y.cpu(), kernel=kernel)
    ours = fastgan.mmd(x.float(), y.float(), kernel=kernel)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours.double().cpu(), expected, rtol=0, atol=1e-5)
    for low in (torch.float16, torch.bfloat16):  # computed in float32, from the rounded inputs
        ours_low = fastgan.mmd(x.to(low), y.to(low), kernel=kernel)
        assert ours_low.dtype == torch.float32
        expected_low = reference.mmd(x.to(low).double().cpu(), y.to(low).double().cpu(), kernel=kernel)
        torch.testing.assert_close(ours_low.double().cpu(), expected_low, rtol=0, atol=1e-5)


def gaussian_rbf_mmd(shift, bandwidths, d):
    """MMD^2 between N(0, I) and N(shift e_1, I) for a sum of RBF kernels, in closed form:
    E k = (s^2 / (s^2 + v))^(d/2) exp(-|mu|^2 / (2 (s^2 + v))), v the sum of the two variances."""
    total = 0.0
    for s in bandwidths:
        same = (s * s / (s * s + 2)) ** (d / 2)
        cross = (s * s / (s * s + 2)) ** (d / 2) * math.exp(-shift * shift / (2 * (s * s + 2)))
        total += 2 * same - 2 * cross
    return total


def test_two_gaussians_match_the_closed_form_and_one_gaussian_gives_zero():
    """n = m = 2000 in 2-D, bandwidths (0.5, 1, 2): over 20 seeds the unbiased estimate had mean 0.2527 and
    standard deviation 0.017 around the exact 0.2532 (shift 1), and standard deviation 7e-4 around 0 for equal
    distributions. The bounds are 4 standard deviations."""
    bandwidths = (0.5, 1.0, 2.0)
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    y = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    assert abs(fastgan.mmd(x, y, bandwidths=bandwidths).item()) < 4 * 7e-4
    y[:, 0] += 1.0
    exact = gaussian_rbf_mmd(1.0, bandwidths, 2)
    assert abs(exact - 0.2532) < 1e-4
    assert abs(fastgan.mmd(x, y, bandwidths=bandwidths).item() - exact) < 4 * 0.017


def test_module_door_is_the_function(generator):
    x, y = samples(20, 30, 4, torch.float64, "cpu", generator)
    module = fastgan.nn.MMDLoss(bandwidths=[0.5, 2.0], kernel="laplacian", estimator="biased")
    assert module(x, y).item() == fastgan.mmd(x, y, bandwidths=[0.5, 2.0], kernel="laplacian",
                                              estimator="biased").item()
    torch.testing.assert_close(module(x, y), reference.mmd(x, y, bandwidths=[0.5, 2.0], kernel="laplacian",
                                                           estimator="biased"), rtol=1e-12, atol=1e-14)
    assert "laplacian" in repr(module)


def test_squared_false_is_the_root():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(50, 3, generator=g), torch.randn(40, 3, generator=g) + 1
    torch.testing.assert_close(fastgan.mmd(x, y, squared=False), fastgan.mmd(x, y).sqrt())


def test_gradcheck_and_opcheck(generator, device):
    x, y = samples(6, 5, 3, torch.float64, device, generator)
    for kernel in KERNELS:
        for estimator in ESTIMATORS:
            def fn(a, b):
                return fastgan.mmd(a, b, kernel=kernel, estimator=estimator, **OPTIONS[kernel])
            assert torch.autograd.gradcheck(fn, (x.clone().requires_grad_(), y.clone().requires_grad_()))
        params = OP_PARAMS[kernel]
        torch.library.opcheck(torch.ops.fastgan.mmd.default, (x.clone().requires_grad_(), y, params, kernel, True))
        torch.library.opcheck(torch.ops.fastgan.mmd_backward.default,
                              (torch.tensor(1.5, dtype=torch.float64, device=device), x, y, params, kernel, False))


def test_compile_fullgraph(generator):
    torch._dynamo.reset()
    x, y = samples(20, 30, 4, torch.float32, "cpu", generator)
    compiled = torch.compile(lambda a, b: 3 * fastgan.mmd(a, b), fullgraph=True)
    torch.testing.assert_close(compiled(x, y), 3 * fastgan.mmd(x, y))


@pytest.mark.parametrize("kernel", ["rbf", "polynomial"])
@pytest.mark.parametrize("d", [8, 64])  # the tile kernel and the GEMM path (crossover d = 16)
def test_deterministic_for_any_thread_count(kernel, d, generator):
    x, y = samples(700, 500, d, torch.float32, "cpu", generator)
    x.requires_grad_()

    def value_and_gradient():
        value = fastgan.mmd(x, y, kernel=kernel)
        return value, *torch.autograd.grad(value, x)

    results = at_thread_counts(value_and_gradient, (1, max(2, torch.get_num_threads())))
    for one, many in zip(*results):
        assert torch.equal(one, many)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x: fastgan.mmd(x, x[:, :2]), ValueError, "same dimension d"),
        (lambda x: fastgan.mmd(x[:1], x), ValueError, "at least 2 samples"),
        (lambda x: fastgan.mmd(x, x, bandwidths=(1.0, 0.0)), ValueError, "finite and > 0"),
        (lambda x: fastgan.mmd(x, x, bandwidths=()), ValueError, "give 1 to 16 bandwidths"),
        (lambda x: fastgan.mmd(x, x, bandwidths=[1.0] * 17), ValueError, "give 1 to 16 bandwidths"),
        (lambda x: fastgan.mmd(x, x, kernel="gaussian"), ValueError,
         "kernel must be one of 'rbf', 'laplacian', 'energy', 'polynomial'"),
        (lambda x: fastgan.mmd(x, x, kernel="energy", bandwidths=(1.0,)), ValueError, "energy kernel takes no"),
        (lambda x: fastgan.mmd(x, x, kernel="polynomial", bandwidths=(1.0,)), ValueError, "not to polynomial"),
        (lambda x: fastgan.mmd(x, x, degree=2), ValueError, "degree apply to the polynomial kernel, not to 'rbf'"),
        (lambda x: fastgan.mmd(x, x, kernel="laplacian", gamma=1.0, coef=0.0), ValueError, "gamma, coef apply"),
        (lambda x: fastgan.mmd(x, x, kernel="polynomial", degree=2.0), TypeError, "degree must be an int"),
        (lambda x: fastgan.mmd(x, x, kernel="polynomial", degree=0), ValueError, r"integer in \[1, 64\]"),
        (lambda x: fastgan.mmd(x, x, kernel="polynomial", gamma=0.0), ValueError, "gamma must be finite and > 0"),
        (lambda x: fastgan.mmd(x, x, kernel="polynomial", coef=math.inf), ValueError, "coef must be finite"),
        (lambda x: torch.ops.fastgan.mmd(x, x, [3.5, 1.0, 1.0], "polynomial"), ValueError, "degree must be an int"),
        (lambda x: torch.ops.fastgan.mmd(x, x, [3.0, 1.0], "polynomial"), ValueError, "takes \\[degree, gamma, coef\\]"),
        (lambda x: torch.ops.fastgan.mmd(x, x, [1.0], "energy"), ValueError, "takes no parameters"),
        (lambda x: fastgan.mmd(x, x, estimator="v"), ValueError, "estimator must be 'unbiased' or 'biased'"),
        (lambda x: fastgan.mmd(x.int(), x.int()), TypeError, "float32 or float64"),
        (lambda x: fastgan.mmd(x[0], x[1]), ValueError, r"must be \[n, d\] and \[m, d\]"),
        (lambda x: fastgan.mmd(x, x.double()), TypeError, "same dtype"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call(torch.randn(5, 3))


def test_biased_estimator_accepts_single_samples():
    x, y = torch.zeros(1, 2), torch.ones(1, 2)
    expected = 2 * len(reference.MMD_BANDWIDTHS) - 2 * sum(math.exp(-2 / (2 * s * s)) for s in reference.MMD_BANDWIDTHS)
    assert abs(fastgan.mmd(x, y, estimator="biased").item() - expected) < 1e-6


def test_polynomial_kernel_is_kid_and_its_gradient_is_the_reference(generator):
    """Two independent implementations of the same estimator: the fused pair kernel and metrics.kid's float64
    GEMM tiles (KID's defaults: degree 3, gamma 1 / d, coef 1; features of Inception-like size and sign)."""
    x = torch.rand(150, 40, generator=generator, dtype=torch.float64)
    y = 0.9 * torch.rand(120, 40, generator=generator, dtype=torch.float64) + 0.05
    ours = fastgan.mmd(x, y, kernel="polynomial")
    torch.testing.assert_close(ours, fastgan.metrics.kid(x, y), rtol=1e-11, atol=1e-13)
    for estimator in ESTIMATORS:
        a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
        value = fastgan.mmd(a, b, kernel="polynomial", degree=4, gamma=0.1, coef=-0.5, estimator=estimator)
        grads = torch.autograd.grad(value, (a, b))
        c, e = x.clone().requires_grad_(), y.clone().requires_grad_()
        expected = reference.mmd(c, e, kernel="polynomial", degree=4, gamma=0.1, coef=-0.5, estimator=estimator)
        torch.testing.assert_close(value, expected, rtol=1e-11, atol=1e-13)
        for g, ge in zip(grads, torch.autograd.grad(expected, (c, e))):
            torch.testing.assert_close(g, ge, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("kernel", KERNELS)
def test_cuda_takes_any_dimension(kernel, generator, gpu):
    """d = 300 and 2048 are past the old 256 limit: several shared-memory slices and gradient column chunks, with
    ragged ends."""
    for d in (300, 2048):
        x, y = samples(70, 90, d, torch.float64, "cpu", generator)
        x, y = x / math.sqrt(d), y / math.sqrt(d)  # keep the kernels away from 0 for every bandwidth
        options = OPTIONS[kernel]
        a, b = gpu.to(x).requires_grad_(), gpu.to(y).requires_grad_()
        with gpu:
            ours = fastgan.mmd(a, b, kernel=kernel, **options)
            grads = torch.autograd.grad(ours, (a, b))
        c, e = x.clone().requires_grad_(), y.clone().requires_grad_()
        expected = reference.mmd(c, e, kernel=kernel, **options)
        torch.testing.assert_close(ours.cpu(), expected.detach(), rtol=1e-12, atol=1e-13)
        for g, ge in zip(grads, torch.autograd.grad(expected, (c, e))):
            torch.testing.assert_close(g.cpu(), ge, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("path", ["tile", "gemm"])
def test_backward_memory_is_linear_in_the_inputs(path):
    """Two samples of 2e6 dimensions (finding: the backward's per-task scratch was 16 rows x d vectors, 11.7 GB for
    2 x 1e7). Forward and backward hold the inputs, their transposes, the gradients and a double accumulator of
    the rows: about 4x the inputs (measured 3x). The bound is 8x; the old scratch alone was 64x. Peak RSS of a
    fresh process, so nothing else this suite allocated counts. Both paths: the tile kernels, and the GEMM path (d this
    large takes it), whose centred copies, norms and per-task tiles (the products, the slopes and a tile x d
    accumulator) are all linear too (measured 3.4x)."""
    import subprocess
    import sys
    code = (
        "import resource, torch, fastgan\n"
        "x = torch.randn(2, 2_000_000, requires_grad=True); y = torch.randn(2, 2_000_000)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "fastgan.mmd(x, y).backward()\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)\n"
    )
    import os
    env = dict(os.environ, FASTGAN_MMD_GEMM_MIN_D="1000000000" if path == "tile" else "1")
    grown = int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                               env=env).stdout)
    inputs = 2 * 2 * 2_000_000 * 4
    assert grown < 8 * inputs, f"peak memory grew by {grown / inputs:.1f}x the inputs"


# ---- the GEMM path (rbf and polynomial where d >= the crossover; FASTGAN_MMD_GEMM_MIN_D=1 forces it) ----

# The GEMM path's constants (csrc/mmd/mmd_cpu.cpp, mmd_cpu_kernel.h, mmd_gemm.cuh): the CPU's tile (the CUDA one
# sums each tile row in double, within the CPU's bound), the near-pair fraction, and the tile the tests give CUDA
# (FASTGAN_MMD_GEMM_TILE; 2048 by default) so that 300 x 270 samples take several tiles with ragged ends there too.
GEMM_TILE = 256
NEAR_FRACTION = 1 / 16
CUDA_TEST_TILE = 128


@pytest.fixture
def float32_matmul_precision():
    """Sets torch's float32 matmul precision for the test, and restores it."""
    before = torch.get_float32_matmul_precision()
    yield torch.set_float32_matmul_precision
    torch.set_float32_matmul_precision(before)


@pytest.fixture
def gemm_path(monkeypatch):
    monkeypatch.setenv("FASTGAN_MMD_GEMM_MIN_D", "1")
    monkeypatch.setenv("FASTGAN_MMD_GEMM_TILE", str(CUDA_TEST_TILE))


@pytest.mark.parametrize("shape", [(2, 2, 1), (37, 29, 5), (70, 90, 64), (300, 270, 40)], ids=str)
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("kernel", ["rbf", "polynomial"])
def test_gemm_path_matches_the_reference_in_float64(kernel, estimator, shape, device, generator, gemm_path):
    """The GEMM path at the float64 tile kernels' tolerances (300 x 270: several tiles and ragged ends)."""
    n, m, d = shape
    x, y = samples(n, m, d, torch.float64, device, generator)
    a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
    ours = fastgan.mmd(a, b, kernel=kernel, estimator=estimator)
    c, e = x.clone().requires_grad_(), y.clone().requires_grad_()
    expected = reference.mmd(c, e, kernel=kernel, estimator=estimator)
    torch.testing.assert_close(ours, expected.detach(), rtol=1e-12, atol=1e-13)
    for g, ge in zip(torch.autograd.grad(ours, (a, b)), torch.autograd.grad(expected, (c, e))):
        torch.testing.assert_close(g, ge, rtol=1e-10, atol=1e-13)


def rbf_gemm_error_bounds(x, y, bandwidths, estimator, u, product_error=0.0):
    """The GEMM path's error bounds (docs/DESIGN.md, section 10a), from float64 full matrices of the inputs as given.
    With a, b centred and s = |a|^2 + |b|^2, gamma = (2d + 10) u bounds the error of d2 in the product form
    (|a|^2 + |b|^2 - 2 a.b, with the centring's rounding); a pair with d2 < (NEAR_FRACTION - gamma) s is surely
    recomputed as differences, with error (d + 2) u d2 + 3 u sqrt(2 d2 s). Then per pair and bandwidth
    |dk| <= |c| delta exp(c max(d2 - delta, 0)) + 3u exp(c d2) (the exponential's own rounding), the slopes likewise;
    the value adds the rows' sums in T (GEMM_TILE values per tile row: (GEMM_TILE + 2) u sum |k|), the gradient the
    second GEMM's and the row sums' rounding ((m + 2) u sum_j |h_ij| (|a_ik| + |b_jk|)). Returns the bound of the
    value and the bounds of the gradients' entries. product_error: a GEMM's further error per product in units of
    |a||b| (3xTF32 on CUDA: 2^-21 for the two cross products' TF32 rounding and the dropped lo.lo), which adds
    2 product_error to gamma (|a||b| <= s / 2)."""
    d = x.shape[1]
    mean = torch.cat([x, y]).mean(0)
    gamma = (2 * d + 10) * u + 2 * product_error
    coefs = [-1 / (2 * s * s) for s in bandwidths]
    unbiased = estimator == "unbiased"

    def pair_bounds(a, b, same):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        s = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :]
        near = (d + 2) * u * d2 + 3 * u * (2 * d2 * s).sqrt()
        delta = torch.where(d2 < (NEAR_FRACTION - gamma) * s, near, gamma * s)
        k, dk, h, dh = (torch.zeros_like(d2) for _ in range(4))
        for c in coefs:
            e = torch.exp(c * d2)
            de = abs(c) * delta * torch.exp(c * (d2 - delta).clamp_min(0)) + 3 * u * e
            k, dk, h, dh = k + e, dk + de, h + 2 * c * e, dh + 2 * abs(c) * de
        if same:
            eye = torch.eye(len(a), dtype=torch.bool)
            dk, h, dh = dk.masked_fill(eye, 0), h.masked_fill(eye, 0), dh.masked_fill(eye, 0)
            if unbiased:
                k = k.masked_fill(eye, 0)
        return k, dk, h, dh

    a, b = x - mean, y - mean
    n, m = len(a), len(b)
    w_xx = 1 / (n * (n - 1)) if unbiased else 1 / (n * n)
    w_yy = 1 / (m * (m - 1)) if unbiased else 1 / (m * m)
    w_xy = 1 / (n * m)
    value_bound = 0.0
    grad_bounds = []
    for p, q, w_same in ((a, b, w_xx), (b, a, w_yy)):
        k_pp, dk_pp, h_pp, dh_pp = pair_bounds(p, p, True)
        k_pq, dk_pq, h_pq, dh_pq = pair_bounds(p, q, False)
        value_bound += w_same * float(dk_pp.sum() + (GEMM_TILE + 2) * u * k_pp.abs().sum())
        value_bound += w_xy * float(dk_pq.sum() + (GEMM_TILE + 2) * u * k_pq.abs().sum())  # twice: 2 w_xy in all
        bound = torch.zeros_like(p)
        for coef, others, h, dh in ((2 * w_same, p, h_pp, dh_pp), (2 * w_xy, q, h_pq, dh_pq)):
            diff = (p[:, None, :] - others[None, :, :]).abs()
            spread = p.abs()[:, None, :] + others.abs()[None, :, :]
            rows = len(others)
            bound += coef * ((dh[:, :, None] * diff).sum(1) + (rows + 2) * u * (h.abs()[:, :, None] * spread).sum(1)
                             + 2 * u * (h.abs()[:, :, None] * diff).sum(1))
        grad_bounds.append(bound)
    return value_bound, grad_bounds


@pytest.mark.parametrize("precision", ["highest", "high"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_gemm_path_error_is_within_its_bound_with_near_duplicates(dtype, estimator, precision, device, generator,
                                                                  gemm_path, float32_matmul_precision):
    """Fresh inputs far from the origin (offset 40: the centring's case), with near-duplicate pairs across and within
    the samples and a bandwidth of 0.01 against a spread of ~1 (where the product form without the near-pair
    recomputation is off by e^(2 gamma s / 0.01^2) in float32), against float64 on the same rounded inputs, at the
    bound of rbf_gemm_error_bounds. precision="high" lets CUDA's float32 GEMMs use TF32, which the CUDA path
    splits into 3xTF32 (on the CPU and the emulator, at::mm stays FP32 whatever the setting)."""
    float32_matmul_precision(precision)
    n, m, d = 300, 270, 40
    x = torch.randn(n, d, generator=generator, dtype=torch.float64) + 40
    y = 1.3 * torch.randn(m, d, generator=generator, dtype=torch.float64) + 40.2
    y[:30] = x[:30] + 1e-3 * torch.randn(30, d, generator=generator, dtype=torch.float64)
    x[30:40] = x[40:50] + 1e-4 * torch.randn(10, d, generator=generator, dtype=torch.float64)
    y[40] = x[50]  # an exact duplicate
    x, y = x.to(dtype).double(), y.to(dtype).double()  # the inputs as given, exactly
    bandwidths = (0.01, 0.1, 1.0, 5.0)
    a, b = (t.to(dtype, copy=True).to(device).requires_grad_() for t in (x, y))  # copies: x, y feed the bound
    ours = fastgan.mmd(a, b, bandwidths=bandwidths, estimator=estimator)
    grads = [g.cpu() for g in torch.autograd.grad(ours, (a, b))]
    ours = ours.detach().cpu()
    c, e = x.clone().requires_grad_(), y.clone().requires_grad_()
    expected = reference.mmd(c, e, bandwidths=bandwidths, estimator=estimator)
    expected_grads = torch.autograd.grad(expected, (c, e))
    u = torch.finfo(dtype).eps / 2
    tf32 = 2.0**-21 if precision == "high" and device == "cuda" and dtype == torch.float32 else 0.0
    value_bound, grad_bounds = rbf_gemm_error_bounds(x, y, bandwidths, estimator, u, tf32)
    value_bound += u * abs(float(expected.detach()))  # the result rounded to dtype
    assert abs(float(ours) - float(expected.detach())) <= value_bound
    for g, ge, bound in zip(grads, expected_grads, grad_bounds):
        error = (g.double() - ge).abs()
        assert (error <= bound + u * ge.abs()).all(), float((error / (bound + u * ge.abs())).max())


def test_gemm_path_keeps_the_tile_kernels_for_inf_and_nan(monkeypatch, device):
    """A non-finite mean (an inf or NaN input) cannot centre the data: the tile kernels' results (inf: k = 0). The
    CPU falls back to them (the same bits); CUDA recomputes every pair whose product form fails from the inputs as
    given, without a host sync (the same statistics, summed in another order)."""
    x, y = torch.randn(20, 8, device=device), torch.randn(30, 8, device=device)
    x[3, 2] = math.inf
    for poison in (None, math.nan):
        if poison is not None:
            y[0, 0] = poison
        monkeypatch.setenv("FASTGAN_MMD_GEMM_MIN_D", "1000000000")
        tile = fastgan.mmd(x, y)
        monkeypatch.setenv("FASTGAN_MMD_GEMM_MIN_D", "1")
        ours = fastgan.mmd(x, y)
        if poison is not None:
            assert bool(torch.isnan(ours) and torch.isnan(tile))
        elif device == "cpu" and not _simt_on():
            assert torch.equal(ours, tile)
        else:
            assert torch.isfinite(ours)
            torch.testing.assert_close(ours, tile, rtol=1e-6, atol=1e-7)


def _simt_on():
    return _simt.available() and _simt._C._simt_get()["on"]


@pytest.mark.parametrize("precision", ["medium"])
def test_gemm_path_steps_aside_where_float32_matmuls_may_use_bfloat16(precision, device, generator, monkeypatch,
                                                                      float32_matmul_precision):
    """On CUDA, "medium" lets a float32 GEMM round to bfloat16 (8 bits), where no error bound holds: the CUDA engine
    runs the tile kernels, the same bits as with the GEMM path off. (The CPU path's at::mm stays FP32.)"""
    float32_matmul_precision(precision)
    x, y = samples(50, 60, 64, torch.float32, device, generator)
    monkeypatch.setenv("FASTGAN_MMD_GEMM_MIN_D", "1000000000")
    tile = fastgan.mmd(x, y)
    monkeypatch.setenv("FASTGAN_MMD_GEMM_MIN_D", "1")
    ours = fastgan.mmd(x, y)
    if device == "cuda" or _simt_on():
        assert torch.equal(ours, tile)
    else:
        torch.testing.assert_close(ours, tile, rtol=1e-5, atol=1e-7)
