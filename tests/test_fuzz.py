"""Property-based fuzzing of every public function and raw op (hypothesis): arguments drawn from the whole domain
(64-bit edge integers, non-finite and extreme floats, empty and 0-d shapes, strided and expanded views, every
dtype), with one invariant for all: each call either raises TypeError or ValueError with a message, or returns the
reference's answer (the definition), with every output element written. Anything else (another exception, a wrong
or partly written result, a crash) fails, and hypothesis shrinks it to the smallest example.

`make test` runs a bounded number of examples per property (the "ci" profile below); `make fuzz` runs thousands
("fuzz"); `make test-asan` runs these under AddressSanitizer, which also sees a read or write outside a tensor.
"""

import math
import os

import numpy as np
import pytest
import torch

import fastgan
from fastgan import reference

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

settings.register_profile("ci", max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
settings.register_profile("fuzz", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("FASTGAN_FUZZ_PROFILE", "ci"))

ops = torch.ops.fastgan
END = 2**63
CLEAR = (TypeError, ValueError)
FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# The values at which code breaks: the ends of every integer width, and of every float range.
edge_ints = st.sampled_from([0, 1, 2, 3, 4, 7, 255, 256, 257, 2**31 - 1, 2**31, 2**32, 2**62, END - 257, END - 256,
                             END - 3, END - 2, END - 1, END, 2**64 - 1, 2**64, -1, -2**63, -2**64])
any_int = edge_ints | st.integers(-2**66, 2**66)
small_count = st.sampled_from([0, 1, 2, 3, 5, 7, 8, 255, 256, 257, 1023, 1025]) | st.integers(0, 3000)
edge_floats = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, 1e-310, 5e-324, 65504.0, 65520.0, 3.3e38, 3.5e38,
                               1e308, -1e308, math.inf, -math.inf, math.nan])
any_float = edge_floats | st.floats(allow_nan=True, allow_infinity=True)
dtypes = st.sampled_from(FLOATS + (torch.int32, torch.int64, torch.bool, torch.complex64))
devices = st.sampled_from(["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])


@st.composite
def tensors(draw, dtype=None, shape=None, finite=False, min_dims=0, max_dims=3):
    """A tensor of any float dtype (or `dtype`), any small shape (empty and 0-d included), values from everywhere
    (or finite), as a contiguous tensor, a strided slice, a transpose or an expanded view."""
    dtype = draw(st.sampled_from(FLOATS)) if dtype is None else dtype
    if shape is None:
        shape = tuple(draw(st.lists(st.sampled_from([0, 1, 2, 3, 5, 8, 17]), min_size=min_dims, max_size=max_dims)))
    values = st.floats(-1e4, 1e4) if finite else (edge_floats | st.floats(-1e3, 1e3))
    count = int(np.prod(shape)) if shape else 1
    data = draw(st.lists(values, min_size=count, max_size=count))
    base = torch.tensor(data, dtype=torch.float64).reshape(shape).to(dtype)
    layout = draw(st.sampled_from(["contiguous", "strided", "transposed", "expanded"]))
    if layout == "strided" and base.dim() >= 1:
        wide = torch.zeros(shape[:-1] + (2 * shape[-1],), dtype=dtype)
        wide[..., ::2] = base
        return wide[..., ::2]
    if layout == "transposed" and base.dim() >= 2:
        return base.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "expanded" and base.dim() >= 1 and count > 0:
        return base.flatten()[:1].expand(shape)
    return base


def clear_or(call):
    """call()'s result, or None when it raised a clear error (TypeError or ValueError with a message)."""
    try:
        return call()
    except CLEAR as error:
        assert str(error), "an error without a message"
        return None


# ---- streams ----

@given(n=small_count | edge_ints, seed=any_int, offset=any_int, stream=any_int, device=devices)
def test_random_bits(n, seed, offset, stream, device):
    assume(not (0 <= n and 0 <= offset < END and offset + n <= END) or n <= 3000)
    got = clear_or(lambda: fastgan.random_bits(n, seed=seed, offset=offset, stream=stream, device=device))
    valid = (0 <= n and 0 <= seed < 2**64 and 0 <= stream < 2**64 and 0 <= offset and offset + max(n, 1) <= END)
    assert (got is not None) == valid
    if got is not None:
        assert torch.equal(got.cpu(), reference.philox_words(n, seed=seed, offset=offset, stream=stream))


LATENT_OPTIONS = {"truncation": any_float, "low": any_float, "high": any_float, "p": any_float}


@given(n=small_count, dim=st.sampled_from([0, 1, 2, 3, 17, 2**40]), dist=st.sampled_from(
    ["normal", "uniform", "truncated_normal", "bernoulli", "sphere", "gauss"]),
       options=st.dictionaries(st.sampled_from(list(LATENT_OPTIONS)), any_float, max_size=3), offset=any_int,
       dtype=dtypes, device=devices, seed=any_int)
def test_latent(n, dim, dist, options, offset, dtype, device, seed):
    assume(n * dim <= 10**5)
    z = clear_or(lambda: fastgan.latent(n, dim, dist=dist, seed=seed, offset=offset, device=device, dtype=dtype,
                                        **options))
    if z is None:
        return
    assert z.shape == (n, dim) and z.dtype == dtype
    values = z.double().cpu()
    if dist == "sphere":
        assert torch.isnan(values).sum() == 0 or dim == 0
        return
    assert torch.isfinite(values).all()
    if dist == "uniform":
        low = torch.tensor(options.get("low", 0.0), dtype=torch.float64).to(dtype).double()
        high = torch.tensor(options.get("high", 1.0), dtype=torch.float64).to(dtype).double()
        assert (values >= low).all() and (values < high).all()
    if dist == "bernoulli":
        assert ((values == 0) | (values == 1)).all()
    if dist == "truncated_normal":
        bound = torch.tensor(options["truncation"], dtype=torch.float64).to(dtype).double()
        assert (values.abs() <= bound * (1 + 1e-2)).all()


@given(n=small_count, dist=st.sampled_from(["exponential", "logistic", "cauchy", "laplace", "gumbel", "weibull", "frechet"]),
       params=st.dictionaries(st.sampled_from(["rate", "loc", "scale", "shape"]), any_float, max_size=2),
       dtype=st.sampled_from(FLOATS), offset=any_int, device=devices)
def test_inverse_transform(n, dist, params, dtype, offset, device):
    x = clear_or(lambda: fastgan.inverse_transform(n, dist, seed=1, offset=offset, device=device, dtype=dtype,
                                                   **params))
    if x is not None:
        assert x.shape == (n,) and not torch.isnan(x).any()  # a value past the dtype's range rounds to inf, not NaN


@given(table=tensors(min_dims=1, max_dims=2), n=small_count, probs=st.booleans(), offset=any_int,
       validate=st.booleans(), with_edges=st.booleans())
def test_sample_cdf(table, n, probs, offset, validate, with_edges):
    edges = None
    if with_edges and table.dim() >= 1:
        edges = torch.linspace(-1, 1, table.shape[-1] + 1)
    result = clear_or(lambda: fastgan.sample_cdf(table, n, seed=3, offset=offset, probs=probs, edges=edges,
                                                 validate=validate))
    if result is None:
        return
    indices = result[0] if edges is not None else result
    bins = table.shape[-1]
    assert ((indices >= 0) & (indices < bins)).all()  # whatever the table holds: in range
    if validate and table.dtype in (torch.float32, torch.float64) and table.numel() > 0:
        rows = table.reshape(-1, bins).double()
        cdf = rows.cumsum(1) if probs else rows
        words = torch.stack([reference.philox_words(n, seed=3, offset=offset, stream=r)
                             for r in range(rows.shape[0])])
        u = (words >> 8).double() * 2**-24 if table.dtype == torch.float32 else words.double() * 2**-32
        table_t = cdf.to(table.dtype)
        target = (u.to(table.dtype) * table_t[:, -1:]).double()
        expected = torch.searchsorted(table_t.double().contiguous(), target.contiguous(), right=True).clamp_max(bins - 1)
        assert torch.equal(indices.reshape(rows.shape[0], n), expected)


# ---- losses ----

LOSS_NAMES = st.sampled_from(list(fastgan.LOSSES) + ["gauss"])


@given(real=tensors(), fake=tensors(), loss=LOSS_NAMES, smoothing=st.sampled_from([0.0, 0.1, 0.999, 1.0, -0.1,
                                                                                   math.nan]),
       reduction=st.sampled_from(["mean", "sum", "none", "max"]), inputs=st.sampled_from(["logits", "probs"]))
def test_fused_gan_loss(real, fake, loss, smoothing, reduction, inputs):
    out = clear_or(lambda: fastgan.fused_gan_loss(real, fake, loss=loss, label_smoothing=smoothing,
                                                  reduction=reduction, inputs=inputs))
    if out is None:
        return
    try:
        expected = reference.gan_loss(real.double(), fake.double(), loss=loss, label_smoothing=smoothing,
                                      reduction=reduction, inputs=inputs)
    except (RuntimeError, ValueError):  # the reference's own domain (aten's BCELoss refuses p outside [0, 1])
        return
    for o, e in zip(out if isinstance(out, tuple) else (out,), expected if isinstance(expected, tuple) else (expected,)):
        assert o.dtype == real.dtype
        e = e.to(real.dtype).double()
        o = o.double()
        both_nan = torch.isnan(o) & torch.isnan(e)
        # NaN in, NaN out; elsewhere the float64 reference rounded to the dtype, within its tolerance
        # (aten's BCE gives NaN at infinite logits where fastgan gives the limit: only finite inputs compared)
        if torch.isfinite(real).all() and torch.isfinite(fake).all():
            tolerance = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 5e-2}
            close = torch.isclose(o, e, rtol=tolerance[real.dtype], atol=tolerance[real.dtype]) | both_nan
            close |= torch.isinf(e) & (o == e)
            assert close.all(), (o, e)


@given(fake=tensors(), real=st.none() | tensors(), loss=LOSS_NAMES, saturating=st.booleans(),
       reduction=st.sampled_from(["mean", "sum", "none"]))
def test_fused_generator_loss(fake, real, loss, saturating, reduction):
    out = clear_or(lambda: fastgan.fused_generator_loss(fake, loss=loss, saturating=saturating, real_logits=real,
                                                        reduction=reduction))
    if out is not None:
        assert out.dtype == fake.dtype
        if torch.isfinite(fake).all() and (real is None or torch.isfinite(real).all()):
            expected = reference.generator_loss(fake.double(), loss=loss, saturating=saturating,
                                                real_logits=None if real is None else real.double(),
                                                reduction=reduction).to(fake.dtype).double()
            tolerance = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 5e-2}
            assert torch.allclose(out.double(), expected, rtol=tolerance[fake.dtype], atol=tolerance[fake.dtype],
                                  equal_nan=True)


@given(grad=tensors(max_dims=1), real=tensors(max_dims=1), fake=tensors(max_dims=1), loss=LOSS_NAMES,
       reduction=st.sampled_from(["mean", "sum", "none"]))
def test_raw_loss_backward(grad, real, fake, loss, reduction):
    result = clear_or(lambda: ops.gan_loss_backward(grad, real, fake, loss, 0.0, "logits", reduction))
    if result is not None:
        assert result[0].shape == real.shape and result[1].shape == fake.shape


# ---- MMD ----

@given(x=tensors(finite=True, min_dims=2, max_dims=2), y=tensors(finite=True, min_dims=2, max_dims=2),
       kernel=st.sampled_from(["rbf", "laplacian", "energy", "polynomial", "gauss"]),
       estimator=st.sampled_from(["unbiased", "biased"]),
       bandwidths=st.none() | st.lists(any_float, min_size=0, max_size=3))
def test_mmd(x, y, kernel, estimator, bandwidths):
    assume(x.numel() + y.numel() <= 600)
    options = {} if kernel in ("energy", "polynomial") else {"bandwidths": bandwidths}
    value = clear_or(lambda: fastgan.mmd(x, y, kernel=kernel, estimator=estimator, **options))
    if value is None:
        return
    x64, y64 = x.to(value.dtype).double(), y.to(value.dtype).double()
    expected = reference.mmd(x64, y64, kernel=kernel, estimator=estimator,
                             **({"bandwidths": bandwidths} if bandwidths is not None and options else {}))
    # MMD^2 is a difference of means of kernel values: its rounding error scales with their size, not with its own
    # (equal samples give 0 from terms of 3e13 with the polynomial kernel)
    both = torch.cat([x64, y64])
    if kernel == "polynomial":
        magnitude = (float((both @ both.T).abs().max()) / x.shape[1] + 1) ** 3
    elif kernel == "energy":
        magnitude = float(torch.cdist(both, both).max())
    else:
        magnitude = len(bandwidths) if bandwidths else len(reference.MMD_BANDWIDTHS)
    tolerance = 1e-12 if value.dtype == torch.float64 else 1e-5
    assert abs(float(value) - float(expected)) <= tolerance * (1 + magnitude) * x.shape[1], (value, expected)


# ---- chains and rejection ----

@given(logits=tensors(min_dims=2, max_dims=2), init=st.booleans(), offset=any_int, validate=st.booleans())
def test_mh_gan_select(logits, init, offset, validate):
    init_logit = torch.zeros(logits.shape[0], dtype=logits.dtype) if init and logits.dim() == 2 else None
    result = clear_or(lambda: fastgan.mh_gan_select(logits, seed=5, init_logit=init_logit, offset=offset,
                                                    validate=validate))
    if result is None:
        return
    index, moved = result
    chains, k = logits.shape
    assert ((index >= -1) & (index < k)).all()
    if validate:
        words = reference.philox_words(chains * k, seed=5, offset=offset).view(chains, k)
        log_u = ((words >> 8) + 1).to(logits.dtype).mul(2.0**-24) if logits.dtype == torch.float32 else \
            (words.double() + 1) * 2.0**-32
        expected_index, expected_moved = reference.mh_gan_select(logits, log_u.to(logits.dtype).log(), init_logit)
        assert torch.equal(index, expected_index) and torch.equal(moved, expected_moved)


@given(log_ratio=tensors(dtype=torch.float32, max_dims=1) | tensors(dtype=torch.float64, max_dims=1), offset=any_int,
       seed=any_int)
def test_accept_compact(log_ratio, offset, seed):
    assume(-2**63 <= seed < 2**63 and -2**63 <= offset < 2**63)  # the raw op's int64 arguments
    result = clear_or(lambda: ops.accept_compact(log_ratio, seed, offset, 0))
    assert (result is None) == (offset < 0 or offset + log_ratio.numel() > END)
    if result is not None:
        index, count = result
        words = reference.philox_words(log_ratio.numel(), seed=seed % 2**64, offset=offset)
        u = ((words >> 8) + 1).double() * 2**-24 if log_ratio.dtype == torch.float32 else \
            (words.double() + 1) * 2**-32
        accepted = torch.nonzero(u.to(log_ratio.dtype).log() < log_ratio.flatten()).flatten()
        assert int(count) == len(accepted) and torch.equal(index[:int(count)], accepted)
        assert (index[int(count):] == -1).all()


@given(logits=tensors(max_dims=1), max_logit=any_float, gamma=st.none() | any_float, eps=any_float, offset=any_int)
def test_drs(logits, max_logit, gamma, eps, offset):
    result = clear_or(lambda: fastgan.drs_accept(logits, max_logit=max_logit, gamma=gamma, eps=eps, seed=0, offset=offset))
    if result is not None:
        accept, f = result
        assert accept.dtype == torch.bool and accept.shape == logits.shape and not torch.isnan(f).any()


@given(chains=st.integers(0, 40), d=st.integers(0, 5), step=edge_ints, burn_in=st.integers(0, 3),
       thin=st.integers(0, 3), step_size=any_float, slots=st.integers(0, 3))
def test_raw_mh_step(chains, d, step, burn_in, thin, step_size, slots):
    assume(-2**63 <= step < 2**63)
    state, proposal = torch.randn(chains, d, dtype=torch.float64), torch.randn(chains, d, dtype=torch.float64)
    log_prob, proposal_lp = torch.randn(chains, dtype=torch.float64), torch.randn(chains, dtype=torch.float64)
    accepted = torch.zeros(chains, dtype=torch.int64)
    samples = torch.full((chains, slots, d), math.nan, dtype=torch.float64)
    before = state.clone()
    result = clear_or(lambda: ops.mh_step_(state, log_prob, proposal, proposal_lp, accepted, samples, step, None,
                                           burn_in, thin, step_size, 7, 0) or True)
    if result is None:
        assert torch.equal(state, before)  # refused: nothing written
        return
    # a proposal may overflow to inf (step_size 1e308 times a normal: the rounded value), never be NaN
    assert not torch.isnan(proposal).any() and ((accepted == 0) | (accepted == 1)).all()


# ---- toy data, metrics ----

@given(n=small_count, modes=any_int, std=any_float, radius=any_float, offset=any_int, stream=any_int)
def test_toy_ring(n, modes, std, radius, offset, stream):
    assume(modes < 10**6)
    result = clear_or(lambda: fastgan.toy.ring(n, modes=modes, std=std, radius=radius, seed=0, offset=offset,
                                               stream=stream))
    if result is not None:
        x, centres = result
        assert x.shape == (n, 2) and centres.shape == (modes, 2) and torch.isfinite(x).all()


@given(real=tensors(finite=True, min_dims=2, max_dims=2), fake=tensors(finite=True, min_dims=2, max_dims=2),
       metric=st.sampled_from(["kid", "fid", "prdc"]), k=st.sampled_from([0, 1, 2, 5]))
def test_feature_metrics(real, fake, metric, k):
    assume(real.numel() + fake.numel() <= 400)
    call = {"kid": lambda: fastgan.metrics.kid(real, fake), "fid": lambda: fastgan.metrics.fid(real, fake),
            "prdc": lambda: fastgan.metrics.prdc(real, fake, k=k)}[metric]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FID's singular-covariance warning
        result = clear_or(call)
    if result is None:
        return
    values = result.values() if isinstance(result, dict) else [float(result)]
    assert all(math.isfinite(v) for v in values)


@given(grads=tensors(min_dims=1), centre=any_float, weight=any_float)
def test_gradient_penalty(grads, centre, weight):
    result = clear_or(lambda: fastgan.gradient_penalty(grads, centre=centre, weight=weight, return_norms=True))
    if result is None:
        return
    penalty, norms = result
    expected_norms = grads.double().reshape(grads.shape[0], -1).norm(dim=1)
    expected = weight * ((expected_norms - centre) ** 2).mean()
    assert norms.shape == (grads.shape[0],)
    if torch.isfinite(grads).all() and math.isfinite(float(expected)):
        tolerance = {torch.float64: 1e-10, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 2e-2}
        t = tolerance[grads.dtype]
        assert math.isclose(float(penalty), float(expected.to(grads.dtype)), rel_tol=t, abs_tol=t) or \
            math.isinf(float(penalty.float()))
