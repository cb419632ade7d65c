"""Pure-PyTorch references for every fastgan op, written the way people write them today. They are the spec:
the tests compare fastgan against them (in float64), and the benchmarks time them, eager and under torch.compile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

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


def _bce(inputs: str):
    return F.binary_cross_entropy_with_logits if inputs == "logits" else F.binary_cross_entropy


def _bce_generator(fake, real, saturating, reduction, inputs):
    if saturating:  # log(1 - D(x)) = -softplus(x) from logits; from probabilities with nn.BCELoss's clamp at -100
        if inputs == "logits":
            return _reduce(-_softplus(fake), reduction)
        return -F.binary_cross_entropy(fake, torch.zeros_like(fake), reduction=reduction)
    return _bce(inputs)(fake, torch.ones_like(fake), reduction=reduction)


@dataclass(frozen=True)
class LossFamily:
    """A GAN loss family, once: its reference terms (the spec the kernels are tested against and the benchmarks
    time, written as people write them), which options apply to it, and its lines of the docs' table. The C++ row of
    the same name (csrc/losses/loss_ops.cpp, kFamilies) holds the kernels' terms; a test checks that the two tables
    agree on the names and flags. Tests, wrappers and the docs read every per-family fact from here."""

    name: str
    discriminator_doc: str  # the docs' formula of D's loss (r, f: real and fake logits; s: label smoothing)
    generator_doc: str      # and of G's
    # D's term of each half: real(x, label_smoothing, reduction, inputs), fake(x, reduction, inputs); for a paired
    # family, pair(real, fake, reduction), D's loss of the pairs, instead
    real: Optional[Callable] = None
    fake: Optional[Callable] = None
    pair: Optional[Callable] = None
    # G's loss: generator(fake, real, saturating, reduction, inputs) (real is None unless paired)
    generator: Optional[Callable] = None
    smoothable: bool = False       # label_smoothing applies (the real target 1 becomes 1 - s)
    saturating_form: bool = False  # saturating=True applies (G minimises log(1 - D(G(z))))
    accepts_probs: bool = False    # inputs="probs" applies (D ends in Sigmoid)
    sigmoid_score: bool = False    # the logged D(x) is sigmoid(logit), not the raw score
    squares_logit: bool = False    # a term grows like x²: its exact value overflows float16 past |x| ≈ 362

    @property
    def paired(self) -> bool:
        """One term per (real_i, fake_i) pair: the halves must have one shape, and there are no per-half stats."""
        return self.pair is not None


LOSS_FAMILIES = {family.name: family for family in (
    LossFamily(
        "bce", "mean softplus(-r) + s·r + mean softplus(f), i.e. `BCEWithLogits(r, 1-s) + BCEWithLogits(f, 0)`",
        "non-saturating mean softplus(-f); `saturating=True`: mean log(1 - D(G(z))) = -mean softplus(f)",
        real=lambda x, s, reduction, inputs: _bce(inputs)(x, torch.full_like(x, 1.0 - s), reduction=reduction),
        fake=lambda x, reduction, inputs: _bce(inputs)(x, torch.zeros_like(x), reduction=reduction),
        generator=_bce_generator, smoothable=True, saturating_form=True, accepts_probs=True, sigmoid_score=True),
    LossFamily(
        "hinge", "mean relu(1 - r) + mean relu(1 + f)", "-mean f",
        real=lambda x, s, reduction, inputs: _reduce(F.relu(1.0 - x), reduction),
        fake=lambda x, reduction, inputs: _reduce(F.relu(1.0 + x), reduction),
        generator=lambda f, r, saturating, reduction, inputs: _reduce(-f, reduction)),
    LossFamily(
        "least_squares", "½ mean (r - b)² + ½ mean f², with b = 1 - s (LSGAN, a = 0, b = 1, c = 1)", "½ mean (f - 1)²",
        real=lambda x, s, reduction, inputs: _reduce(0.5 * (x - (1.0 - s)) ** 2, reduction),
        fake=lambda x, reduction, inputs: _reduce(0.5 * x**2, reduction),
        generator=lambda f, r, saturating, reduction, inputs: _reduce(0.5 * (f - 1.0) ** 2, reduction),
        smoothable=True, squares_logit=True),
    LossFamily(
        "least_squares_symmetric", "½ mean (r - 1)² + ½ mean (f + 1)² (LSGAN's a = -1, b = 1, c = 0)", "½ mean f²",
        real=lambda x, s, reduction, inputs: _reduce(0.5 * (x - 1.0) ** 2, reduction),
        fake=lambda x, reduction, inputs: _reduce(0.5 * (x + 1.0) ** 2, reduction),
        generator=lambda f, r, saturating, reduction, inputs: _reduce(0.5 * f**2, reduction), squares_logit=True),
    LossFamily(
        "wasserstein", "mean f - mean r", "-mean f",
        real=lambda x, s, reduction, inputs: _reduce(-x, reduction),
        fake=lambda x, reduction, inputs: _reduce(x, reduction),
        generator=lambda f, r, saturating, reduction, inputs: _reduce(-f, reduction)),
    LossFamily(
        "rpgan", "mean softplus(-(r - f)), r and f paired elementwise (R3GAN)",
        "mean softplus(-(f - r)), gradient to both",
        pair=lambda real, fake, reduction: _reduce(_softplus(fake - real), reduction),
        generator=lambda f, r, saturating, reduction, inputs: _reduce(_softplus(r - f), reduction),
        sigmoid_score=True),
)}
LOSSES = tuple(LOSS_FAMILIES)
# the paired families' names (kept for callers of 0.1; read LOSS_FAMILIES[name].paired)
PAIRED_LOSSES = frozenset(name for name, family in LOSS_FAMILIES.items() if family.paired)


def loss_family(loss: str) -> LossFamily:
    try:
        return LOSS_FAMILIES[loss]
    except KeyError:
        raise ValueError(f"unknown loss {loss!r}; the families are {', '.join(LOSSES)}") from None


def gan_loss(real, fake, *, loss="bce", label_smoothing=0.0, reduction="mean", inputs="logits"):
    """Discriminator loss; see fastgan.fused_gan_loss for the formulas. For reduction='none' returns
    (real_losses, fake_losses), or the pair losses of a paired family."""
    family = loss_family(loss)
    if family.paired:
        return family.pair(real, fake, reduction)
    real_loss = family.real(real, label_smoothing, reduction, inputs)
    fake_loss = family.fake(fake, reduction, inputs)
    if reduction == "none":
        return real_loss, fake_loss
    return real_loss + fake_loss


def generator_loss(fake, *, loss="bce", saturating=False, real_logits=None, reduction="mean", inputs="logits"):
    """Generator loss; see fastgan.fused_generator_loss for the formulas."""
    return loss_family(loss).generator(fake, real_logits, saturating, reduction, inputs)


def gan_loss_stats(real, fake, *, loss="bce", label_smoothing=0.0, inputs="logits") -> dict:
    """The statistics fused_gan_loss(..., return_stats=True) returns, computed the eager way."""
    family = loss_family(loss)
    score = torch.sigmoid if inputs == "logits" and family.sigmoid_score else (lambda x: x)
    stats = {"d_real": score(real).mean(), "d_fake": score(fake).mean()}
    if not family.paired:
        real_loss, fake_loss = gan_loss(
            real, fake, loss=loss, label_smoothing=label_smoothing, reduction="none", inputs=inputs
        )
        stats["loss_real"] = real_loss.mean()
        stats["loss_fake"] = fake_loss.mean()
    return stats


def loss_table() -> str:
    """The docs' table of the loss families (docs/losses.md holds it; a test checks that it is this)."""
    lines = ["| `loss` | discriminator | generator |", "|---|---|---|"]
    lines += [f"| `{f.name}` | {f.discriminator_doc} | {f.generator_doc} |" for f in LOSS_FAMILIES.values()]
    return "\n".join(lines)


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
