"""fused_gan_loss / fused_generator_loss against the float64 pure-PyTorch reference (fastgan.reference, which is
built on torch.nn.functional), in every dtype, size and reduction; plus gradients, numerics, bad input, opcheck,
gradcheck, compile and autocast."""

import pytest
import torch

import fastgan
from fastgan import reference
from helpers import DTYPES, TOLERANCES, at_thread_counts, needs_cuda, on_device

FAMILIES = reference.LOSS_FAMILIES


def paired(loss: str) -> bool:
    return FAMILIES[loss].paired


def discriminator_cases():
    """(loss, keyword arguments) of every option combination each family accepts, from the family table."""
    cases = []
    for name, family in FAMILIES.items():
        inputs = [{}] + ([{"inputs": "probs"}] if family.accepts_probs else [])
        for base in inputs:
            cases.append((name, base))
            if family.smoothable:
                cases.append((name, {**base, "label_smoothing": 0.1 if not base else 0.2}))
    return cases


def generator_cases():
    cases = []
    for name, family in FAMILIES.items():
        for base in [{}] + ([{"inputs": "probs"}] if family.accepts_probs else []):
            cases.append((name, base))
            if family.saturating_form:
                cases.append((name, {**base, "saturating": True}))
    return cases


D_CASES = discriminator_cases()
G_CASES = generator_cases()


def case_id(case):
    loss, kwargs = case
    return "-".join([loss] + [f"{k}={v}" for k, v in kwargs.items()])


def draw(shape, dtype, device, generator, probs=False):
    """Logits ~ 3 N(0, 1) (both signs, tails past |x| = 10), or probabilities strictly inside (0, 1)."""
    if probs:
        x = torch.rand(shape, generator=generator, dtype=torch.float64).clamp(1e-3, 1 - 1e-3)
    else:
        x = 3 * torch.randn(shape, generator=generator, dtype=torch.float64)
    return x.to(dtype).to(device)


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def check_close(actual, expected, dtype, magnitude=0.0):
    """actual (in dtype) against the float64 reference. For a reduced loss, `magnitude` is the same reduction of
    |per-element loss|: a sum whose terms cancel (Wasserstein, hinge G) is only as accurate as eps * sum |terms|."""
    tolerance = dict(TOLERANCES[dtype])
    tolerance["atol"] = max(tolerance["atol"], tolerance["rtol"] * float(magnitude))
    for a, e in zip(as_tuple(actual), as_tuple(expected)):
        assert a.dtype == dtype
        torch.testing.assert_close(a.double().cpu(), e.detach().cpu(), **tolerance)


def reduced_magnitude(per_element, reduction):
    """sum or mean of |per-element losses| (each half reduced over its own elements), as the loss reduces them."""
    if reduction == "none":
        return 0.0
    parts = as_tuple(per_element)
    return sum(p.abs().sum() if reduction == "sum" else p.abs().mean() for p in parts).item()


def run_both(ours, theirs, inputs, reduction, generator):
    """Forward and backward of fastgan's loss ours(*inputs, reduction=...) and of the reference theirs (float64, on
    the same rounded inputs), with the same upstream gradient. Returns (out, ref, grads, ref_grads, magnitude)."""
    inputs = [x.requires_grad_() for x in inputs]
    inputs64 = [x.detach().double().requires_grad_() for x in inputs]
    out, ref = ours(*inputs, reduction=reduction), theirs(*inputs64, reduction=reduction)
    # the upstream gradient is an input too: both sides get the same (rounded) values
    upstream = [torch.randn(o.shape, generator=generator, dtype=torch.float64).to(inputs[0].dtype)
                for o in as_tuple(ref)]
    torch.autograd.backward(as_tuple(ref), [u.double() for u in upstream])
    torch.autograd.backward(as_tuple(out), [u.to(inputs[0].device) for u in upstream])
    with torch.no_grad():
        per_element = theirs(*inputs64, reduction="none")
    grads, ref_grads = tuple(x.grad for x in inputs), tuple(x.grad for x in inputs64)
    return out, ref, grads, ref_grads, reduced_magnitude(per_element, reduction)


def run_discriminator(case, dtype, device, n_real, n_fake, reduction, generator):
    loss, kwargs = case
    probs = kwargs.get("inputs") == "probs"
    real = draw((n_real,), dtype, device, generator, probs)
    fake = draw((n_real if paired(loss) else n_fake,), dtype, device, generator, probs)
    return run_both(lambda r, f, **kw: fastgan.fused_gan_loss(r, f, loss=loss, **kwargs, **kw),
                    lambda r, f, **kw: reference.gan_loss(r, f, loss=loss, **kwargs, **kw), (real, fake), reduction,
                    generator)


SIZES = [1, 7, 256, 4097]
ONE_MILLION_NOT_EMULATED = pytest.mark.skip_simt("1e6 logits cost ~1 s a case there; test_simt runs every partition "
                                                 "of the kernels, up to 1.6e6 logits")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", D_CASES, ids=case_id)
def test_discriminator_loss_and_gradient(case, dtype, n, reduction, device, generator):
    out, ref, grads, ref_grads, magnitude = run_discriminator(case, dtype, device, n, n + 3, reduction, generator)
    check_close(out, ref, dtype, magnitude)
    check_close(grads, ref_grads, dtype)


@ONE_MILLION_NOT_EMULATED
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", D_CASES, ids=case_id)
def test_discriminator_one_million(case, dtype, device, generator):
    out, ref, grads, ref_grads, magnitude = run_discriminator(case, dtype, device, 1_000_000, 999_983, "mean",
                                                              generator)
    check_close(out, ref, dtype, magnitude)
    check_close(grads, ref_grads, dtype)


def run_generator(case, dtype, device, n, reduction, generator):
    loss, kwargs = case
    probs = kwargs.get("inputs") == "probs"
    inputs = [draw((n,), dtype, device, generator, probs)] + ([draw((n,), dtype, device, generator)]
                                                              if paired(loss) else [])
    return run_both(lambda f, r=None, **kw: fastgan.fused_generator_loss(f, loss=loss, real_logits=r, **kwargs, **kw),
                    lambda f, r=None, **kw: reference.generator_loss(f, loss=loss, real_logits=r, **kwargs, **kw),
                    inputs, reduction, generator)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", G_CASES, ids=case_id)
def test_generator_loss_and_gradient(case, dtype, n, reduction, device, generator):
    out, ref, grads, ref_grads, magnitude = run_generator(case, dtype, device, n, reduction, generator)
    check_close(out, ref, dtype, magnitude)
    check_close(grads, ref_grads, dtype)


@ONE_MILLION_NOT_EMULATED
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", G_CASES, ids=case_id)
def test_generator_one_million(case, dtype, device, generator):
    out, ref, grads, ref_grads, magnitude = run_generator(case, dtype, device, 1_000_000, "mean", generator)
    check_close(out, ref, dtype, magnitude)
    check_close(grads, ref_grads, dtype)


# ---- the CPU's autograd forward computes the gradients (csrc/losses/loss_autograd.cpp) ----


def backward_op_grads(case, first, second, reduction, generator_step):
    """The gradients of the backward op (the path a second backward and CUDA take) for a unit upstream gradient."""
    loss, kwargs = case
    ones = torch.ones((), dtype=first.dtype)
    if generator_step:
        args = (kwargs.get("saturating", False), kwargs.get("inputs", "logits"), reduction)
        return torch.ops.fastgan.generator_loss_backward(ones, first.detach(), second, loss, *args)
    args = (kwargs.get("label_smoothing", 0.0), kwargs.get("inputs", "logits"), reduction)
    return torch.ops.fastgan.gan_loss_backward(ones, first.detach(), second.detach(), loss, *args)


def assert_within_a_rounding(got, want, dtype, coef):
    """got and want computed by the same formula in two loops: the compiler may contract a derivative's products
    into an FMA in one and not the other (the ASan build did, for label smoothing's (1 - t) s(x) - t s(-x)), which
    moves a result by one rounding of a product no larger than coef (the loss's per-element weight) in magnitude,
    and a float16/bfloat16 result by one of its own ulps where that rounding crosses a rounding boundary."""
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(got.double(), want.double(), rtol=2 * eps, atol=2 * eps * coef)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("step", ["discriminator", "generator"])
def test_cpu_gradients_from_the_forward_are_the_backward_ops(step, dtype, reduction, generator):
    """For a unit upstream gradient the forward's gradients are the backward op's (the same formula: equal up to
    the FMA contraction the compiler chooses per loop); a second backward (retain_graph) recomputes them by the op,
    and the two add up to twice the first."""
    cases = G_CASES if step == "generator" else D_CASES
    for case in cases:
        loss, kwargs = case
        probs = kwargs.get("inputs") == "probs"
        first = draw((4099,), dtype, "cpu", generator, probs).requires_grad_()
        second = draw((4099 if paired(loss) or step == "discriminator" else 0,), dtype, "cpu", generator, probs)
        if step == "generator":
            second = second.requires_grad_() if paired(loss) else None
            out = fastgan.fused_generator_loss(first, loss=loss, real_logits=second, reduction=reduction, **kwargs)
        else:
            second.requires_grad_()
            out = fastgan.fused_gan_loss(first, second, loss=loss, reduction=reduction, **kwargs)
        expected = backward_op_grads(case, first, second, reduction, step == "generator")
        out.backward(retain_graph=True)
        inputs = [first] + ([second] if second is not None else [])
        once = [x.grad.clone() for x in inputs]
        coef = 1.0 / 4099 if reduction == "mean" else 1.0
        for got, want in zip(once, expected):
            assert_within_a_rounding(got, want.view_as(got), dtype, coef)
        out.backward()
        for x, g in zip(inputs, once):
            assert_within_a_rounding(x.grad, 2 * g, dtype, 2 * coef)


def test_cpu_backward_does_not_recompute_unless_asked_twice(generator):
    fake = draw((1000,), torch.float32, "cpu", generator).requires_grad_()
    out = fastgan.fused_generator_loss(fake)

    def backward_op_calls(**kwargs):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            out.backward(**kwargs)
        return sum(e.name == "fastgan::generator_loss_backward" for e in prof.events())

    assert backward_op_calls(retain_graph=True) == 0  # the forward's gradients, scaled
    assert backward_op_calls() == 1  # taken by the first backward: the second recomputes


def test_cpu_gradient_only_where_required_and_scaled_by_the_upstream(generator):
    real = draw((1000,), torch.float32, "cpu", generator)
    fake = draw((1001,), torch.float32, "cpu", generator).requires_grad_()
    out = fastgan.fused_gan_loss(real, fake)
    (3.0 * out).backward()
    assert real.grad is None
    _, expected = backward_op_grads(("bce", {}), real, fake, "mean", False)
    # 3 g rounded once more than the op's folded coefficient: within one rounding of float32
    torch.testing.assert_close(fake.grad, 3.0 * expected, rtol=2 * 2.0**-24, atol=0.0)


def test_cpu_gradients_in_the_forward_step_aside_for_dispatch_modes(generator):
    """A TorchDispatchMode (FakeTensor under torch.compile, FlopCounterMode, ...) must see the registered ops."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    real = draw((100,), torch.float32, "cpu", generator).requires_grad_()
    fake = draw((100,), torch.float32, "cpu", generator).requires_grad_()
    with Record() as record:
        fastgan.fused_gan_loss(real, fake).backward()
    assert "fastgan.gan_loss.default" in record.names
    assert "fastgan.gan_loss_backward.default" in record.names


def test_bce_is_exactly_the_torch_functional_loss(generator):
    """The docstring's promise, against torch.nn.functional directly (not through fastgan.reference)."""
    real, fake = draw((64, 1), torch.float64, "cpu", generator), draw((32, 1), torch.float64, "cpu", generator)
    F = torch.nn.functional
    expected = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
        fake, torch.zeros_like(fake)
    )
    torch.testing.assert_close(fastgan.fused_gan_loss(real, fake), expected, rtol=1e-14, atol=0)
    p_real, p_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected = F.binary_cross_entropy(p_real, torch.ones_like(p_real)) + F.binary_cross_entropy(
        p_fake, torch.zeros_like(p_fake)
    )
    torch.testing.assert_close(fastgan.fused_gan_loss(p_real, p_fake, inputs="probs"), expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_non_contiguous_and_multidimensional_inputs(dtype, device, generator):
    # PatchGAN-like maps [B, 1, H, W], sliced so that neither input is contiguous
    real_full = draw((8, 1, 30, 30), dtype, device, generator)
    fake_full = draw((8, 1, 30, 30), dtype, device, generator)
    real, fake = real_full[:, :, ::2, 1::3], fake_full.transpose(2, 3)
    assert not real.is_contiguous() and not fake.is_contiguous()
    for loss in fastgan.LOSSES:
        f = fake[:, :, ::2, 1::3] if paired(loss) else fake
        real_g, fake_g = real.detach().requires_grad_(), f.detach().requires_grad_()
        out = fastgan.fused_gan_loss(real_g, fake_g, loss=loss, reduction="none")
        ref = reference.gan_loss(real.double(), f.double(), loss=loss, reduction="none")
        check_close(out, ref, dtype)
        for o, r in zip(as_tuple(out), as_tuple(ref)):
            assert o.shape == r.shape
        total = fastgan.fused_gan_loss(real_g, fake_g, loss=loss)
        total.backward()
        r64, f64 = real.detach().double().requires_grad_(), f.detach().double().requires_grad_()
        reference.gan_loss(r64, f64, loss=loss).backward()
        check_close((real_g.grad, fake_g.grad), (r64.grad, f64.grad), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("magnitude", [100.0, 1e4])
def test_extreme_logits_are_finite_and_correct(magnitude, dtype, device):
    values = torch.tensor([magnitude, -magnitude, magnitude / 2, -magnitude / 3], dtype=torch.float64)
    x = values.to(dtype).to(device)
    for loss in FAMILIES:
        d = fastgan.fused_gan_loss(x, x.flip(0), loss=loss, reduction="none")
        d_ref = reference.gan_loss(x.double(), x.flip(0).double(), loss=loss, reduction="none")
        g = fastgan.fused_generator_loss(x, loss=loss, real_logits=x.flip(0) if paired(loss) else None,
                                         reduction="none")
        g_ref = reference.generator_loss(x.double(), loss=loss,
                                         real_logits=x.flip(0).double() if paired(loss) else None, reduction="none")
        for out, ref in [(d, d_ref), (g, g_ref)]:
            for o, r in zip(as_tuple(out), as_tuple(ref)):
                torch.testing.assert_close(o.double().cpu(), r.to(dtype).double().cpu(), **TOLERANCES[dtype])
                # A family that squares the logit: its exact loss, rounded to the dtype, overflows float16 past
                # |x| ~ 362 (0.5 x^2 > 65504), and then fastgan gives that same inf (the docs' claim of
                # finiteness leaves it out). Every other family is finite.
                overflows = reference.LOSS_FAMILIES[loss].squares_logit and dtype == torch.float16 and magnitude > 362
                assert torch.isfinite(o).all() != overflows, (loss, o)
    x_g = x.detach().requires_grad_()
    fastgan.fused_generator_loss(x_g, loss="bce", saturating=True).backward()
    assert torch.isfinite(x_g.grad).all()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduced_bce_keeps_the_digits_of_tiny_losses(reduction, device, generator):
    """A confident discriminator: every BCE term is exp(-|x|) ~ 1e-9 .. 3e-4, so the loss is a sum of tiny values.
    The CUDA kernels sum a thread's run of softplus terms as log1p(prod (1 + e_i) - 1) (math::SoftplusSum), which
    must keep their relative precision (1 + e_i in float32 would keep 2-4 of their digits), also beside terms of
    order 1 and huge logits whose linear part has a zero weight."""
    n = 100_003
    real = (8 + 12 * torch.rand(n, generator=generator, dtype=torch.float64))
    fake = -(8 + 12 * torch.rand(n, generator=generator, dtype=torch.float64))
    real[::1000] = torch.linspace(-3, 3, len(real[::1000]), dtype=torch.float64)  # a few misclassified ones
    real[1::997], fake[1::997] = 1e4, -1e4  # linear parts weighted 0: exactly no contribution
    for loss in ("bce", "rpgan"):  # the BCE-with-logits families: halves and paired
        r32, f32 = real.float().to(device), fake.float().to(device)
        got = fastgan.fused_gan_loss(r32, f32, loss=loss, reduction=reduction)
        want = reference.gan_loss(r32.double(), f32.double(), loss=loss, reduction=reduction)
        per_element = reference.gan_loss(r32.double(), f32.double(), loss=loss, reduction="none")
        check_close(got, want, torch.float32, reduced_magnitude(per_element, reduction))
        # no absolute slack: the float32 tolerance's atol (2e-6) alone would pass a zero loss here
        assert abs(got.double().item() - want.item()) <= 2e-5 * abs(want.item()), loss


def test_nan_in_nan_out_and_infinite_limits(device):
    nan, inf = float("nan"), float("inf")
    for loss in fastgan.LOSSES:
        real = torch.tensor([0.5, nan, -1.0], device=device)
        fake = torch.tensor([0.1, 0.2, 0.3], device=device)
        out, stats = fastgan.fused_gan_loss(real, fake, loss=loss, return_stats=True)
        assert torch.isnan(out), loss
        assert torch.isnan(stats["d_real"]), loss
        assert torch.isnan(fastgan.fused_generator_loss(real, loss=loss, real_logits=fake if paired(loss) else None))
    # Infinite logits give the limit: BCE(+inf, 1) = 0, BCE(-inf, 0) = 0 (aten returns NaN for both).
    real = torch.tensor([inf, 2.0], device=device)
    fake = torch.tensor([-inf, -2.0], device=device)
    expected = torch.nn.functional.softplus(torch.tensor([-2.0, -2.0])).sum().item()
    torch.testing.assert_close(fastgan.fused_gan_loss(real, fake, reduction="sum").item(), expected)
    torch.testing.assert_close(fastgan.fused_generator_loss(real, reduction="sum").item(),
                               torch.nn.functional.softplus(torch.tensor(-2.0)).item())


def test_probabilities_outside_unit_interval_give_nan(device):
    real = torch.tensor([0.5, 1.5], device=device, requires_grad=True)
    fake = torch.tensor([0.1, -0.2], device=device, requires_grad=True)
    out = fastgan.fused_gan_loss(real, fake, inputs="probs", reduction="none")
    assert torch.isnan(out[0][1]) and torch.isnan(out[1][1])
    assert torch.isfinite(out[0][0]) and torch.isfinite(out[1][0])
    fastgan.fused_gan_loss(real, fake, inputs="probs").backward()
    assert torch.isnan(real.grad[1]) and torch.isnan(fake.grad[1])
    assert torch.isfinite(real.grad[0]) and torch.isfinite(fake.grad[0])


def test_empty_inputs(device):
    empty, x = torch.empty(0, device=device), torch.randn(5, device=device)
    with pytest.raises(ValueError, match="real_logits is empty"):
        fastgan.fused_gan_loss(empty, x)
    with pytest.raises(ValueError, match="fake_logits is empty"):
        fastgan.fused_generator_loss(empty)
    torch.testing.assert_close(fastgan.fused_gan_loss(empty, x, reduction="sum"),
                               reference.gan_loss(empty, x, reduction="sum"))
    real_losses, fake_losses = fastgan.fused_gan_loss(empty, x, reduction="none")
    assert real_losses.shape == (0,) and fake_losses.shape == (5,)
    assert fastgan.fused_generator_loss(empty, reduction="none").shape == (0,)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", D_CASES, ids=case_id)
def test_stats_match_the_eager_statistics(case, dtype, device, generator):
    loss, kwargs = case
    probs = kwargs.get("inputs") == "probs"
    real = draw((300,), dtype, device, generator, probs)
    fake = draw((300 if paired(loss) else 200,), dtype, device, generator, probs)
    _, stats = fastgan.fused_gan_loss(real, fake, loss=loss, return_stats=True, **kwargs)
    expected = reference.gan_loss_stats(real.double(), fake.double(), loss=loss, **kwargs)
    assert stats.keys() == expected.keys()
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    for key, value in stats.items():
        assert value.dtype == acc and not value.requires_grad
        torch.testing.assert_close(value.double().cpu(), expected[key].cpu(), **TOLERANCES[acc])


def test_reductions_are_deterministic_and_thread_count_independent(generator):
    real = draw((1_000_003,), torch.float32, "cpu", generator)
    fake = draw((777_777,), torch.float32, "cpu", generator)
    results = at_thread_counts(lambda: fastgan.fused_gan_loss(real, fake, return_stats=True), (1, 2, 3))
    for loss, stats in results[1:]:
        assert torch.equal(loss, results[0][0])
        for key in stats:
            assert torch.equal(stats[key], results[0][1][key])


def test_modules_match_functional(generator):
    real, fake = draw((16, 1), torch.float32, "cpu", generator), draw((16, 1), torch.float32, "cpu", generator)
    for loss in fastgan.LOSSES:
        assert torch.equal(fastgan.nn.GANLoss(loss)(real, fake), fastgan.fused_gan_loss(real, fake, loss=loss))
        g_real = real if paired(loss) else None
        assert torch.equal(fastgan.nn.GeneratorLoss(loss)(fake, g_real),
                           fastgan.fused_generator_loss(fake, loss=loss, real_logits=g_real))
    assert "hinge" in repr(fastgan.nn.GANLoss("hinge"))


# ---- bad input ----


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x: fastgan.fused_gan_loss(x.int(), x), TypeError, "real_logits must be a float32, float64"),
        (lambda x: fastgan.fused_gan_loss(x, x.to(torch.complex64)), TypeError, "fake_logits must be a float32"),
        (lambda x: fastgan.fused_generator_loss(x.long()), TypeError, "fake_logits must be a float32"),
        (lambda x: fastgan.fused_gan_loss(x, x.double()), TypeError, "must have the same dtype"),
        (lambda x: fastgan.fused_gan_loss(x, x, loss="minimax"), ValueError,
         "loss must be one of " + ", ".join(map(repr, reference.LOSSES)) + ", got 'minimax'"),
        (lambda x: fastgan.fused_generator_loss(x, loss="mse"), ValueError, "loss must be one of"),
        (lambda x: fastgan.fused_gan_loss(x, x, label_smoothing=1.0), ValueError, r"label_smoothing must lie in \[0, 1\)"),
        (lambda x: fastgan.fused_gan_loss(x, x, label_smoothing=-0.1), ValueError, "label_smoothing must lie"),
        (lambda x: fastgan.fused_gan_loss(x, x, loss="hinge", label_smoothing=0.1), ValueError,
         "label_smoothing applies to loss='bce' and 'least_squares' only"),
        (lambda x: fastgan.fused_gan_loss(x, x[:3], loss="rpgan"), ValueError, "must have the same shape"),
        (lambda x: fastgan.fused_generator_loss(x, loss="rpgan", real_logits=x[:3]), ValueError, "same shape"),
        (lambda x: fastgan.fused_generator_loss(x, loss="rpgan"), ValueError, "loss='rpgan' needs real_logits"),
        (lambda x: fastgan.fused_generator_loss(x, real_logits=x), ValueError, "real_logits is used by loss='rpgan' only"),
        (lambda x: fastgan.fused_gan_loss(x, x, loss="hinge", inputs="probs"), ValueError, "inputs='probs' applies"),
        (lambda x: fastgan.fused_gan_loss(x, x, inputs="probabilities"), ValueError, "inputs must be 'logits' or 'probs'"),
        (lambda x: fastgan.fused_generator_loss(x, loss="hinge", saturating=True), ValueError, "saturating=True applies"),
        (lambda x: fastgan.fused_gan_loss(x, x, reduction="avg"), ValueError, "reduction must be 'mean', 'sum' or 'none'"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call(torch.randn(6))


@needs_cuda
def test_mismatched_devices():
    with pytest.raises(ValueError, match="must be on the same device"):
        fastgan.fused_gan_loss(torch.randn(4), torch.randn(4, device="cuda"))


# ---- torch.library / autograd machinery ----


def op_samples(generator):
    x = lambda n: draw((n,), torch.float64, "cpu", generator)  # noqa: E731
    ops = torch.ops.fastgan
    samples = []
    for loss, kwargs in D_CASES:
        probs = kwargs.get("inputs") == "probs"
        n_fake = 5 if paired(loss) else 3
        real = draw((5,), torch.float64, "cpu", generator, probs).requires_grad_()
        fake = draw((n_fake,), torch.float64, "cpu", generator, probs).requires_grad_()
        for reduction in ("mean", "none"):
            args = (kwargs.get("label_smoothing", 0.0), kwargs.get("inputs", "logits"), reduction)
            samples.append((ops.gan_loss.default, (real, fake, loss, *args)))
            n_grad = (5 if paired(loss) else 8) if reduction == "none" else None
            grad = x(n_grad) if n_grad else x(1)[0]
            samples.append((ops.gan_loss_backward.default, (grad, real, fake, loss, *args)))
    for loss, kwargs in G_CASES:
        probs = kwargs.get("inputs") == "probs"
        fake = draw((4,), torch.float64, "cpu", generator, probs).requires_grad_()
        real = x(4).requires_grad_() if paired(loss) else None
        for reduction in ("mean", "none"):
            args = (kwargs.get("saturating", False), kwargs.get("inputs", "logits"), reduction)
            samples.append((ops.generator_loss.default, (fake, real, loss, *args)))
            grad = x(4) if reduction == "none" else x(1)[0]
            samples.append((ops.generator_loss_backward.default, (grad, fake, real, loss, *args)))
    return samples


@pytest.mark.skip_simt("opcheck tests the registration (schemas, fake kernels, autograd), which the emulator "
                       "shares with the CPU; it costs 16 s there")
def test_opcheck_every_op(generator, device):
    for op, args in op_samples(generator):
        torch.library.opcheck(op, on_device(args, device))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", D_CASES, ids=case_id)
def test_discriminator_gradcheck_and_gradgradcheck(case, reduction, generator):
    loss, kwargs = case
    probs = kwargs.get("inputs") == "probs"
    real = draw((6,), torch.float64, "cpu", generator, probs).requires_grad_()
    fake = draw((6 if paired(loss) else 4,), torch.float64, "cpu", generator, probs).requires_grad_()

    def fn(r, f):
        return fastgan.fused_gan_loss(r, f, loss=loss, reduction=reduction, **kwargs)

    assert torch.autograd.gradcheck(fn, (real, fake))
    assert torch.autograd.gradgradcheck(fn, (real, fake))


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("case", G_CASES, ids=case_id)
def test_generator_gradcheck_and_gradgradcheck(case, reduction, generator):
    loss, kwargs = case
    probs = kwargs.get("inputs") == "probs"
    fake = draw((5,), torch.float64, "cpu", generator, probs).requires_grad_()
    inputs = (fake,) + ((draw((5,), torch.float64, "cpu", generator).requires_grad_(),) if paired(loss) else ())

    def fn(f, *real):
        return fastgan.fused_generator_loss(f, loss=loss, real_logits=real[0] if real else None,
                                            reduction=reduction, **kwargs)

    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


def test_autocast_computes_in_float32(device, generator):
    real = draw((64, 1), torch.float32, device, generator)
    fake = draw((64, 1), torch.float32, device, generator)
    low = torch.bfloat16 if device == "cpu" else torch.float16
    real_low, fake_low = real.to(low).requires_grad_(), fake.to(low).requires_grad_()
    with torch.autocast(device_type=device, dtype=low):
        d = fastgan.fused_gan_loss(real_low, fake_low)
        g = fastgan.fused_generator_loss(fake_low)
    assert d.dtype == torch.float32 and g.dtype == torch.float32
    torch.testing.assert_close(d, fastgan.fused_gan_loss(real_low.float(), fake_low.float()))
    torch.testing.assert_close(g, fastgan.fused_generator_loss(fake_low.float()))
    d.backward()
    assert real_low.grad.dtype == low  # the gradient comes back in the input's dtype


def test_torch_compile_fullgraph(device, generator):
    torch._dynamo.reset()

    def d_step(real, fake):
        loss, stats = fastgan.fused_gan_loss(real, fake, loss="hinge", return_stats=True)
        return loss * 2, stats["d_real"]

    def g_step(fake):
        return fastgan.fused_generator_loss(fake)

    real = draw((33, 1), torch.float32, device, generator).requires_grad_()
    fake = draw((31, 1), torch.float32, device, generator).requires_grad_()
    compiled_d = torch.compile(d_step, fullgraph=True)
    compiled_g = torch.compile(g_step, fullgraph=True)
    loss, d_real = compiled_d(real, fake)
    loss.backward()
    expected_loss, expected_d_real = d_step(real.detach(), fake.detach())
    torch.testing.assert_close(loss, expected_loss)
    torch.testing.assert_close(d_real, expected_d_real)
    r64, f64 = real.detach().double().requires_grad_(), fake.detach().double().requires_grad_()
    (2 * reference.gan_loss(r64, f64, loss="hinge")).backward()
    check_close((real.grad, fake.grad), (r64.grad, f64.grad), torch.float32)
    fake.grad = None
    compiled_g(fake).backward()
    f64.grad = None
    reference.generator_loss(f64).backward()
    check_close(fake.grad, f64.grad, torch.float32)


# ---- CPU and CUDA compute the same function (on a GPU, or the CUDA kernels on the SIMT emulator) ----


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", D_CASES, ids=case_id)
def test_cuda_matches_cpu(case, dtype, generator, gpu):
    loss, kwargs = case
    for n in (5, 70_000, gpu.size(3_000_001)):
        real_cpu, fake_cpu = (draw((n,), dtype, "cpu", generator, kwargs.get("inputs") == "probs") for _ in range(2))
        cpu_out, cpu_stats = fastgan.fused_gan_loss(real_cpu, fake_cpu, loss=loss, return_stats=True, **kwargs)
        with gpu:
            gpu_out, gpu_stats = fastgan.fused_gan_loss(gpu.to(real_cpu), gpu.to(fake_cpu), loss=loss,
                                                        return_stats=True, **kwargs)
            again = fastgan.fused_gan_loss(gpu.to(real_cpu), gpu.to(fake_cpu), loss=loss, **kwargs)
        torch.testing.assert_close(gpu_out.cpu(), cpu_out, **TOLERANCES[dtype])
        for key in cpu_stats:
            torch.testing.assert_close(gpu_stats[key].cpu(), cpu_stats[key], **TOLERANCES[cpu_stats[key].dtype])
        assert torch.equal(again, gpu_out)  # deterministic on the device too


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("loss", [next(n for n, f in FAMILIES.items() if f.paired is layout) for layout in (False, True)])
def test_cuda_bits_do_not_depend_on_alignment(loss, dtype, generator, gpu):
    """A view that starts 1 element into its storage is not 16-byte aligned, so its forward and backward take the
    element-by-element path; the aligned copy takes the 16-byte one. Both put the same elements in the same slots:
    equal bits, not merely close values. Sizes: one chunk, mid (57,600: a PatchGAN map), many chunks."""
    for n in (1000, 57_600, gpu.size(3_000_001)):
        storage = gpu.to(draw((2, n + 1), dtype, "cpu", generator))
        views = (storage[0, 1:], storage[1, 1:])
        copies = tuple(v.clone() for v in views)
        assert views[0].data_ptr() % 16 != 0 and copies[0].data_ptr() % 16 == 0
        results = []
        for real, fake in (views, copies):
            real, fake = real.detach().requires_grad_(), fake.detach().requires_grad_()
            with gpu:
                value, stats = fastgan.fused_gan_loss(real, fake, loss=loss, return_stats=True)
                per_element = as_tuple(fastgan.fused_gan_loss(real, fake, loss=loss, reduction="none"))
                grads = torch.autograd.grad(per_element, (real, fake), [torch.ones_like(p) for p in per_element])
            results.append([value, *stats.values(), *per_element, *grads])
        for ours, theirs in zip(*results):
            assert torch.equal(ours, theirs)


@needs_cuda
def test_cuda_reduction_reuses_its_ticket_across_streams_and_graphs(generator):
    """The multi-block forward keeps one ticket counter per stream, reset by the last block. Calls that alternate
    between streams, and a CUDA graph replayed twice (which allocates its own counter), give the eager bits."""
    real, fake = (draw((3_000_001,), torch.float32, "cuda", generator) for _ in range(2))
    expected = fastgan.fused_gan_loss(real, fake)
    side = torch.cuda.Stream()
    for _ in range(3):
        with torch.cuda.stream(side):
            on_side = fastgan.fused_gan_loss(real, fake)
        torch.cuda.current_stream().wait_stream(side)
        assert torch.equal(on_side, expected)
        assert torch.equal(fastgan.fused_gan_loss(real, fake), expected)
    mmd_x, mmd_y = (draw((3000, 16), torch.float32, "cuda", generator) for _ in range(2))
    assert torch.equal(fastgan.mmd(mmd_x, mmd_y), fastgan.mmd(mmd_x, mmd_y))  # MMD shares the stream's ticket
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fastgan.fused_gan_loss(real, fake)  # warm-up outside the capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = fastgan.fused_gan_loss(real, fake)
    for _ in range(2):
        captured.zero_()
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(captured, expected)
    assert torch.equal(fastgan.fused_gan_loss(real, fake), expected)


@needs_cuda
def test_cuda_forward_allocates_only_its_outputs_in_the_steady_state(generator):
    """The grid reduction's partials and ticket live in one buffer per stream (R::stream_scratch), so a 3M-logit
    forward (hundreds of chunks) allocates what a single-chunk forward (no workspace) allocates: its outputs."""
    big = [draw((3_000_001,), torch.float32, "cuda", generator) for _ in range(2)]
    small = [draw((100,), torch.float32, "cuda", generator) for _ in range(2)]

    def allocations(real, fake):
        torch.cuda.synchronize()
        before = torch.cuda.memory_stats()["allocation.all.allocated"]
        fastgan.fused_gan_loss(real, fake, return_stats=True)
        torch.cuda.synchronize()
        return torch.cuda.memory_stats()["allocation.all.allocated"] - before

    allocations(*big)  # the stream's buffer grows once
    assert allocations(*big) == allocations(*small)


@pytest.mark.parametrize("dtype, max_ulps", [(torch.float32, 2.0), (torch.float64, 4.0)], ids=str)
def test_elementwise_bce_is_accurate_to_a_few_ulps(dtype, max_ulps):
    """softplus(+-x), the per-element BCE, over a dense sweep and the tails, against logaddexp(+-x, 0) in float64
    (exact for float32 inputs). Relative error in ulps of the result; results below the smallest normal number
    are held to the same absolute spacing as it (subnormals have no more precision)."""
    x = torch.cat([torch.linspace(-60, 60, 1_200_001, dtype=torch.float64), torch.logspace(-8, 2, 20001, dtype=torch.float64)])
    x = torch.cat([x, -x]).to(dtype)
    real_losses, fake_losses = fastgan.fused_gan_loss(x, x, reduction="none")  # softplus(-x), softplus(x)
    zero = torch.zeros((), dtype=torch.float64)
    info = torch.finfo(dtype)
    for ours, exact in [(fake_losses, torch.logaddexp(x.double(), zero)), (real_losses, torch.logaddexp(-x.double(), zero))]:
        ulps = (ours.double() - exact).abs() / (info.eps * exact.abs().clamp_min(info.tiny))
        assert ulps.max().item() <= max_ulps, (ulps.max().item(), x[ulps.argmax()].item())
