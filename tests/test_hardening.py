"""Regression tests of issue 24's findings (an adversarial user's probes): no input corrupts memory, leaks memory
contents or answers wrong. Numbered as the issue numbers them; test_fuzz.py keeps the rest of the domain covered."""

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import fastgan
from fastgan import reference

END = 2**63  # a stream's indices are 0 .. 2**63 - 1
ops = torch.ops.fastgan


# ---- 1, 2: draws at the stream's end: the stream's true words, or a ValueError; never memory past the output ----

@pytest.mark.parametrize("n", [1, 7, 256, 1000])
def test_the_last_words_of_a_stream_are_the_streams_words(n, device):
    got = fastgan.random_bits(n, seed=3, offset=END - n, stream=9, device=device).cpu()
    assert torch.equal(got, reference.philox_words(n, seed=3, offset=END - n, stream=9))
    z = fastgan.latent(n, 1, seed=3, offset=END - n, device=device)
    assert torch.isfinite(z).all()


@pytest.mark.parametrize("call", [
    lambda d: fastgan.random_bits(1, seed=0, offset=END - 256 + 300, device=d),
    lambda d: fastgan.random_bits(16, seed=0, offset=END - 3, device=d),
    lambda d: fastgan.random_bits(1, seed=0, offset=END, device=d),
    lambda d: fastgan.latent(2, 3, seed=0, offset=(END - 1) // 3 - 1, device=d),
    lambda d: fastgan.latent(2, 2**40, seed=0, offset=2**30, device=d),  # offset x dim past the end
    lambda d: fastgan.inverse_transform(8, "exponential", seed=0, offset=END - 4, device=d),
    lambda d: fastgan.LatentSampler(4, seed=0, offset=END // 4, device=d),
    lambda d: fastgan.toy.ring(8, offset=END - 4, seed=0, device=d),
    lambda d: fastgan.mh_gan_select(torch.zeros(2, 200, device=d), seed=0, offset=END - 256),
    lambda d: fastgan.sample_cdf(torch.ones(3, device=d), 10, seed=0, offset=END - 5, probs=True),
    lambda d: ops.accept_compact(torch.zeros(10_000, device=d), 0, END - 100, 0),
], ids=["bits-loop", "bits-16", "bits-at-end", "latent", "latent-dim", "inverse", "sampler", "ring", "mh_gan_select",
        "sample_cdf", "accept_compact"])
def test_a_draw_past_the_stream_end_is_refused(call, device):
    with pytest.raises(ValueError, match="offset|stream"):
        call(device)


def test_a_raw_fill_near_the_end_writes_its_slice_only(device):
    """fill_random_bits_(b[:8], 0, 2**63 - 20, 0) wrote 12 elements past the slice: now the 8 words, and past the
    end a ValueError with nothing written."""
    buffer = torch.full((32,), -7, dtype=torch.int64, device=device)
    ops.fill_random_bits_(buffer[:8], 0, END - 20, 0)
    assert torch.equal(buffer[:8].cpu(), reference.philox_words(8, seed=0, offset=END - 20))
    assert (buffer[8:] == -7).all()
    with pytest.raises(ValueError, match="past the end of the stream"):
        ops.fill_random_bits_(buffer[8:16], 0, END - 4, 0)
    assert (buffer[8:] == -7).all()


def test_a_device_offset_past_the_end_gives_nan_everywhere(device):
    """The position tensor is read on the device, where a kernel cannot raise: every element is NaN (the fill
    leaves nothing unwritten), on the CPU as on CUDA."""
    for offset, position in ((1_000, END - 1_010), (1_000, END - 1), (0, -5), (2**62, 2**62)):
        out = torch.full((4, 5), 123.0, device=device)
        ops.fill_latent_(out, "normal", 0.0, 1.0, 0, offset, torch.tensor(position, device=device), 0)
        assert torch.isnan(out).all(), position


def test_every_fill_writes_every_element(device, generator):
    """Outputs prefilled with a sentinel are overwritten everywhere, at odd sizes and offsets (no element left
    holding earlier memory)."""
    for n in (1, 3, 255, 257, 4099):
        offset = int(torch.randint(0, 2**40, (), generator=generator))
        bits = torch.full((n,), -1, dtype=torch.int64, device=device)
        ops.fill_random_bits_(bits, 5, offset, 0)
        assert (bits >= 0).all()
        for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            out = torch.full((n,), float("nan"), dtype=dtype, device=device)
            ops.fill_latent_(out, "normal", 0.0, 1.0, 5, offset, None, 0)
            assert torch.isfinite(out).all()


def test_mh_step_past_the_end_is_refused():
    state = torch.zeros(4, 2)
    args = (state, torch.zeros(4), torch.zeros(4, 2), torch.zeros(4), torch.zeros(4, dtype=torch.int64),
            torch.zeros(4, 1, 2))
    last = END // 8 - 2
    ops.mh_step_(*args, last, None, 0, 1, 0.1, 0, 0)
    with pytest.raises(ValueError, match="past the end of the stream"):
        ops.mh_step_(*args, last + 1, None, 0, 1, 0.1, 0, 0)
    with pytest.raises(ValueError, match="step_offset"):
        ops.mh_step_(*args, 0, torch.tensor(last + 1), 0, 1, 0.1, 0, 0)


# ---- 4: a log_prob that reuses its output buffer ----

def test_metropolis_hastings_with_a_log_prob_that_reuses_its_buffer():
    """torch.sum(..., out=buf) returns the same storage on every call: the chains must not compare a state with
    itself (every move accepted), so the run equals the one with a fresh tensor per call."""
    buffer = torch.empty(512, dtype=torch.float64)

    def reusing(x):
        return torch.sum(-0.5 * x * x, 1, out=buffer)

    x0 = torch.zeros(512, 2, dtype=torch.float64)
    ours, rate = fastgan.metropolis_hastings(reusing, x0, 40, step_size=2.5, seed=4)
    fresh, fresh_rate = fastgan.metropolis_hastings(lambda x: torch.sum(-0.5 * x * x, 1), x0, 40, step_size=2.5,
                                                    seed=4)
    assert torch.equal(ours, fresh) and torch.equal(rate, fresh_rate)
    assert rate.mean() < 0.6  # step 2.5 on N(0, I): far from "every move accepted"


def test_mh_step_refuses_aliased_log_densities():
    lp = torch.zeros(4)
    with pytest.raises(ValueError, match="share memory"):
        ops.mh_step_(torch.zeros(4, 2), lp, torch.zeros(4, 2), lp, torch.zeros(4, dtype=torch.int64),
                     torch.zeros(4, 1, 2), 0, None, 0, 1, 0.1, 0, 0)


# ---- 5: arguments that made results wrong ----

@pytest.mark.parametrize("low, high", [(-math.inf, math.inf), (-3e38, 3e38), (1.0, 1.0), (0.0, math.nan)])
def test_uniform_bounds_that_cannot_give_a_finite_draw_are_refused(low, high):
    with pytest.raises(ValueError, match="uniform"):
        fastgan.latent(4, 1, dist="uniform", low=low, high=high, seed=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_narrow_uniforms_stay_below_one(dtype, device):
    """1e6 draws: with 24-bit uniforms rounded to the dtype, 1.0 came 21 (float16) and 192 (bfloat16) times in 1e5.
    Now the dtype's own digits: an exact grid of 2^11 (2^8) values in [0, 1), each as likely (chi-square)."""
    u = fastgan.latent(1_000_000, 1, dist="uniform", seed=1, device=device, dtype=dtype)[:, 0].float().cpu()
    assert u.max() < 1 and u.min() >= 0
    digits = 11 if dtype == torch.float16 else 8
    counts = torch.bincount((u * 2**digits).long(), minlength=2**digits).double()
    assert counts.numel() == 2**digits and (u * 2**digits == (u * 2**digits).floor()).all()
    expected = 1_000_000 / 2**digits
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    import scipy.stats
    assert scipy.stats.chi2(2**digits - 1).sf(chi2) > 1e-4


def test_a_uniform_that_would_round_up_to_high_is_kept_below_it(device):
    """a + (b - a) u rounds up to b for the largest u (0.5 + 0.5 (1 - 2^-24) is a tie in float32, rounded to 1.0):
    such a draw is the largest float32 below high instead. A word with that u, found in the stream and drawn."""
    top = 9_320_226  # the first word of stream (0, 0) whose top 24 bits are all ones
    assert int(fastgan.random_bits(1, seed=0, offset=top)) >> 8 == 2**24 - 1
    value = fastgan.latent(1, 1, dist="uniform", low=0.5, high=1.0, seed=0, offset=top, device=device)
    assert float(value) == float(np.nextafter(np.float32(1), np.float32(0)))


@pytest.mark.parametrize("kwargs", [{"max_logit": math.nan}, {"max_logit": math.inf}, {"max_logit": 1.0, "gamma": math.nan},
                                    {"max_logit": 1.0, "eps": -1.0}, {"max_logit": 1.0, "eps": 0.0}])
def test_drs_refuses_parameters_that_make_nan(kwargs):
    with pytest.raises(ValueError):
        fastgan.drs_accept(torch.randn(10), seed=0, **kwargs)


def test_drs_refuses_integer_logits():
    with pytest.raises(TypeError, match="logits"):
        fastgan.drs_accept(torch.arange(10), max_logit=9.0, seed=0)


@pytest.mark.parametrize("dist, params", [("exponential", {"rate": math.inf}), ("logistic", {"loc": math.nan}),
                                          ("cauchy", {"scale": math.inf}), ("gumbel", {"scale": 1e300}),
                                          ("laplace", {"scale": 0.0})])
def test_inverse_transform_parameters_are_checked(dist, params):
    with pytest.raises(ValueError, match=list(params)[0]):
        fastgan.inverse_transform(4, dist, seed=0, **params)


@pytest.mark.parametrize("dist, a, b", [("truncated_normal", 2.0, 0.0), ("exponential", 0.0, 0.0),
                                        ("bernoulli", math.nan, 0.0), ("bernoulli", 0.5, 1.0),
                                        ("normal", 0.0, -1.0), ("uniform", 2.0, 1.0)])
def test_the_raw_fill_checks_its_parameters_in_cpp(dist, a, b, device):
    with pytest.raises(ValueError, match=dist):
        ops.fill_latent_(torch.empty(4, device=device), dist, a, b, 0, 0, None, 0)


@pytest.mark.parametrize("probs, dtype", [([1e308, 1e308], torch.float64), ([3e38, 3e38], torch.float32)])
def test_sample_cdf_refuses_probabilities_whose_sum_overflows(probs, dtype):
    with pytest.raises(ValueError, match="overflows"):
        fastgan.sample_cdf(torch.tensor(probs, dtype=dtype), 10, seed=0, probs=True)


@pytest.mark.parametrize("cdf, edges, message", [
    ([-1.0, 0.0, 1.0], None, ">= 0"),
    ([0.2, 0.5, 1.0], [0.0, 2.0, 1.0, 3.0], "non-decreasing"),
    ([0.2, 0.5, 1.0], [0.0, math.nan, 1.0, 3.0], "finite"),
])
def test_sample_cdf_refuses_tables_that_are_not_distributions(cdf, edges, message):
    with pytest.raises(ValueError, match=message):
        fastgan.sample_cdf(torch.tensor(cdf), 10, seed=0,
                           edges=None if edges is None else torch.tensor(edges))


def test_fid_from_stats_refuses_a_matrix_that_is_not_a_covariance():
    mu = torch.zeros(3, dtype=torch.float64)
    for bad in (-torch.eye(3, dtype=torch.float64), torch.tensor([[1.0, 2.0, 0], [0, 1, 0], [0, 0, 1]])):
        with pytest.raises(ValueError, match="not"):
            fastgan.metrics.fid_from_stats(mu, bad, mu, torch.eye(3))
        with pytest.raises(ValueError, match="not"):
            fastgan.metrics.fid_from_stats(mu, torch.eye(3), mu, bad)


def test_a_meta_tensor_beside_a_cpu_tensor_is_refused():
    for real, fake in ((torch.randn(4, device="meta"), torch.randn(4)), (torch.randn(4), torch.randn(4, device="meta"))):
        with pytest.raises(ValueError, match="same device"):
            fastgan.fused_gan_loss(real, fake)
    with pytest.raises(ValueError, match="same device"):
        fastgan.mmd(torch.randn(4, 2, device="meta"), torch.randn(4, 2))


def test_a_complex_gradient_is_refused_not_cast():
    x = torch.randn(5, dtype=torch.float64)
    with pytest.raises(TypeError, match="real floating"):
        ops.gan_loss_backward(torch.tensor(1 + 2j, dtype=torch.complex128), x, x, "bce", 0.0, "logits", "mean")
    with pytest.raises(TypeError, match="real floating"):
        ops.mmd_backward(torch.tensor(1 + 2j, dtype=torch.complex128), x[:, None], x[:, None], [1.0], "rbf", True)


def test_a_raw_fill_into_a_tensor_that_requires_grad_is_refused():
    with pytest.raises(ValueError, match="requires? grad"):
        ops.fill_latent_(torch.empty(4, requires_grad=True), "normal", 0.0, 1.0, 0, 0, None, 0)


# ---- 6: the third derivative ----

@pytest.mark.parametrize("loss", fastgan.LOSSES)
def test_a_third_derivative_follows_the_reference(loss, generator):
    real = torch.randn(6, generator=generator, dtype=torch.float64).requires_grad_()
    fake = torch.randn(6, generator=generator, dtype=torch.float64).requires_grad_()

    def third(fn):
        value = fn(real, fake)
        (g,) = torch.autograd.grad(value, real, create_graph=True)
        if not g.requires_grad:  # a loss linear in the logits (wasserstein): the higher derivatives are 0
            return (None, None)
        (g2,) = torch.autograd.grad(g.square().sum(), real, create_graph=True, allow_unused=True)
        if g2 is None or not g2.requires_grad:  # a loss linear in the logits (wasserstein)
            return (None, None)
        return torch.autograd.grad(g2.sum(), (real, fake), allow_unused=True)

    ours = third(lambda r, f: fastgan.fused_gan_loss(r, f, loss=loss))
    expected = third(lambda r, f: reference.gan_loss(r, f, loss=loss))
    for o, e in zip(ours, expected):
        if e is None:
            assert o is None or (o == 0).all()
        else:
            torch.testing.assert_close(o, e, rtol=1e-12, atol=1e-14)


# ---- 8: clear errors ----

def test_n_zero_gives_an_empty_result():
    def propose(k):
        return torch.rand(k, 3), torch.zeros(k)

    samples, rate = fastgan.rejection_sample(lambda x: torch.zeros(len(x)), propose, 0.0, 0, seed=0)
    assert samples.shape == (0, 3) and math.isnan(rate)
    generator = torch.nn.Linear(2, 3)
    critic = torch.nn.Linear(3, 1)
    assert fastgan.mh_gan(generator, critic, 0, 2, seed=0).shape == (0, 3)
    x, rate = fastgan.discriminator_rejection_sampling(generator, critic, 0, 2, seed=0)
    assert x.shape == (0, 3) and math.isnan(rate)


@pytest.mark.parametrize("call, error, message", [
    (lambda: fastgan.random_bits(1, seed=0, offset=2**63), ValueError, r"offset must lie in \[0, 2\*\*63\)"),
    (lambda: fastgan.metrics.kid(torch.zeros(5, 0), torch.zeros(5, 0)), ValueError, "d >= 1"),
    (lambda: fastgan.metrics.fid(torch.zeros(5, 0), torch.zeros(5, 0)), ValueError, "d >= 1"),
    (lambda: fastgan.mmd(torch.zeros(5, 0), torch.zeros(5, 0), kernel="polynomial"), ValueError, "d >= 1"),
    (lambda: fastgan.mmd(torch.tensor(1.0), torch.tensor(2.0)), ValueError, r"\[n, d\]"),
    (lambda: fastgan.toy.ring(8, modes=0, seed=0), ValueError, "modes must be >= 1"),
    (lambda: fastgan.metrics.mode_coverage(torch.zeros(5, 2), torch.zeros(0, 2), 0.1), ValueError, "centre"),
    (lambda: fastgan.latent(2, 2, seed=0, dtype=torch.int32), TypeError, "dtype"),
    (lambda: fastgan.latent(2, 2, seed=0, dist="normal", truncation=0.7), ValueError, "truncation applies"),
    (lambda: fastgan.latent(2, 2, seed=0, dist="normal", low=0.0), ValueError, "low applies"),
    (lambda: fastgan.discriminator_rejection_sampling(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1), 5, 2, seed=0,
                                                      batch=0), ValueError, "batch must be >= 1"),
    (lambda: fastgan.mh_gan(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1), 5, 2, seed=0, chains_per_batch=0),
     ValueError, "chains_per_batch must be >= 1"),
    (lambda: fastgan.rejection_sample(lambda x: x[:, 0], lambda k: (torch.rand(k, 1), torch.zeros(k)),
                                      lambda x: x, 5, seed=0), TypeError, "log_envelope"),
    (lambda: fastgan.metrics.GANMetrics(pr_k=0), ValueError, "pr_k must be >= 1"),
    (lambda: fastgan.metrics.GANMetrics(kid_options={"subset": 3}), ValueError, "kid_options"),
])
def test_bad_arguments_get_an_error_naming_them(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("value", [[0.1, 0.2], np.zeros(3), "x", None])
@pytest.mark.parametrize("call, name", [
    (lambda v: fastgan.fused_gan_loss(v, torch.zeros(3)), "real"),
    (lambda v: fastgan.mmd(v, torch.zeros(3, 1)), "x"),
    (lambda v: fastgan.sample_cdf(v, 3, seed=0), "cdf"),
    (lambda v: fastgan.mh_gan_select(v, seed=0), "logits"),
    (lambda v: fastgan.metrics.kid(v, torch.zeros(3, 1)), "real_feats"),
    (lambda v: fastgan.drs_accept(v, max_logit=1.0, seed=0), "logits"),
])
def test_non_tensors_get_a_type_error_naming_the_argument(call, name, value):
    with pytest.raises(TypeError, match=name):
        call(value)


def test_sparse_quantized_and_nested_tensors_get_a_type_error():
    dense = torch.rand(4, 3)
    for odd in (dense.to_sparse(), torch.quantize_per_tensor(dense, 0.1, 0, torch.quint8),
                torch.nested.nested_tensor([dense, dense])):
        with pytest.raises(TypeError, match="dense"):
            fastgan.mmd(odd, dense)


def test_gan_metrics_checks_each_batch_when_it_comes():
    metrics = fastgan.metrics.GANMetrics(("kid",))
    metrics.update(torch.rand(10, 4), real=True)
    with pytest.raises(ValueError, match="width"):
        metrics.update(torch.rand(10, 5), real=False)
    with pytest.raises(TypeError, match="float32 or float64"):
        metrics.update(torch.ones(10, 4, dtype=torch.int64), real=False)
    with pytest.raises(ValueError, match="non-finite"):
        metrics.update(torch.full((10, 4), math.nan), real=False)


def test_numpy_integers_are_integers():
    x, y = torch.rand(20, 3, dtype=torch.float64), torch.rand(20, 3, dtype=torch.float64)
    assert fastgan.metrics.kid(x, y, degree=np.int64(3)) == fastgan.metrics.kid(x, y, degree=3)
    assert torch.equal(fastgan.random_bits(np.int32(5), seed=np.uint64(7), offset=np.int64(2)),
                       fastgan.random_bits(5, seed=7, offset=2))


def test_toy_streams_wrap_like_every_stream_id():
    x, _ = fastgan.toy.ring(16, seed=0, stream=2**64 - 1)
    assert torch.isfinite(x).all()


def test_a_nan_start_warns_that_the_chain_cannot_move():
    x0 = torch.tensor([[0.0], [math.nan]], dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="never move"):
        fastgan.metropolis_hastings(lambda x: -x[:, 0] ** 2, x0, 3, step_size=0.1, seed=0)


def test_torch_func_transforms_are_refused_with_their_reason():
    """The loss autograd is in C++ (a Python autograd runs Python every step), which functorch cannot transform:
    documented in the README; use torch.autograd.grad."""
    with pytest.raises(RuntimeError, match="functorch"):
        torch.func.grad(lambda x: fastgan.fused_generator_loss(x))(torch.randn(4))


def test_seed_none_under_compile_names_the_fix():
    torch._dynamo.reset()
    compiled = torch.compile(lambda: fastgan.latent(4, 3) * 2, fullgraph=True)
    with pytest.raises(Exception, match="pass seed="):
        compiled()


# ---- 9: found by a fresh-clone walk through the README ----

def test_importing_the_source_folder_says_so(tmp_path):
    """A checkout with no build in it, imported in place of an installed fastgan (Python started in the
    repository's root after a non-editable install), is named as the cause, not blamed on torch. The installed
    package here is a stand-in: a folder with __init__.py and an extension file, later on sys.path."""
    import os
    import shutil
    installed = tmp_path / "site" / "fastgan"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    (installed / "_C.cpython-311-x86_64-linux-gnu.so").write_text("")
    checkout = tmp_path / "checkout"
    source = os.path.dirname(fastgan.__file__)  # (an editable install's __path__ lists its extension's folder too)
    shutil.copytree(source, checkout / "fastgan", ignore=shutil.ignore_patterns("_C*", "__pycache__"))
    code = ("import sys\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__.lower()]\n"
            "import fastgan\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    result = subprocess.run([sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True)
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "source folder with no compiled extension" in result.stderr and str(installed) in result.stderr


def test_warnings_are_not_errors_in_a_normal_call():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastgan.latent(3, 2, seed=0, dist="uniform", low=-1, high=1)
        fastgan.sample_cdf(torch.tensor([0.1, 0.9]), 5, seed=0, probs=True)


def test_renamed_functions_keep_their_old_names_for_one_release():
    """drs is DRS's acceptance test (drs_accept), not the sampler; fastgan.mcmc held rejection samplers too (now
    fastgan.chains and fastgan.rejection). The old names work and say where the new ones are."""
    logits = torch.randn(8, dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match="drs_accept"):
        old = fastgan.drs(logits, max_logit=3.0, seed=1)
    new = fastgan.drs_accept(logits, max_logit=3.0, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(old, new))
    import importlib
    mcmc = importlib.import_module("fastgan.mcmc")
    with pytest.warns(DeprecationWarning, match="fastgan.chains.metropolis_hastings"):
        assert mcmc.metropolis_hastings is fastgan.metropolis_hastings
