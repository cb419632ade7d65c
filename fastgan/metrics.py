"""Sample-quality measures: the toy-mixture mode coverage, and the feature-space metrics every GAN paper reports
(KID, FID, precision/recall, density/coverage), exact on all samples with memory linear in the sample count.

The feature metrics take features in (``[n, d]``, float32 or float64, CPU or CUDA) and give numbers out; the user
brings the feature extractor (Inception for the papers' numbers, anything else for a quick signal).

How they scale (docs/DESIGN.md section 10): every pairwise quantity is computed tile by tile, ``tile x tile`` blocks
of the Gram matrix made by one GEMM each (``torch.addmm``: MKL/oneDNN on the CPU, cuBLAS on CUDA) and reduced at
once, so memory is O((n + m) (d + k) + tile^2), never the n x m matrix, and the work is the GEMM's. Tiles come in a
fixed order and their partial sums are added in float64 in that order, so a result is the same on every run of the
same device and thread count. Same-set sums use only the tiles on and above the diagonal (half the GEMM work).

Precision: the GEMMs run in the features' dtype. float64 features give results exact to float64 rounding (what the
tests check against torchmetrics, prdc and pytorch-fid); float32 features run float32 GEMMs, whose dot products
carry a relative error of about sqrt(d) 2^-24 (and TF32 on CUDA when the user enables it with
``torch.backends.cuda.matmul.allow_tf32`` / ``torch.set_float32_matmul_precision``: about 2^-11). All sums over
tiles, and every covariance and matrix square root, are float64.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from . import _args
from .sampling import random_bits

# Edge of the square Gram tiles. Large enough that each GEMM runs near peak; small enough that a tile (64 MiB in
# float32 at 4096) is a rounding error next to 50k x 2048 features. Fixed per device: the sums' order, and so their
# last bits, depend on it.
_TILE = {"cpu": 2048, "cuda": 4096}


def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, std: float) -> Dict[str, float]:
    """How well samples [N, D] cover the modes centres [K, D] of a mixture with per-mode standard deviation std
    (PacGAN, Lin et al. 2018; VEEGAN, Srivastava et al. 2017).

    A sample is high quality when it lies within 3 std of its nearest centre. Returns:

    - ``modes``: how many modes have at least one high-quality sample, out of ``num_modes``;
    - ``high_quality``: the fraction of samples that are high quality;
    - ``reverse_kl``: KL(q || uniform) of the histogram q of the high-quality samples over the modes, 0 when they
      spread evenly, log K when they all sit on one mode (inf with no high-quality sample).
    """
    _args.tensor(samples, "samples")
    _args.tensor(centres, "centres")
    if samples.dim() != 2 or centres.dim() != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"samples [N, D] and centres [K, D] must share D, got {tuple(samples.shape)} and "
                         f"{tuple(centres.shape)}")
    if centres.shape[0] == 0 or centres.shape[1] == 0:
        raise ValueError(f"mode_coverage needs at least one centre of at least one dimension, got centres of shape "
                         f"{tuple(centres.shape)}")
    std = _args.real(std, "std")
    if not (std > 0 and math.isfinite(std)):
        raise ValueError(f"std must be finite and > 0, got {std}")
    distance, nearest = torch.cdist(samples.double(), centres.double(), compute_mode="donot_use_mm_for_euclid_dist").min(1)
    good = distance <= 3 * std
    counts = torch.bincount(nearest[good], minlength=len(centres)).double()
    total = counts.sum().item()
    if total == 0:
        reverse_kl = float("inf")
    else:
        q = counts / total
        nonzero = q > 0
        reverse_kl = float((q[nonzero] * (q[nonzero] * len(centres)).log()).sum())
    return {
        "modes": int((counts > 0).sum().item()),
        "num_modes": len(centres),
        "high_quality": float(good.double().mean().item()) if len(samples) else 0.0,
        "reverse_kl": reverse_kl,
    }


# ---------------------------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------------------------

# Row chunks for elementwise passes over a whole feature set: on the CPU, torch.isfinite or square() of a 50k x 2048
# matrix peaks at ~390-690 MiB of temporaries (measured), where the metrics themselves need O(n (k + 1) + tile^2).
_ROW_CHUNK = 4096


def _all_finite(x: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(chunk).all()) for chunk in x.split(_ROW_CHUNK))


def _row_norms(x: torch.Tensor) -> torch.Tensor:
    """|x_i|^2 per row, without an n x d temporary."""
    return torch.cat([chunk.square().sum(1) for chunk in x.split(_ROW_CHUNK)])


def _check_features(real: torch.Tensor, fake: torch.Tensor, metric: str, minimum: int) -> None:
    for name, t in (("real_feats", real), ("fake_feats", fake)):
        _args.tensor(t, f"{metric}: {name}")
        if t.dim() != 2:
            raise ValueError(f"{metric}: {name} must be [n, d] (one feature vector per row), got shape "
                             f"{tuple(t.shape)}")
        if t.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{metric}: {name} must be float32 or float64, got {t.dtype}")
        if t.shape[0] < minimum:
            raise ValueError(f"{metric}: {name} needs at least {minimum} samples, got {t.shape[0]}")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"{metric}: real_feats and fake_feats must have the same feature dimension, got "
                         f"{real.shape[1]} and {fake.shape[1]}")
    if real.shape[1] == 0:
        raise ValueError(f"{metric}: the features have no dimensions (shape [n, 0]); every metric needs d >= 1")
    if real.device != fake.device or real.dtype != fake.dtype:
        raise ValueError(f"{metric}: real_feats and fake_feats must share device and dtype, got "
                         f"{real.device}/{real.dtype} and {fake.device}/{fake.dtype}")
    for name, t in (("real_feats", real), ("fake_feats", fake)):
        if not _all_finite(t):
            raise ValueError(f"{metric}: {name} has non-finite values (NaN or inf); a feature extractor that "
                             f"produced them is broken, and no metric of them means anything")


def _tiles(n: int, device: torch.device):
    step = _TILE.get(device.type, _TILE["cuda"])
    return [(start, min(n, start + step)) for start in range(0, n, step)]


# ---------------------------------------------------------------------------------------------------------------
# KID
# ---------------------------------------------------------------------------------------------------------------

def _poly_sum(a: torch.Tensor, b: torch.Tensor, gamma: float, coef: float, degree: int, same: bool) -> float:
    """sum_{i, j} (gamma a_i . b_j + coef)^degree over all pairs, without the diagonal when ``same`` (then a is b).
    Float64 accumulation over tiles; same-set sums visit only the tiles on and above the diagonal."""
    total = 0.0
    rows = _tiles(a.shape[0], a.device)
    cols = _tiles(b.shape[0], b.device)
    for ti, (i0, i1) in enumerate(rows):
        for tj, (j0, j1) in enumerate(cols):
            if same and tj < ti:
                continue
            # coef + gamma a b^T in one GEMM (beta on a broadcast scalar tensor)
            k = torch.addmm(a.new_full((1, 1), coef), a[i0:i1], b[j0:j1].T, alpha=gamma)
            k.pow_(degree)
            if same and tj == ti:
                k.fill_diagonal_(0)
            # rows summed in the tile's dtype (2048 terms, pairwise: error ~ 11 u of a row), rows in float64;
            # a float64 sum of the whole tile costs 10% of the GEMM on the CPU
            tile_sum = float(k.sum(1).sum(dtype=torch.float64))
            total += 2 * tile_sum if same and tj > ti else tile_sum
    return total


def _kid_exact(real: torch.Tensor, fake: torch.Tensor, gamma: float, coef: float, degree: int) -> torch.Tensor:
    n, m = real.shape[0], fake.shape[0]
    xx = _poly_sum(real, real, gamma, coef, degree, same=True)
    yy = _poly_sum(fake, fake, gamma, coef, degree, same=True)
    xy = _poly_sum(real, fake, gamma, coef, degree, same=False)
    return torch.tensor(xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2 * xy / (n * m), dtype=torch.float64)


def subset_indices(n: int, subsets: int, subset_size: int, *, seed: int, stream: int = 0,
                   device=None) -> torch.Tensor:
    """[subsets, subset_size] row indices, each row a uniform draw without replacement from range(n): the first
    subset_size entries of a permutation that sorts 64-bit keys from fastgan's stream (seed, stream), keys
    subset r * n .. (r + 1) * n - 1 (stable sort: a tie, about n^2 / 2^65 likely, keeps index order).
    The same indices on every device. ``kid(..., subsets=)`` draws the real rows with stream 0 and the fake rows
    with stream 1."""
    _args.nonnegative_int(n, "n")
    _args.nonnegative_int(subsets, "subsets")
    _args.nonnegative_int(subset_size, "subset_size")
    if subset_size > n:
        raise ValueError(f"subset_size must be <= the number of samples {n}, got {subset_size}")
    out = torch.empty(subsets, subset_size, dtype=torch.int64, device=device)
    for r in range(subsets):  # one subset at a time: O(n) memory, not O(subsets n)
        words = random_bits(2 * n, seed=seed, offset=2 * n * r, stream=stream, device=device).view(n, 2)
        keys = (words[:, 0] << 32) | words[:, 1]  # the 64 bits as int64 (wrapping into the sign is still an order)
        out[r] = torch.sort(keys, stable=True).indices[:subset_size]
    return out


def kid(
    real_feats: torch.Tensor,
    fake_feats: torch.Tensor,
    *,
    degree: int = 3,
    gamma: Optional[float] = None,
    coef: float = 1.0,
    subsets: Optional[int] = None,
    subset_size: int = 1000,
    seed: Optional[int] = None,
):
    """Kernel Inception Distance (Binkowski et al. 2018): the unbiased MMD^2 between real_feats [n, d] and
    fake_feats [m, d] with the polynomial kernel ``k(x, y) = (gamma x . y + coef)^degree``, gamma = 1 / d by default.

    By default on all samples: exact, with no subset noise, in O((n + m) d) memory (float64 0-d tensor; n and m may
    differ). ``subsets=R`` instead averages R estimates on ``subset_size`` rows of each set drawn without
    replacement (torchmetrics' and clean-fid's protocol, 100 x 1000 there) and returns ``(mean, std)`` with the
    population std, as torchmetrics does; the subsets come from fastgan's streams (``subset_indices``) with
    ``seed`` (None: drawn from torch's generator), so they are the same on every device.
    """
    _check_features(real_feats, fake_feats, "kid", 2)
    degree = _args.positive_int(degree, "kid: degree")
    d = real_feats.shape[1]
    gamma = 1.0 / d if gamma is None else _args.real(gamma, "kid: gamma")
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"kid: gamma must be finite and > 0, got {gamma}")
    coef = _args.finite(coef, "kid: coef")
    if subsets is None:
        return _kid_exact(real_feats, fake_feats, gamma, coef, degree)
    if _args.nonnegative_int(subsets, "subsets") < 1 or _args.nonnegative_int(subset_size, "subset_size") < 2:
        raise ValueError(f"kid: subsets must be >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    for name, t in (("real_feats", real_feats), ("fake_feats", fake_feats)):
        if subset_size > t.shape[0]:
            raise ValueError(f"kid: subset_size {subset_size} exceeds the {t.shape[0]} samples of {name}")
    seed = _args.seed(seed)
    device = real_feats.device
    real_rows = subset_indices(real_feats.shape[0], subsets, subset_size, seed=seed, stream=0, device=device)
    fake_rows = subset_indices(fake_feats.shape[0], subsets, subset_size, seed=seed, stream=1, device=device)
    scores = torch.stack([
        _kid_exact(real_feats[r], fake_feats[f], gamma, coef, degree) for r, f in zip(real_rows, fake_rows)
    ])
    return scores.mean(), scores.std(unbiased=False)


# ---------------------------------------------------------------------------------------------------------------
# FID
# ---------------------------------------------------------------------------------------------------------------

class FeatureStats:
    """Streaming float64 mean and covariance of feature batches (Chan et al.'s pairwise update: each batch is
    centred on its own mean before it is merged, so the result does not lose digits to a large common offset, as
    the sum-of-outer-products formula does). ``merge`` combines stats from other ranks or loaders."""

    CHUNK_ROWS = _ROW_CHUNK

    def __init__(self, dim: int, device=None):
        self.count = 0
        self.mean = torch.zeros(_args.nonnegative_int(dim, "dim"), dtype=torch.float64, device=device)
        self.m2 = torch.zeros(dim, dim, dtype=torch.float64, device=device)  # sum of centred outer products

    def update(self, feats: torch.Tensor) -> "FeatureStats":
        if feats.dim() != 2 or feats.shape[1] != self.mean.shape[0]:
            raise ValueError(f"FeatureStats.update: expected [b, {self.mean.shape[0]}] features, got "
                             f"{tuple(feats.shape)}")
        if not _all_finite(feats):
            raise ValueError("FeatureStats.update: features have non-finite values (NaN or inf)")
        # in chunks: the float64 copy of a 50k x 2048 batch alone would be 800 MB
        for chunk in feats.split(self.CHUNK_ROWS):
            x = chunk.to(device=self.mean.device, dtype=torch.float64)
            batch_mean = x.mean(0)
            centred = x - batch_mean
            self._merge(x.shape[0], batch_mean, centred.T @ centred)
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        return self._merge(other.count, other.mean.to(self.mean.device), other.m2.to(self.mean.device))

    def _merge(self, count: int, mean: torch.Tensor, m2: torch.Tensor) -> "FeatureStats":
        if count == 0:
            return self
        total = self.count + count
        delta = mean - self.mean
        self.m2 += m2 + torch.outer(delta, delta) * (self.count * count / total)
        self.mean += delta * (count / total)
        self.count = total
        return self

    def covariance(self) -> torch.Tensor:
        """The unbiased sample covariance (numpy.cov's default, as pytorch-fid and torchmetrics use)."""
        if self.count < 2:
            raise ValueError(f"FeatureStats: a covariance needs at least 2 samples, got {self.count}")
        return self.m2 / (self.count - 1)


# How far below zero a covariance's eigenvalue may lie, relative to its largest: rounding in the covariance and in
# eigh reaches ~d 2^-52 of the largest; a matrix with eigenvalues below this is not a covariance at all (a sign or
# an argument mixed up), and FID of it would be a meaningless number (it was 0.0 for -I).
_PSD_TOLERANCE = 1e-8


def _check_covariance(name: str, matrix: torch.Tensor, values: torch.Tensor) -> None:
    """A ValueError unless `matrix` (with eigenvalues `values`) is symmetric positive semi-definite up to rounding:
    eigh reads one triangle only, so an asymmetric matrix would be silently misread."""
    scale = float(matrix.abs().max()) if matrix.numel() else 0.0
    if not bool(torch.allclose(matrix, matrix.T, rtol=0, atol=_PSD_TOLERANCE * scale)):
        raise ValueError(f"fid_from_stats: {name} is not symmetric, so it is not a covariance")
    lowest, largest = float(values.min()), float(values.abs().max())
    if lowest < -_PSD_TOLERANCE * largest:
        raise ValueError(f"fid_from_stats: {name} is not positive semi-definite (eigenvalue {lowest:.3g}, largest "
                         f"{largest:.3g}), so it is not a covariance")


def _psd_sqrt(matrix: torch.Tensor, name: str) -> Tuple[torch.Tensor, int]:
    """The PSD square root of a covariance through its eigendecomposition, and its numerical rank. Eigenvalues
    below zero are rounding (checked: a covariance has none beyond it) and are clamped."""
    values, vectors = torch.linalg.eigh(matrix)
    _check_covariance(name, matrix, values)
    floor = values.abs().max() * matrix.shape[0] * torch.finfo(torch.float64).eps
    rank = int((values > floor).sum())
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T, rank


def fid_from_stats(mu1, sigma1, mu2, sigma2) -> torch.Tensor:
    """The Frechet distance ``|mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))`` between the
    Gaussians N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017), in float64 (tensors or numpy arrays in).

    Method: ``tr((sigma1 sigma2)^(1/2)) = tr((s sigma2 s)^(1/2))`` with ``s = sigma1^(1/2)`` (the two matrices are
    similar), and ``s sigma2 s`` is symmetric PSD, so both roots come from symmetric eigendecompositions
    (backward stable) instead of scipy's general ``sqrtm`` on the non-symmetric product, which pytorch-fid needs
    to patch when it returns complex or non-finite values. Accuracy: each eigenvalue carries an absolute error of
    about d u ||s sigma2 s|| (u = 2^-53), so the trace is exact to about ``d sqrt(d u ||.||)`` in the worst case of
    eigenvalues near zero, and to float64 rounding otherwise. A singular covariance (fewer samples than
    dimensions, or constant features) needs no patching here: zero eigenvalues have the root zero. pytorch-fid
    instead adds 1e-6 to both diagonals when its sqrtm fails, which shifts its value by about 2e-6 d; fastgan warns
    and gives the exact value of the singular estimate.
    """
    mu1, mu2, sigma1, sigma2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, mu2, sigma1, sigma2))
    d = mu1.shape[-1] if mu1.dim() == 1 else -1
    if mu1.dim() != 1 or mu2.shape != mu1.shape or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"fid_from_stats: expected mu [d] and sigma [d, d] for both sets, got {tuple(mu1.shape)}, "
                         f"{tuple(sigma1.shape)}, {tuple(mu2.shape)}, {tuple(sigma2.shape)}")
    sigma2 = sigma2.to(sigma1.device)
    for name, t in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"fid_from_stats: {name} has non-finite values")
    if d == 0:
        raise ValueError("fid_from_stats: the statistics have no dimensions (d = 0)")
    root1, rank1 = _psd_sqrt(sigma1, "sigma1")
    _check_covariance("sigma2", sigma2, torch.linalg.eigvalsh(sigma2))
    product = root1 @ sigma2 @ root1
    product = (product + product.T) / 2  # symmetric up to rounding; make it exactly so for eigvalsh
    values = torch.linalg.eigvalsh(product)
    tr_covmean = values.clamp_min(0).sqrt().sum()
    # with sigma1 of full rank, rank(s sigma2 s) = rank(sigma2): no third decomposition to check sigma2
    rank2 = int((values > values.abs().max() * d * torch.finfo(torch.float64).eps).sum())
    if rank1 < d or rank2 < d:
        warnings.warn(f"fid: a covariance is singular (rank {min(rank1, rank2)} < d = {d}; fewer samples than "
                      f"feature dimensions, or constant features), so the FID estimate is poor; fastgan computes "
                      f"it exactly where pytorch-fid would add 1e-6 to the diagonals", RuntimeWarning, stacklevel=2)
    diff = mu1 - mu2.to(mu1.device)
    return diff.dot(diff) + sigma1.trace() + sigma2.trace() - 2 * tr_covmean


def fid(real_feats: torch.Tensor, fake_feats: torch.Tensor) -> torch.Tensor:
    """FID between real_feats [n, d] and fake_feats [m, d] (float64 0-d tensor): their means and unbiased
    covariances (``FeatureStats``) into ``fid_from_stats``. For features that arrive in batches, update a
    ``FeatureStats`` per set and call ``fid_from_stats`` (or use ``GANMetrics``)."""
    _check_features(real_feats, fake_feats, "fid", 2)
    d = real_feats.shape[1]
    real = FeatureStats(d, real_feats.device).update(real_feats)
    fake = FeatureStats(d, fake_feats.device).update(fake_feats)
    return fid_from_stats(real.mean, real.covariance(), fake.mean, fake.covariance())


# ---------------------------------------------------------------------------------------------------------------
# k-NN metrics: precision/recall (Kynkaanniemi et al. 2019), density/coverage (Naeem et al. 2020)
# ---------------------------------------------------------------------------------------------------------------

def _squared_distances(a: torch.Tensor, a_norms: torch.Tensor, b: torch.Tensor, b_norms: torch.Tensor):
    """|a_i - b_j|^2 for one tile, as |a|^2 + |b|^2 - 2 a.b (one GEMM; the form sklearn, and so prdc, uses),
    clamped at 0 where rounding makes it negative."""
    d2 = torch.addmm(b_norms[None, :], a, b.T, alpha=-2)
    return d2.add_(a_norms[:, None]).clamp_min_(0)


def _knn_distances(x: torch.Tensor, norms: torch.Tensor, k: int) -> torch.Tensor:
    """[n, k + 1]: the squared distances from each row to its k + 1 nearest rows, itself included at 0, ascending;
    column k is prdc's radius for this k and column j < k the radius for j (duplicates counted). A running
    top-(k + 1) per row over the tiles on and above the diagonal, each tile updating the rows of both of its
    sides; self-distances are set to exactly 0, as sklearn does."""
    n = x.shape[0]
    best = x.new_full((n, k + 1), math.inf)
    tiles = _tiles(n, x.device)
    for ti, (i0, i1) in enumerate(tiles):
        for j0, j1 in tiles[ti:]:
            d2 = _squared_distances(x[i0:i1], norms[i0:i1], x[j0:j1], norms[j0:j1])
            if j0 == i0:
                d2.fill_diagonal_(0)
            width = min(k + 1, d2.shape[1])
            best[i0:i1] = torch.cat([best[i0:i1], d2.topk(width, dim=1, largest=False).values], 1).topk(
                k + 1, dim=1, largest=False).values
            if j0 != i0:
                width = min(k + 1, d2.shape[0])
                best[j0:j1] = torch.cat([best[j0:j1], d2.topk(width, dim=0, largest=False).values.T], 1).topk(
                    k + 1, dim=1, largest=False).values
    return best


def _check_k(k, name: str, metric: str) -> int:
    return _args.positive_int(k, f"{metric}: {name}")


def _prdc(real: torch.Tensor, fake: torch.Tensor, pr_k: int, dc_k: int, metric: str) -> Dict[str, float]:
    """All four k-NN metrics in one pass over the real x fake tiles: precision and recall with pr_k neighbours,
    density and coverage with dc_k (one k-NN pass per set serves both: the radii of every k <= max are kept)."""
    _check_features(real, fake, metric, 1)
    pr_k = _check_k(pr_k, "k" if pr_k == dc_k else "pr_k", metric)
    dc_k = _check_k(dc_k, "k" if pr_k == dc_k else "dc_k", metric)
    k = max(pr_k, dc_k)
    for name, t in (("real_feats", real), ("fake_feats", fake)):
        if t.shape[0] < k + 1:
            raise ValueError(f"{metric}: k = {k} nearest neighbours need at least k + 1 = {k + 1} samples in "
                             f"{name}, got {t.shape[0]}")
    real_norms, fake_norms = _row_norms(real), _row_norms(fake)
    real_nearest = _knn_distances(real, real_norms, k)
    real_pr_radii, real_dc_radii = real_nearest[:, pr_k], real_nearest[:, dc_k]
    fake_radii = _knn_distances(fake, fake_norms, pr_k)[:, pr_k]  # recall's balls; density/coverage use none
    in_real_ball = torch.zeros(fake.shape[0], dtype=torch.bool, device=real.device)  # per fake sample (pr_k)
    in_real_ball_count = torch.zeros(fake.shape[0], dtype=torch.int64, device=real.device)  # per fake (dc_k)
    covered = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)  # real ball holds a fake sample
    recalled = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)  # real sample in a fake ball
    for i0, i1 in _tiles(real.shape[0], real.device):
        for j0, j1 in _tiles(fake.shape[0], fake.device):
            d2 = _squared_distances(real[i0:i1], real_norms[i0:i1], fake[j0:j1], fake_norms[j0:j1])
            inside_dc = d2 < real_dc_radii[i0:i1, None]
            inside_pr = inside_dc if pr_k == dc_k else d2 < real_pr_radii[i0:i1, None]
            in_real_ball[j0:j1] |= inside_pr.any(0)
            in_real_ball_count[j0:j1] += inside_dc.sum(0)
            covered[i0:i1] |= inside_dc.any(1)
            recalled[i0:i1] |= (d2 < fake_radii[None, j0:j1]).any(1)
    return {
        "precision": float(in_real_ball.double().mean()),
        "recall": float(recalled.double().mean()),
        "density": (1.0 / dc_k) * float(in_real_ball_count.double().mean()),  # prdc's order of operations
        "coverage": float(covered.double().mean()),
    }


def precision_recall(real_feats: torch.Tensor, fake_feats: torch.Tensor, *, k: int = 3) -> Dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019), as the ``prdc`` package defines them: the
    radius of a sample is the distance to its k-th nearest neighbour in its own set; precision is the fraction of
    fake samples strictly inside some real sample's ball, recall the fraction of real samples strictly inside
    some fake sample's ball. Tiled (docs/DESIGN.md section 10): memory O((n + m)(d + k) + tile^2), deterministic.
    Returns ``{"precision", "recall"}`` as floats."""
    result = _prdc(real_feats, fake_feats, k, k, "precision_recall")
    return {"precision": result["precision"], "recall": result["recall"]}


def density_coverage(real_feats: torch.Tensor, fake_feats: torch.Tensor, *, k: int = 5) -> Dict[str, float]:
    """Density and coverage (Naeem et al. 2020), as the ``prdc`` package defines them: density is the mean over
    fake samples of how many real balls (k-NN radii) hold them, divided by k; coverage the fraction of real balls
    that hold at least one fake sample. Same tiling and memory as ``precision_recall``.
    Returns ``{"density", "coverage"}`` as floats."""
    result = _prdc(real_feats, fake_feats, k, k, "density_coverage")
    return {"density": result["density"], "coverage": result["coverage"]}


def prdc(real_feats: torch.Tensor, fake_feats: torch.Tensor, *, k: int = 5) -> Dict[str, float]:
    """All four k-NN metrics with one k in one pass (``prdc.compute_prdc``'s interface; its default k is 5)."""
    return _prdc(real_feats, fake_feats, k, k, "prdc")


# ---------------------------------------------------------------------------------------------------------------
# Accumulating over a training loop
# ---------------------------------------------------------------------------------------------------------------

class _Evaluation:
    """What a metric of GANMetrics computes from: the gathered features (real, fake) or the merged streaming
    statistics, the options, and the k-NN pass that precision/recall and density/coverage share (run once)."""

    def __init__(self, metrics: "GANMetrics"):
        self._metrics, self._knn = metrics, None

    def stats(self, real: bool) -> "FeatureStats":
        return self._metrics._all_stats(real)

    def features(self, real: bool) -> torch.Tensor:
        feats = self._metrics._feats[real]
        if not feats:
            raise RuntimeError(f"GANMetrics.compute: no {'real' if real else 'fake'} features were given")
        return gather_rows(torch.cat(feats))

    def knn(self) -> Dict[str, float]:
        if self._knn is None:  # both pairs from one pass over the pairs, each with its own k
            self._knn = _prdc(self.features(True), self.features(False), self._metrics.pr_k, self._metrics.dc_k,
                              "GANMetrics")
        return self._knn


def _kid_keys(value) -> Dict[str, float]:
    if isinstance(value, tuple):  # subsets: (mean, std)
        return {"kid": float(value[0]), "kid_std": float(value[1])}
    return {"kid": float(value)}


def _fid_keys(e: _Evaluation) -> Dict[str, float]:
    real, fake = e.stats(True), e.stats(False)
    return {"fid": float(fid_from_stats(real.mean, real.covariance(), fake.mean, fake.covariance()))}


@dataclass(frozen=True)
class FeatureMetric:
    """A metric GANMetrics accumulates, once: whether it needs the features themselves (kept until compute) or
    only their streaming float64 statistics, and how its result keys come from an evaluation. A new metric is its
    function above and one row here (and a test)."""

    name: str
    keeps_features: bool
    compute: Callable[[_Evaluation], Dict[str, float]]


FEATURE_METRIC_TABLE = {m.name: m for m in (
    FeatureMetric("kid", True, lambda e: _kid_keys(kid(e.features(True), e.features(False),
                                                       **e._metrics.kid_options))),
    FeatureMetric("fid", False, _fid_keys),
    FeatureMetric("precision_recall", True, lambda e: {k: e.knn()[k] for k in ("precision", "recall")}),
    FeatureMetric("density_coverage", True, lambda e: {k: e.knn()[k] for k in ("density", "coverage")}),
)}
FEATURE_METRICS = tuple(FEATURE_METRIC_TABLE)


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of t [n_r, ...], concatenated in rank order, on every rank (torchmetrics' gather: sizes
    first, then equal-size padded all_gather, then trim): what GANMetrics.compute gathers, for any other per-sample
    evaluation (mode_coverage of every rank's samples, say). Call it on every rank of the default group. The
    identity outside torch.distributed."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    world = dist.get_world_size()
    size = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = t.new_zeros((longest,) + tuple(t.shape[1:]))
    padded[: t.shape[0]] = t
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])


class GANMetrics:
    """The feature metrics over a training loop's evaluation: ``update`` with batches of real and fake features as
    they come, ``compute`` at the end, ``reset`` for the next evaluation.

    FID keeps only streaming float64 statistics (``FeatureStats``); KID and the k-NN metrics keep the features
    (they are exact on all samples). Under ``torch.distributed`` each rank updates with its own batches and
    ``compute`` gathers every rank's features in rank order (as torchmetrics does), so every rank returns the
    value one process would on all the samples; call it on every rank.

    ``metrics`` picks from ``FEATURE_METRICS``; ``kid_options`` goes to ``kid`` (e.g. ``{"subsets": 100}``);
    ``pr_k`` and ``dc_k`` are the k of ``precision_recall`` and ``density_coverage``.
    """

    def __init__(self, metrics: Sequence[str] = FEATURE_METRICS, *, kid_options: Optional[dict] = None,
                 pr_k: int = 3, dc_k: int = 5):
        metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
        unknown = [name for name in metrics if name not in FEATURE_METRICS]
        if unknown or not metrics:
            raise ValueError(f"GANMetrics: metrics must be a non-empty subset of {FEATURE_METRICS}, got "
                             f"{metrics}")
        self.metrics = metrics
        self.kid_options = dict(kid_options or {})
        accepted = {"degree", "gamma", "coef", "subsets", "subset_size", "seed"}
        if set(self.kid_options) - accepted:
            raise ValueError(f"GANMetrics: kid_options takes {sorted(accepted)}, got unknown "
                             f"{sorted(set(self.kid_options) - accepted)}")
        self.pr_k = _check_k(pr_k, "pr_k", "GANMetrics")
        self.dc_k = _check_k(dc_k, "dc_k", "GANMetrics")
        self.reset()

    def reset(self) -> None:
        self._feats = {True: [], False: []}
        self._stats: Dict[bool, Optional[FeatureStats]] = {True: None, False: None}
        self._like: Optional[torch.Tensor] = None  # the first batch: later ones must share its width, dtype, device

    def update(self, feats: torch.Tensor, *, real: bool) -> None:
        """Adds a batch [b, d] of real (``real=True``) or fake features. Every batch of an evaluation must share d,
        dtype (float32 or float64) and device; a batch that does not is refused here, not at ``compute``."""
        _args.tensor(feats, "GANMetrics.update: feats", dtypes=(torch.float32, torch.float64))
        if not isinstance(real, bool):
            raise TypeError(f"GANMetrics.update: real must be a bool, got {type(real).__name__}")
        if feats.dim() != 2 or feats.shape[1] == 0:
            raise ValueError(f"GANMetrics.update: feats must be a [b, d] tensor with d >= 1, got shape "
                             f"{tuple(feats.shape)}")
        like = self._like
        if like is not None and (feats.shape[1], feats.dtype, feats.device) != (like.shape[1], like.dtype, like.device):
            raise ValueError(f"GANMetrics.update: feats must have the first batch's width, dtype and device "
                             f"([b, {like.shape[1]}] {like.dtype} on {like.device}), got [b, {feats.shape[1]}] "
                             f"{feats.dtype} on {feats.device}")
        if not _all_finite(feats):
            raise ValueError("GANMetrics.update: features have non-finite values (NaN or inf)")
        feats = feats.detach()
        self._like = feats[:0] if like is None else like
        needs = [FEATURE_METRIC_TABLE[name].keeps_features for name in self.metrics]
        if not all(needs):  # a metric of the statistics alone
            if self._stats[real] is None:
                self._stats[real] = FeatureStats(feats.shape[1], feats.device)
            self._stats[real].update(feats)
        if any(needs):
            self._feats[real].append(feats)

    def _all_stats(self, real: bool) -> FeatureStats:
        stats = self._stats[real]
        if stats is None:
            raise RuntimeError(f"GANMetrics.compute: no {'real' if real else 'fake'} features were given")
        rows = gather_rows(torch.cat([torch.tensor([float(stats.count)], dtype=torch.float64, device=stats.mean.device),
                                       stats.mean, stats.m2.flatten()])[None])
        merged = FeatureStats(stats.mean.shape[0], stats.mean.device)
        d = stats.mean.shape[0]
        for row in rows:
            merged._merge(int(row[0].item()), row[1:1 + d], row[1 + d:].view(d, d))
        return merged

    def compute(self) -> Dict[str, float]:
        evaluation = _Evaluation(self)
        result: Dict[str, float] = {}
        for name in self.metrics:
            result.update(FEATURE_METRIC_TABLE[name].compute(evaluation))
        return result
