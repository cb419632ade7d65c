"""fastgan's random streams and samplers: the known answer, the documented word -> value maps (against scipy's
inverse CDFs, in float64), distribution tests (scipy.stats), offsets, sharding, determinism, devices, bad input."""

import math
import os

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import fastgan
from fastgan import reference
from helpers import at_thread_counts, needs_cuda, on_device


def test_known_answer():
    words = fastgan.random_bits(8, seed=0)
    assert [f"{int(w):08x}" for w in words[:4]] == ["6627e8d5", "e169c58d", "bc57ac4c", "9b00dbd8"]
    assert words.dtype == torch.int64 and (words >= 0).all() and (words < 2**32).all()


def test_words_match_philox_written_from_the_paper(device):
    """Against fastgan.reference.philox_words at fresh seeds, streams and offsets with every 32-bit half in use
    (the block counter's high word too), unaligned to the CPU's SIMD groups."""
    for _ in range(3):
        seed, stream = (int(v) + 2**63 * int(v % 2) for v in torch.randint(0, 2**63 - 1, (2,)))  # 64-bit patterns
        offset, n = int(torch.randint(0, 2**50, ())), 1037
        got = fastgan.random_bits(n, seed=seed, offset=offset, stream=stream, device=device).cpu()
        assert torch.equal(got, reference.philox_words(n, seed=seed, offset=offset, stream=stream))


def test_words_are_a_pure_function_of_seed_stream_and_index(device):
    full = fastgan.random_bits(10_000, seed=2**64 - 5, stream=3, device=device)
    for offset, n in [(1, 5), (4, 4), (517, 3000), (9_999, 1)]:
        assert torch.equal(fastgan.random_bits(n, seed=2**64 - 5, offset=offset, stream=3, device=device),
                           full[offset:offset + n])
    assert not torch.equal(fastgan.random_bits(100, seed=2**64 - 5, stream=4, device=device), full[:100])
    assert not torch.equal(fastgan.random_bits(100, seed=2**64 - 6, stream=3, device=device), full[:100])


def uniforms(words: np.ndarray, kind: str, precise: bool) -> np.ndarray:
    """The documented word -> uniform maps (philox.h), in float64."""
    if precise:
        w = words.astype(np.float64)
        return {"closed_low": w * 2.0**-32, "open_low": (w + 1) * 2.0**-32, "open": (w + 0.5) * 2.0**-32}[kind]
    w24, w23 = (words >> 8).astype(np.float64), (words >> 9).astype(np.float64)
    return {"closed_low": w24 * 2.0**-24, "open_low": (w24 + 1) * 2.0**-24, "open": (w23 + 0.5) * 2.0**-23}[kind]


def expected_values(dist_name, words, params, precise):
    """The draw the documented formulas give for these words, computed in float64 with numpy/scipy."""
    if dist_name == "normal":
        u1 = uniforms(words[0::2], "open_low", precise)
        u2 = uniforms(words[1::2], "closed_low", precise)
        r = np.sqrt(-2 * np.log(u1))
        # the angle is rounded once in the compute type (documented): near cos = 0 that rounding is the error
        theta = 2 * np.pi * u2 if precise else (np.float32(2 * np.pi) * u2.astype(np.float32)).astype(np.float64)
        z = np.empty(len(words))
        z[0::2], z[1::2] = r * np.cos(theta), r * np.sin(theta)
        return z
    if dist_name == "uniform":
        u = uniforms(words, "closed_low", precise)
        return params["low"] + (params["high"] - params["low"]) * u
    if dist_name == "bernoulli":
        return (uniforms(words, "closed_low", precise) < params["p"]).astype(np.float64)
    if dist_name == "truncated_normal":
        t = params["truncation"]
        u = uniforms(words, "open", precise)
        return np.sqrt(2) * scipy.special.erfinv((2 * u - 1) * math.erf(t / math.sqrt(2)))
    u = uniforms(words, UNIFORM_OF[dist_name], precise)
    if dist_name == "exponential":
        return -np.log(u) / params["rate"]
    if dist_name == "weibull":
        return params["scale"] * (-np.log(u)) ** (1 / params["shape"])
    ppf = {"logistic": scipy.stats.logistic.ppf, "cauchy": scipy.stats.cauchy.ppf,
           "laplace": scipy.stats.laplace.ppf, "gumbel": scipy.stats.gumbel_r.ppf}[dist_name]
    return ppf(u, loc=params["loc"], scale=params["scale"])


LATENT_CASES = [("normal", {}), ("uniform", {"low": -2.0, "high": 3.0}), ("truncated_normal", {"truncation": 1.5}),
                ("truncated_normal", {"truncation": 4.0}), ("bernoulli", {"p": 0.3})]
INVERSE_CASES = [("exponential", {"rate": 2.5}), ("logistic", {"loc": 1.0, "scale": 0.5}),
                 ("cauchy", {"loc": -1.0, "scale": 2.0}), ("laplace", {"loc": 0.0, "scale": 1.5}),
                 ("gumbel", {"loc": 0.5, "scale": 2.0}), ("weibull", {"shape": 1.7, "scale": 2.0}),
                 ("weibull", {"shape": 0.4, "scale": 0.5})]
# The uniform each distribution reads, from the C++ table (sampling.h): the documented map of its words.
UNIFORM_OF = {name: uniform for name, _, _, uniform in fastgan._ext._C.distributions()}


def draw(dist_name, params, n, dtype, device, seed, offset=0):
    if dist_name in fastgan.sampling.INVERSE_TRANSFORM_DISTS:
        return fastgan.inverse_transform(n, dist_name, seed=seed, offset=offset, device=device, dtype=dtype, **params)
    return fastgan.latent(n, 1, dist=dist_name, seed=seed, offset=offset, device=device, dtype=dtype, **params)[:, 0]


# float32: each value is a few float ops on an exact uniform (log/sin/cos/tan within ~2 ulp, Giles' erfinv within
# ~4e-7), each tail written so that its argument is exact (sampling.h): rtol 2e-5, and an atol of 1e-6 for values
# near 0, where the rounding of the Box-Muller angle (documented) is the error.
# float64: exact-ish formulas (erfinv refined by Newton): rtol 1e-12.
MAP_TOLERANCE = {torch.float32: dict(rtol=2e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-13)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", LATENT_CASES + INVERSE_CASES, ids=lambda c: c[0] + str(list(c[1].values())))
def test_values_follow_the_documented_map(case, dtype, device):
    dist_name, params = case
    seed, offset, n = 20261123, 12_345, 100_001
    values = draw(dist_name, params, n, dtype, device, seed, offset).double().cpu().numpy()
    first = offset - offset % 2  # normals use word pairs
    words = fastgan.random_bits((offset - first + n + 1) // 2 * 2, seed=seed, offset=first).numpy()
    expected = expected_values(dist_name, words, params, dtype == torch.float64)[offset - first:offset - first + n]
    np.testing.assert_allclose(values, expected, **MAP_TOLERANCE[dtype])
    if dist_name in ("uniform", "bernoulli"):
        np.testing.assert_array_equal(values, expected.astype(np.float32 if dtype == torch.float32 else np.float64))


# Distribution tests: 1e6 draws, fixed seeds, level 1e-4. With n = 1e6 the KS test rejects (power > 0.99) any
# distribution whose CDF is off by more than 0.0025 anywhere; the chi-square test any Bernoulli p off by 0.002.
SCIPY = {
    "normal": (scipy.stats.norm, {}),
    "exponential": (scipy.stats.expon, lambda p: {"scale": 1 / p["rate"]}),
    "logistic": (scipy.stats.logistic, lambda p: p),
    "cauchy": (scipy.stats.cauchy, lambda p: p),
    "laplace": (scipy.stats.laplace, lambda p: p),
    "gumbel": (scipy.stats.gumbel_r, lambda p: p),
    "weibull": (scipy.stats.weibull_min, lambda p: {"c": p["shape"], "scale": p["scale"]}),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", LATENT_CASES + INVERSE_CASES, ids=lambda c: c[0] + str(list(c[1].values())))
def test_distribution_matches_scipy(case, dtype):
    dist_name, params = case
    x = draw(dist_name, params, 1_000_000, dtype, "cpu", seed=1).double().numpy()
    if dist_name == "bernoulli":
        ones = int(x.sum())
        assert set(np.unique(x)) == {0.0, 1.0}
        result = scipy.stats.chisquare([len(x) - ones, ones], [len(x) * (1 - params["p"]), len(x) * params["p"]])
    elif dist_name == "uniform":
        result = scipy.stats.kstest(x, scipy.stats.uniform(loc=params["low"], scale=params["high"] - params["low"]).cdf)
    elif dist_name == "truncated_normal":
        t = params["truncation"]
        assert x.min() >= -t and x.max() <= t
        result = scipy.stats.kstest(x, scipy.stats.truncnorm(-t, t).cdf)
    else:
        family, args = SCIPY[dist_name]
        result = scipy.stats.kstest(x, family(**(args(params) if callable(args) else args)).cdf)
    assert result.pvalue > 1e-4, result


def test_sphere_is_uniform_on_the_sphere():
    x = fastgan.latent(200_000, 3, dist="sphere", seed=5)
    torch.testing.assert_close(x.norm(dim=1), torch.ones(200_000), rtol=1e-6, atol=0)
    # Archimedes: on S^2 each coordinate is uniform on [-1, 1]
    assert scipy.stats.kstest(x[:, 2].double().numpy(), scipy.stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-4


def test_neighbouring_streams_and_offsets_are_uncorrelated():
    n = 1_000_000
    base = fastgan.latent(n, 1, seed=9)[:, 0].double()
    others = [fastgan.latent(n, 1, seed=9, stream=1)[:, 0], fastgan.latent(n, 1, seed=10)[:, 0],
              fastgan.latent(n, 1, seed=9, offset=1)[:, 0]]
    for other in others:
        r = torch.corrcoef(torch.stack([base, other.double()]))[0, 1].item()
        assert abs(r) < 5 / math.sqrt(n), r  # 5 standard errors of r under independence


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("dist_name", ["normal", "uniform", "truncated_normal", "bernoulli"])
def test_offset_rows_equal_rows_of_the_full_draw(dist_name, dtype, device):
    kwargs = {"truncation": 2.0} if dist_name == "truncated_normal" else {}
    full = fastgan.latent(1000, 7, dist=dist_name, seed=3, device=device, dtype=dtype, **kwargs)
    for a, b in [(0, 1), (1, 2), (3, 500), (999, 1000)]:
        part = fastgan.latent(b - a, 7, dist=dist_name, seed=3, offset=a, device=device, dtype=dtype, **kwargs)
        assert torch.equal(part, full[a:b])
    sampler = fastgan.LatentSampler(7, seed=3, dist=dist_name, device=device, dtype=dtype, **kwargs)
    assert torch.equal(torch.cat([sampler(1), sampler(499), sampler(500)]), full)
    assert sampler.offset == 1000


def test_thread_count_does_not_change_the_draw():
    one, many = at_thread_counts(lambda: fastgan.latent(300_001, 3, seed=4), (1, max(2, torch.get_num_threads())))
    assert torch.equal(one, many)


def test_seed_none_follows_torch_manual_seed():
    torch.manual_seed(123)
    a = fastgan.latent(4, 3)
    torch.manual_seed(123)
    assert torch.equal(a, fastgan.latent(4, 3))
    assert not torch.equal(a, fastgan.latent(4, 3))


def _shard_worker(rank, world, port, batch, dim, result_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    rows = batch // world
    mine = fastgan.latent(rows, dim, seed=77, offset=rank * rows)
    gathered = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(gathered, mine)
    if rank == 0:
        torch.save(torch.cat(gathered), result_path)
    dist.destroy_process_group()


def test_ranks_together_draw_what_one_process_draws(tmp_path):
    """Two gloo processes, each drawing its half of a global batch by offset, gather exactly the one-process draw."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "gathered.pt"
    mp.spawn(_shard_worker, args=(2, port, 64, 16, str(path)), nprocs=2, join=True)
    assert torch.equal(torch.load(path), fastgan.latent(64, 16, seed=77))


def test_toy_distributions():
    x, centres = fastgan.toy.ring(100_000, seed=1)
    assert centres.shape == (8, 2)
    torch.testing.assert_close(centres.norm(dim=1), torch.ones(8))
    distance, nearest = torch.cdist(x, centres).min(dim=1)
    assert distance.max() < 6 * 0.01  # every sample near its mode
    counts = torch.bincount(nearest, minlength=8).numpy()
    assert scipy.stats.chisquare(counts).pvalue > 1e-4  # modes equally likely
    y, grid_centres = fastgan.toy.grid(50_000, seed=2)
    assert grid_centres.shape == (25, 2) and torch.cdist(y, grid_centres).min(dim=1).values.max() < 6 * 0.05
    roll, along = fastgan.toy.swiss_roll(1000, seed=3)
    assert roll.shape == (1000, 2) and along.shape == (100, 2)
    # offsets work for the toys too
    assert torch.equal(fastgan.toy.ring(10, seed=1, offset=5)[0], x[5:15])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: fastgan.latent(-1, 2, seed=0), ValueError, "n must be >= 0"),
        (lambda: fastgan.latent(2.5, 2, seed=0), TypeError, "n must be an int"),
        (lambda: fastgan.latent(2, True, seed=0), TypeError, "dim must be an int"),
        (lambda: fastgan.latent(2, 2, seed=-1), ValueError, r"seed must lie in \[0, 2\*\*64\)"),
        (lambda: fastgan.latent(2, 2, seed=0, offset=-3), ValueError, "offset must be >= 0"),
        (lambda: fastgan.latent(2, 2, dist="gauss", seed=0), ValueError, "dist must be one of 'normal'"),
        (lambda: fastgan.latent(2, 2, dist="truncated_normal", seed=0), ValueError, "needs a finite truncation > 0"),
        (lambda: fastgan.latent(2, 2, dist="truncated_normal", truncation=0.0, seed=0), ValueError, "truncation > 0"),
        (lambda: fastgan.latent(2, 2, dist="truncated_normal", truncation=-1.0, seed=0), ValueError, "truncation > 0"),
        (lambda: fastgan.latent(2, 2, dist="uniform", low=1.0, high=1.0, seed=0), ValueError, "low < high"),
        (lambda: fastgan.latent(2, 2, dist="bernoulli", p=1.5, seed=0), ValueError, "0 <= p <= 1"),
        (lambda: fastgan.latent(2, 2, seed=0, dtype=torch.int32), TypeError, "dtype must be float32, float64"),
        (lambda: fastgan.inverse_transform(3, "frechet", seed=0), ValueError, "dist must be one of 'exponential'"),
        (lambda: fastgan.inverse_transform(3, "exponential", seed=0, scale=2.0), TypeError, "unknown"),
        (lambda: fastgan.inverse_transform(3, "exponential", seed=0, rate=0.0), ValueError, "rate > 0"),
        (lambda: fastgan.inverse_transform(3, "cauchy", seed=0, scale=-1.0), ValueError, "scale > 0"),
        (lambda: fastgan.random_bits(-2, seed=0), ValueError, "n must be >= 0"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_empty_draws():
    assert fastgan.latent(0, 5, seed=0).shape == (0, 5)
    assert fastgan.latent(5, 0, seed=0).shape == (5, 0)
    assert fastgan.random_bits(0, seed=0).shape == (0,)


def test_opcheck_fill_ops(device):
    offset = torch.tensor(6, dtype=torch.int64)
    torch.library.opcheck(torch.ops.fastgan.fill_random_bits_.default,
                          on_device((torch.empty(9, dtype=torch.int64), 1, 2, 3), device))
    for name, a, b in [("normal", 0.5, 1.0), ("truncated_normal", math.erf(1.0), math.erfc(1.0)), ("gumbel", 0.5, 1.0)]:
        torch.library.opcheck(torch.ops.fastgan.fill_latent_.default,
                              on_device((torch.empty(3, 5), name, a, b, 11, 4, offset, 0), device))


def test_compile_fullgraph_with_a_latent_draw():
    torch._dynamo.reset()

    def noisy(x):
        z = torch.empty_like(x)
        torch.ops.fastgan.fill_latent_(z, "normal", 0.0, 1.0, 5, 0, None, 0)
        return x + z

    x = torch.randn(4, 3)
    torch.testing.assert_close(torch.compile(noisy, fullgraph=True)(x), x + fastgan.latent(4, 3, seed=5))


# ---- CPU and CUDA draw the same numbers ----


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", LATENT_CASES + INVERSE_CASES, ids=lambda c: c[0] + str(list(c[1].values())))
def test_cuda_draws_what_the_cpu_draws(case, dtype, gpu):
    """Uniform and Bernoulli draws are bit-identical. The rest differ only by the devices' log/sin/cos/tan
    rounding: within 4 ulps of the value (float32: 4 * 2^-24 relative) plus the inverse CDF's conditioning,
    the same bound MAP_TOLERANCE states for both devices against the exact map."""
    dist_name, params = case
    n = gpu.size(1_000_003)
    cpu = draw(dist_name, params, n, dtype, "cpu", seed=8, offset=3)
    with gpu:
        drawn = draw(dist_name, params, n, dtype, gpu.device, seed=8, offset=3).cpu()
        words = fastgan.random_bits(1000, seed=8, device=gpu.device).cpu()
    assert torch.equal(words, fastgan.random_bits(1000, seed=8))
    if dist_name in ("uniform", "bernoulli"):
        assert torch.equal(cpu, drawn)
    else:
        torch.testing.assert_close(drawn, cpu, **MAP_TOLERANCE[dtype])


@needs_cuda
def test_latent_sampler_in_a_cuda_graph_draws_fresh_noise_each_replay():
    sampler = fastgan.LatentSampler(16, seed=21, device="cuda")
    sampler(8)  # warm up outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        z = sampler(8)
    replays = []
    for _ in range(3):
        graph.replay()
        replays.append(z.clone())
    full = fastgan.latent(40, 16, seed=21, device="cuda")
    # rows 0-7 warm-up, 8-15 drawn during capture (captured kernels do not run), then one batch per replay
    assert torch.equal(torch.cat(replays), full[8:32])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_a_device_position_below_zero_fills_nan(device, dtype):
    """offset + offset_tensor < 0 names no position of the stream: every element is NaN on every device (the CUDA
    kernel reads the position on the device and cannot raise), never a partly written output. A valid total
    draws what latent draws there."""
    out = torch.full((4099,), 7.0, dtype=dtype, device=device)
    position = torch.tensor(-3, device=device)
    torch.ops.fastgan.fill_latent_(out, "normal", 0.0, 1.0, 5, 2, position, 0)
    assert torch.isnan(out).all()
    torch.ops.fastgan.fill_latent_(out, "normal", 0.0, 1.0, 5, 5, position, 0)
    assert torch.equal(out, fastgan.latent(4099, 1, seed=5, offset=2, device=device, dtype=dtype)[:, 0])


@needs_cuda
def test_latent_sampler_stays_on_the_device_current_at_construction():
    sampler = fastgan.LatentSampler(4, seed=2, device="cuda")
    assert sampler.device.index == torch.cuda.current_device()
    other = (torch.cuda.current_device() + 1) % torch.cuda.device_count()
    with torch.cuda.device(other):
        z = sampler(3)
    assert z.device == sampler.device
    assert torch.equal(z, fastgan.latent(3, 4, seed=2, device=sampler.device))


# ---- sample_cdf ----


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_sample_cdf_frequencies_match_the_table(dtype):
    """Chi-square on 1e6 draws per row (level 1e-4: detects any bin probability off by ~0.1% absolute)."""
    probs = torch.tensor([[0.1, 0.0, 0.5, 0.4, 0.0], [1.0, 2.0, 3.0, 4.0, 5.0]], dtype=dtype)
    indices = fastgan.sample_cdf(probs, 1_000_000, seed=3, probs=True)
    for row, p in zip(indices, probs):
        counts = torch.bincount(row, minlength=5).double()
        assert counts[p == 0].sum() == 0  # zero-mass bins are never drawn
        expected = p[p > 0].double() / p.sum() * len(row)
        assert scipy.stats.chisquare(counts[p > 0].numpy(), expected.numpy()).pvalue > 1e-4


def test_sample_cdf_values_invert_the_piecewise_linear_cdf():
    # a triangular density on [0, 2] tabulated on 200 bins: interpolated values follow its CDF
    edges = torch.linspace(0, 2, 201, dtype=torch.float64)
    centres = (edges[1:] + edges[:-1]) / 2
    mass = torch.where(centres < 1, centres, 2 - centres)
    indices, values = fastgan.sample_cdf(mass.cumsum(0), 500_000, seed=4, edges=edges)
    assert ((values >= edges[indices]) & (values <= edges[indices + 1])).all()
    assert scipy.stats.kstest(values.numpy(), scipy.stats.triang(c=0.5, loc=0, scale=2).cdf).pvalue > 1e-4


def test_sample_cdf_offsets_and_rows(device):
    table = torch.rand(3, 50, dtype=torch.float64, device=device).cumsum(1)
    full = fastgan.sample_cdf(table, 1000, seed=5)
    assert full.shape == (3, 1000) and full.device.type == device
    assert torch.equal(fastgan.sample_cdf(table, 100, seed=5, offset=450), full[:, 450:550])
    assert torch.equal(fastgan.sample_cdf(table[1], 1000, seed=5, stream=1), full[1])  # row r draws stream + r
    assert torch.equal(fastgan.sample_cdf(table.cpu(), 1000, seed=5), full.cpu())  # CPU == CUDA


@pytest.mark.parametrize(
    "cdf, kwargs, error, message",
    [
        (torch.tensor([0.1, 0.5, 0.3]), {}, ValueError, "non-decreasing"),
        (torch.tensor([0.1, float("nan"), 0.3]), {}, ValueError, "non-finite"),
        (torch.tensor([0.1, -0.5, 0.3]), {"probs": True}, ValueError, "must be >= 0"),
        (torch.tensor([0.0, 0.0]), {}, ValueError, "positive total"),
        (torch.tensor([1, 2, 3]), {}, TypeError, "float32 or float64"),
        (torch.ones(2, 3, 4), {}, ValueError, "1-D"),
        (torch.ones(3).cumsum(0), {"edges": torch.ones(3)}, ValueError, "edges must have shape"),
    ],
)
def test_sample_cdf_bad_input(cdf, kwargs, error, message):
    with pytest.raises(error, match=message):
        fastgan.sample_cdf(cdf, 10, seed=0, **kwargs)


def test_opcheck_sample_cdf(device):
    torch.library.opcheck(torch.ops.fastgan.sample_cdf_.default,
                          on_device((torch.rand(2, 7).cumsum(1), torch.empty(2, 5, dtype=torch.int64), 1, 3, 0), device))
