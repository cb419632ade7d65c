"""fastgan.metrics against the peers that define the numbers (torchmetrics' KID and FID, prdc, pytorch-fid), closed
forms, the tiling, the accumulator (also under torch.distributed) and bad input."""

import ast
import importlib.util
import math
import pathlib
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from fastgan import metrics
from helpers import needs_cuda, peer

EPS64 = torch.finfo(torch.float64).eps


def features(n, m, d, generator, shift=0.3):
    """Inception-like features: non-negative, correlated, with a distribution shift between the sets."""
    mix = torch.randn(d, d, generator=generator, dtype=torch.float64) / math.sqrt(d)
    real = (torch.randn(n, d, generator=generator, dtype=torch.float64) @ mix).abs()
    fake = (torch.randn(m, d, generator=generator, dtype=torch.float64) @ mix + shift).abs()
    return real, fake


@pytest.fixture(params=[None, 37], ids=["default-tiles", "37-row-tiles"])
def tiles(request, monkeypatch):
    """Run each test with the real tiles (one tile at these sizes) and with ragged 37-row tiles, so that every
    tile path (diagonal, above it, the short last tile) is checked against the peers."""
    if request.param:
        monkeypatch.setattr(metrics, "_TILE", {"cpu": request.param, "cuda": request.param})
    return request.param


def poly_kernel_matrix(a, b, gamma, coef, degree):
    return (a @ b.T * gamma + coef) ** degree


def kid_tolerance(real, fake, gamma, coef, degree):
    """Two float64 computations of the same double sum differ by the dot products' rounding (d terms each, through
    the kernel's slope) plus the sums' (log2 of the terms): bound both by the largest kernel value."""
    largest = float(poly_kernel_matrix(torch.cat([real, fake]), torch.cat([real, fake]), gamma, coef, degree).max())
    n = real.shape[0] + fake.shape[0]
    return 8 * EPS64 * (degree * real.shape[1] + 2 * math.log2(n)) * largest


# ---- KID ----

def test_kid_equals_torchmetrics_poly_mmd_on_all_samples(tiles, generator):
    poly_mmd = peer("torchmetrics.image.kid").poly_mmd
    real, fake = features(150, 150, 24, generator, shift=1.0)
    ours = metrics.kid(real, fake)
    theirs = poly_mmd(real, fake, degree=3, gamma=None, coef=1.0)
    assert ours.dtype == torch.float64 and ours.dim() == 0
    assert abs(float(ours) - float(theirs)) <= kid_tolerance(real, fake, 1 / 24, 1.0, 3)
    assert float(ours) > 10 * kid_tolerance(real, fake, 1 / 24, 1.0, 3)  # the shift is seen, not rounding


@pytest.mark.parametrize("degree,gamma,coef", [(3, None, 1.0), (2, 0.3, 0.0), (1, 1.0, 2.5)])
def test_kid_with_different_set_sizes_matches_the_float64_u_statistic(tiles, degree, gamma, coef, generator):
    real, fake = features(90, 61, 7, generator)
    g = 1 / 7 if gamma is None else gamma
    kxx = poly_kernel_matrix(real, real, g, coef, degree)
    kyy = poly_kernel_matrix(fake, fake, g, coef, degree)
    kxy = poly_kernel_matrix(real, fake, g, coef, degree)
    n, m = 90, 61
    expected = ((kxx.sum() - kxx.trace()) / (n * (n - 1)) + (kyy.sum() - kyy.trace()) / (m * (m - 1))
                - 2 * kxy.sum() / (n * m))
    ours = metrics.kid(real, fake, degree=degree, gamma=gamma, coef=coef)
    assert abs(float(ours) - float(expected)) <= kid_tolerance(real, fake, g, coef, degree)


def test_kid_of_a_set_with_itself_has_its_closed_form(generator):
    # MMD_u^2(x, x) = 2 S_off / (n(n-1)) - 2 (S_off + S_diag) / n^2 with S over the kernel matrix
    real, _ = features(80, 2, 5, generator)
    k = poly_kernel_matrix(real, real, 1 / 5, 1.0, 3)
    n = 80
    s_diag = k.trace()
    s_off = k.sum() - s_diag
    expected = 2 * s_off / (n * (n - 1)) - 2 * (s_off + s_diag) / n**2
    ours = metrics.kid(real, real)
    assert abs(float(ours) - float(expected)) <= kid_tolerance(real, real, 1 / 5, 1.0, 3)
    assert abs(float(ours)) <= 2 * float(k.mean() + k.diagonal().mean()) / n  # O(1/n): ~0 next to a real shift


def test_kid_subsets_equal_torchmetrics_on_the_same_subsets(generator):
    poly_mmd = peer("torchmetrics.image.kid").poly_mmd
    real, fake = features(120, 100, 16, generator)
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    mean, std = metrics.kid(real, fake, subsets=7, subset_size=40, seed=seed)
    real_rows = metrics.subset_indices(120, 7, 40, seed=seed, stream=0)
    fake_rows = metrics.subset_indices(100, 7, 40, seed=seed, stream=1)
    theirs = torch.stack([poly_mmd(real[r], fake[f]) for r, f in zip(real_rows, fake_rows)])
    # torchmetrics' KernelInceptionDistance.compute returns (mean, std(unbiased=False)) of these scores
    tol = kid_tolerance(real, fake, 1 / 16, 1.0, 3)
    assert abs(float(mean) - float(theirs.mean())) <= tol
    assert abs(float(std) - float(theirs.std(unbiased=False))) <= tol
    assert float(std) > 0


def test_subset_indices_are_draws_without_replacement_fixed_by_seed(generator):
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    rows = metrics.subset_indices(500, 20, 300, seed=seed)
    assert rows.shape == (20, 300) and rows.dtype == torch.int64
    assert int(rows.min()) >= 0 and int(rows.max()) < 500
    assert all(len(set(r.tolist())) == 300 for r in rows)  # without replacement
    assert torch.equal(rows, metrics.subset_indices(500, 20, 300, seed=seed))
    assert not torch.equal(rows, metrics.subset_indices(500, 20, 300, seed=seed + 1))
    assert not torch.equal(rows[0], rows[1])  # each subset is its own draw
    # uniform: each index is drawn 20 * 300 / 500 = 12 times on average; a chi-square test of the counts
    from scipy import stats
    counts = torch.bincount(metrics.subset_indices(50, 2000, 10, seed=seed).flatten(), minlength=50).numpy()
    assert stats.chisquare(counts).pvalue > 1e-6


# ---- FID ----

def pytorch_fid_frechet_distance():
    """pytorch-fid's calculate_frechet_distance, from the installed package's source. Its module imports
    torchvision at import time (for the Inception network), which would replace this environment's torch, so the
    one function is compiled on its own with the names it uses (numpy, scipy.linalg)."""
    spec = importlib.util.find_spec("pytorch_fid")
    if spec is None:
        peer("pytorch_fid")  # fails or skips with the reason
    path = pathlib.Path(spec.submodule_search_locations[0]) / "fid_score.py"
    tree = ast.parse(path.read_text())
    function = next(node for node in tree.body
                    if isinstance(node, ast.FunctionDef) and node.name == "calculate_frechet_distance")
    namespace = {"np": np, "linalg": scipy.linalg}
    exec(compile(ast.Module(body=[function], type_ignores=[]), str(path), "exec"), namespace)
    return namespace["calculate_frechet_distance"]


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # pytorch-fid on new SciPy
def test_fid_equals_pytorch_fid_and_torchmetrics(generator):
    _compute_fid = peer("torchmetrics.image.fid")._compute_fid
    real, fake = features(400, 300, 20, generator)
    ours = metrics.fid(real, fake)
    mu1, mu2 = real.mean(0), fake.mean(0)
    sigma1, sigma2 = torch.cov(real.T), torch.cov(fake.T)
    theirs = pytorch_fid_frechet_distance()(mu1.numpy(), sigma1.numpy(), mu2.numpy(), sigma2.numpy())
    # sqrtm (Schur) and eigh are both backward stable: each trace term is exact to ~ d u ||sigma||, the value to
    # that times the 4 terms; 64 d u ||sigma|| leaves room for the covariance formula's own rounding
    tol = 64 * 20 * EPS64 * float(max(sigma1.norm(2), sigma2.norm(2)))
    assert abs(float(ours) - float(theirs)) <= tol
    assert abs(float(ours) - float(_compute_fid(mu1, sigma1, mu2, sigma2))) <= tol
    assert float(ours) > 1e3 * tol


def test_fid_between_gaussians_has_its_closed_form(generator):
    # sigma1 = A^2, sigma2 = A^-1 B^2 A^-1: sigma1^(1/2) sigma2 sigma1^(1/2) = B^2, so tr sqrt = tr B, although
    # sigma1 and sigma2 do not commute
    d = 12
    q = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))[0]
    a = q @ torch.diag(torch.rand(d, generator=generator, dtype=torch.float64) + 0.5) @ q.T
    r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))[0]
    b = r @ torch.diag(torch.rand(d, generator=generator, dtype=torch.float64) + 0.5) @ r.T
    a_inv = torch.linalg.inv(a)
    sigma1, sigma2 = a @ a, a_inv @ b @ b @ a_inv
    sigma2 = (sigma2 + sigma2.T) / 2
    mu1, mu2 = torch.randn(d, generator=generator, dtype=torch.float64), torch.randn(d, generator=generator,
                                                                                       dtype=torch.float64)
    expected = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * b.trace()
    ours = metrics.fid_from_stats(mu1, sigma1, mu2, sigma2)
    torch.testing.assert_close(ours, expected, rtol=0, atol=64 * d * EPS64 * float(sigma2.norm(2) + sigma1.norm(2)))
    assert float(metrics.fid_from_stats(mu1, sigma1, mu1, sigma1)) == pytest.approx(0, abs=1e-12 * float(sigma1.trace()))


def test_fid_of_a_singular_covariance_warns_and_is_finite(generator):
    real, fake = features(10, 10, 30, generator)  # 10 samples in 30 dimensions: rank 9
    with pytest.warns(RuntimeWarning, match="singular"):
        value = metrics.fid(real, fake)
    assert math.isfinite(float(value)) and float(value) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics.fid(*features(100, 100, 5, generator))  # full rank: no warning


def test_feature_stats_stream_equals_numpy_cov_with_a_large_offset(generator):
    real, _ = features(1000, 2, 6, generator)
    real = real + 1e4  # the sum-of-outer-products formula loses 8 digits here; the centred merge does not
    stats = metrics.FeatureStats(6)
    for batch in real.split(77):
        stats.update(batch)
    assert stats.count == 1000
    torch.testing.assert_close(stats.mean, real.mean(0), rtol=4 * EPS64, atol=0)
    expected = torch.from_numpy(np.cov(real.numpy(), rowvar=False))
    torch.testing.assert_close(stats.covariance(), expected, rtol=0, atol=1e-9 * float(expected.abs().max()))
    other = metrics.FeatureStats(6).update(real[:500]).merge(metrics.FeatureStats(6).update(real[500:]))
    torch.testing.assert_close(other.covariance(), expected, rtol=0, atol=1e-9 * float(expected.abs().max()))


# ---- precision / recall / density / coverage ----

@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_equals_the_prdc_package(tiles, k, generator, capsys):
    prdc = peer("prdc.prdc")
    real, fake = features(130, 110, 9, generator)
    theirs = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=k)
    ours = metrics.prdc(real, fake, k=k)
    # the same float64 distances up to rounding, compared with the same strict '<': equal unless a distance
    # lies within ~1e-15 of a radius, which random features never do
    assert ours == pytest.approx({key: float(v) for key, v in theirs.items()}, rel=1e-14, abs=0)
    assert metrics.precision_recall(real, fake, k=k) == {key: ours[key] for key in ("precision", "recall")}
    assert metrics.density_coverage(real, fake, k=k) == {key: ours[key] for key in ("density", "coverage")}
    assert 0 < ours["precision"] < 1 and 0 < ours["coverage"] < 1  # neither trivially 0 nor 1


def test_knn_radius_counts_duplicates_like_prdc(generator):
    prdc = peer("prdc.prdc")
    real, fake = features(40, 40, 3, generator)
    real[5] = real[6]  # a duplicate: its nearest neighbour is at distance 0
    theirs = prdc.compute_nearest_neighbour_distances(real.numpy(), 1)
    ours = metrics._knn_distances(real, real.square().sum(1), 1)[:, 1].sqrt()
    # |a|^2 + |b|^2 - 2 a.b cancels for close points (in prdc too): d^2 is exact to ~ 4 d u |a|^2, so a distance
    # to ~ 2 sqrt(d u) |a|
    resolution = 2 * math.sqrt(3 * EPS64) * float(real.norm(dim=1).max())
    assert float(ours[5]) <= resolution and float(ours[6]) <= resolution
    assert float(ours.sort().values[2]) > 100 * resolution  # the others are not duplicates
    torch.testing.assert_close(ours, torch.from_numpy(theirs), rtol=1e-12, atol=resolution)


def test_float32_features_agree_with_float64_up_to_float32_distance_rounding(generator):
    real, fake = features(300, 300, 64, generator)
    exact = metrics.kid(real, fake)
    fast = metrics.kid(real.float(), fake.float())
    # float32 GEMM: each kernel value within ~ 3 (degree) d u32 of its size; the estimate differences of sums
    assert abs(float(fast) - float(exact)) <= 8 * 3 * 64 * 2**-24 * float(
        poly_kernel_matrix(real, fake, 1 / 64, 1, 3).max())
    pr64, pr32 = metrics.prdc(real, fake), metrics.prdc(real.float(), fake.float())
    # a membership flips only for a pair within float32 rounding of a radius: at most a few of 300
    for key in pr64:
        assert abs(pr64[key] - pr32[key]) <= 3 / 300


# ---- bad input ----

@pytest.mark.parametrize("fn", [metrics.kid, metrics.fid, metrics.precision_recall, metrics.density_coverage])
def test_bad_features_get_a_clear_error(fn, generator):
    real, fake = features(20, 20, 4, generator)
    with pytest.raises(ValueError, match="same feature dimension"):
        fn(real, fake[:, :3])
    with pytest.raises(ValueError, match=r"\[n, d\]"):
        fn(real[:, 0], fake)
    with pytest.raises(TypeError, match="float32 or float64"):
        fn(real.long(), fake.long())
    bad = fake.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        fn(real, bad)
    with pytest.raises(ValueError, match="share device and dtype"):
        fn(real, fake.float())


def test_too_few_samples_for_k_or_kid_get_a_clear_error(generator):
    real, fake = features(5, 5, 3, generator)
    with pytest.raises(ValueError, match="k \\+ 1 = 6"):
        metrics.density_coverage(real, fake, k=5)
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.kid(real[:1], fake)
    with pytest.raises(ValueError, match="subset_size 10 exceeds"):
        metrics.kid(real, fake, subsets=2, subset_size=10)
    with pytest.raises(ValueError, match="degree"):
        metrics.kid(real, fake, degree=0)


# ---- the accumulator ----

def test_gan_metrics_accumulates_batches_to_the_one_shot_values(generator):
    real, fake = features(90, 70, 6, generator)
    acc = metrics.GANMetrics()
    for batch in real.split(32):
        acc.update(batch, real=True)
    for batch in fake.split(25):
        acc.update(batch, real=False)
    result = acc.compute()
    assert result["kid"] == pytest.approx(float(metrics.kid(real, fake)), rel=1e-12)
    assert result["fid"] == pytest.approx(float(metrics.fid(real, fake)), rel=1e-10)
    assert {k: result[k] for k in ("precision", "recall")} == metrics.precision_recall(real, fake, k=3)
    assert {k: result[k] for k in ("density", "coverage")} == metrics.density_coverage(real, fake, k=5)
    acc.reset()
    with pytest.raises(RuntimeError, match="no real features"):
        acc.compute()
    with pytest.raises(ValueError, match="subset of"):
        metrics.GANMetrics(["is"])


def _distributed_rank(rank, world, init_file, real, fake, results):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    acc = metrics.GANMetrics(kid_options={"subsets": 3, "subset_size": 20, "seed": 7})
    # uneven shards: rank r gets every world-th batch, so sizes differ between ranks
    for i, batch in enumerate(real.split(13)):
        if i % world == rank:
            acc.update(batch, real=True)
    for i, batch in enumerate(fake.split(11)):
        if i % world == rank:
            acc.update(batch, real=False)
    results[rank] = acc.compute()
    torch.distributed.destroy_process_group()


def test_gan_metrics_under_torch_distributed_equal_one_process_on_the_gathered_samples(tmp_path, generator):
    import torch.multiprocessing as mp
    real, fake = features(60, 50, 4, generator)
    world = 2
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_distributed_rank, args=(world, str(tmp_path / "init"), real, fake, results), nprocs=world)
    # gathered in rank order: rank 0's batches, then rank 1's
    order_real = torch.cat([b for r in range(world) for i, b in enumerate(real.split(13)) if i % world == r])
    order_fake = torch.cat([b for r in range(world) for i, b in enumerate(fake.split(11)) if i % world == r])
    single = metrics.GANMetrics(kid_options={"subsets": 3, "subset_size": 20, "seed": 7})
    single.update(order_real, real=True)
    single.update(order_fake, real=False)
    expected = single.compute()
    for rank in range(world):
        assert results[rank] == pytest.approx(expected, rel=1e-12)


# ---- CUDA ----

@needs_cuda
def test_metrics_on_cuda_equal_the_cpu(generator):
    real, fake = features(300, 250, 40, generator)
    cuda = [t.cuda() for t in (real, fake)]
    assert abs(float(metrics.kid(*cuda)) - float(metrics.kid(real, fake))) <= kid_tolerance(real, fake, 1 / 40, 1, 3)
    assert metrics.prdc(*cuda) == pytest.approx(metrics.prdc(real, fake), rel=1e-14)
    assert float(metrics.fid(*cuda)) == pytest.approx(float(metrics.fid(real, fake)), rel=1e-9)
    assert torch.equal(metrics.subset_indices(300, 4, 50, seed=3, device="cuda").cpu(),
                       metrics.subset_indices(300, 4, 50, seed=3))
