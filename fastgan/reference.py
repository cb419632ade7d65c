"""Pure-PyTorch references for every fastgan op, written the way people write them today. They are the spec:
the tests compare fastgan against them (in float64), and the benchmarks time them, eager and under torch.compile.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("bce", "hinge", "least_squares", "wasserstein", "rpgan")
# Losses of paired logits (real_i with fake_i, one term per pair: the C++ table's `paired` rows); the others have a
# term per half. Every Python branch on the layout reads this set.
PAIRED_LOSSES = frozenset({"rpgan"})
MMD_BANDWIDTHS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def _softplus(x: torch.Tensor) -> torch.Tensor:
    # F.softplus returns x itself above its default threshold of 20, dropping log1p(exp(-20)) ~ 2e-9: a relative
    # error of 1e-10 in float64. At 40 the dropped term is below float64's resolution of the result.
    return F.softplus(x, threshold=40.0)


def _reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x


def gan_loss(real, fake, *, loss="bce", label_smoothing=0.0, reduction="mean", inputs="logits"):
    """Discriminator loss; see fastgan.fused_gan_loss for the formulas. For reduction='none' returns
    (real_losses, fake_losses), or the pair losses for rpgan."""
    if loss in PAIRED_LOSSES:
        return _reduce(_softplus(fake - real), reduction)
    if loss == "bce":
        bce = F.binary_cross_entropy_with_logits if inputs == "logits" else F.binary_cross_entropy
        real_loss = bce(real, torch.full_like(real, 1.0 - label_smoothing), reduction=reduction)
        fake_loss = bce(fake, torch.zeros_like(fake), reduction=reduction)
    elif loss == "hinge":
        real_loss = _reduce(F.relu(1.0 - real), reduction)
        fake_loss = _reduce(F.relu(1.0 + fake), reduction)
    elif loss == "least_squares":
        real_loss = _reduce(0.5 * (real - (1.0 - label_smoothing)) ** 2, reduction)
        fake_loss = _reduce(0.5 * fake**2, reduction)
    elif loss == "wasserstein":
        real_loss = _reduce(-real, reduction)
        fake_loss = _reduce(fake, reduction)
    else:
        raise ValueError(f"unknown loss {loss!r}")
    if reduction == "none":
        return real_loss, fake_loss
    return real_loss + fake_loss


def generator_loss(fake, *, loss="bce", saturating=False, real_logits=None, reduction="mean", inputs="logits"):
    """Generator loss; see fastgan.fused_generator_loss for the formulas."""
    if loss == "bce":
        if inputs == "logits":
            if saturating:  # log(1 - sigmoid(x)) = -softplus(x)
                return _reduce(-_softplus(fake), reduction)
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake), reduction=reduction)
        if saturating:  # log(1 - p), with nn.BCELoss's clamp of the log at -100
            return -F.binary_cross_entropy(fake, torch.zeros_like(fake), reduction=reduction)
        return F.binary_cross_entropy(fake, torch.ones_like(fake), reduction=reduction)
    if loss in ("hinge", "wasserstein"):
        return _reduce(-fake, reduction)
    if loss == "least_squares":
        return _reduce(0.5 * (fake - 1.0) ** 2, reduction)
    if loss in PAIRED_LOSSES:
        return _reduce(_softplus(real_logits - fake), reduction)
    raise ValueError(f"unknown loss {loss!r}")


def gan_loss_stats(real, fake, *, loss="bce", label_smoothing=0.0, inputs="logits") -> dict:
    """The statistics fused_gan_loss(..., return_stats=True) returns, computed the eager way."""
    score = torch.sigmoid if inputs == "logits" and (loss == "bce" or loss in PAIRED_LOSSES) else (lambda x: x)
    stats = {"d_real": score(real).mean(), "d_fake": score(fake).mean()}
    if loss not in PAIRED_LOSSES:
        real_loss, fake_loss = gan_loss(
            real, fake, loss=loss, label_smoothing=label_smoothing, reduction="none", inputs=inputs
        )
        stats["loss_real"] = real_loss.mean()
        stats["loss_fake"] = fake_loss.mean()
    return stats


def mmd(x, y, *, bandwidths=MMD_BANDWIDTHS, kernel="rbf", estimator="unbiased", squared=True, exact=True,
        degree=3, gamma=None, coef=1.0):
    """MMD^2 the usual way: the full n x m kernel matrices from torch.cdist (memory O(n m)). exact=True computes
    distances as differences (the spec); exact=False is cdist's default, as people call it, whose matrix-product
    shortcut leaves ~1e-8 where distances are 0 (the diagonals) and cancels for close points. The polynomial
    kernel (gamma a . b + coef)^degree (gamma = 1 / d by default) is one matrix product."""
    mode = "donot_use_mm_for_euclid_dist" if exact else "use_mm_for_euclid_dist_if_necessary"

    def gram(a, b):
        if kernel == "polynomial":
            return ((1.0 / a.shape[1] if gamma is None else gamma) * (a @ b.T) + coef) ** degree
        distance = torch.cdist(a, b, compute_mode=mode)
        if kernel == "energy":
            return -distance
        if kernel == "rbf":
            return sum(torch.exp(-distance**2 / (2 * s * s)) for s in bandwidths)
        return sum(torch.exp(-distance / s) for s in bandwidths)

    kxx, kyy, kxy = gram(x, x), gram(y, y), gram(x, y)
    n, m = len(x), len(y)
    if estimator == "unbiased":
        value = ((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
                 - 2 * kxy.mean())
    else:
        value = kxx.mean() + kyy.mean() - 2 * kxy.mean()
    return value if squared else value.clamp_min(0).sqrt()


def metropolis_hastings(log_prob, x0, steps, step_size, generator=None):
    """Random-walk Metropolis-Hastings over parallel chains, the straightforward way: a loop over steps with torch
    ops (the proposal draw, the log-uniform, the comparison and two selects). Returns the final states."""
    x = x0.clone()
    lp = log_prob(x)
    for _ in range(steps):
        proposal = x + step_size * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        lp_new = log_prob(proposal)
        accept = torch.rand(len(x), generator=generator, dtype=x.dtype, device=x.device).log() < lp_new - lp
        x = torch.where(accept[:, None], proposal, x)
        lp = torch.where(accept, lp_new, lp)
    return x


def mh_gan_select(logits, log_u, init_logit=None):
    """MH-GAN's independent chains over logits [C, K] (Turner et al. 2019), the straightforward way: a loop over the
    K proposals with torch ops over the chains, accepting proposal j when log_u[:, j] < l_j - l_current. Starts at
    init_logit [C] or at proposal 0. Returns (index [C], -1 for the initial state; moved [C])."""
    chains, k = logits.shape
    current = torch.full((chains,), 0 if init_logit is None else -1, device=logits.device)
    current_logit = (logits[:, 0] if init_logit is None else init_logit).clone()
    moved = torch.zeros(chains, dtype=torch.bool, device=logits.device)
    for j in range(1 if init_logit is None else 0, k):
        accept = log_u[:, j] < logits[:, j] - current_logit
        current = torch.where(accept, j, current)
        current_logit = torch.where(accept, logits[:, j], current_logit)
        moved |= accept
    return current, moved


def philox_words(n: int, *, seed: int, offset: int = 0, stream: int = 0) -> torch.Tensor:
    """Words offset .. offset + n - 1 of fastgan's stream (seed, stream), Philox4x32-10 written out from the paper
    (Salmon et al., SC'11) in int64 tensor arithmetic, one block per element: the spec of ``fastgan.random_bits``."""
    low = 0xFFFFFFFF
    w = offset + torch.arange(n, dtype=torch.int64)  # offset + n may be 2^63: not an int64 bound
    j = w // 4  # the block (w < 2^63: its high word is j >> 32)
    c = [j & low, j >> 32, torch.full_like(j, stream & low), torch.full_like(j, stream >> 32)]
    k0, k1 = seed & low, seed >> 32
    for _ in range(10):
        p0, p1 = c[0] * 0xD2511F53, c[2] * 0xCD9E8D57  # exact: a product of two 32-bit values fits in 64 bits...
        hi0, hi1 = (p0 >> 32) & low, (p1 >> 32) & low  # ...as a wrapped int64, whose bits are the same
        c = [hi1 ^ c[1] ^ k0, p1 & low, hi0 ^ c[3] ^ k1, p0 & low]
        k0, k1 = (k0 + 0x9E3779B9) & low, (k1 + 0xBB67AE85) & low
    return torch.stack(c, dim=1).gather(1, (w % 4)[:, None])[:, 0]
