"""torch.nn modules with the same arguments as the functional API (fastgan.fused_gan_loss, ...)."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from .losses import fused_gan_loss, fused_generator_loss
from .mmd import mmd
from .penalties import r1_penalty, r2_penalty, wgan_gp


class GANLoss(torch.nn.Module):
    """Discriminator loss module: ``GANLoss(loss="hinge")(real_logits, fake_logits)``; see fused_gan_loss."""

    def __init__(self, loss: str = "bce", *, label_smoothing: float = 0.0, reduction: str = "mean",
                 inputs: str = "logits", return_stats: bool = False):
        super().__init__()
        self.loss, self.label_smoothing, self.reduction = loss, label_smoothing, reduction
        self.inputs, self.return_stats = inputs, return_stats

    def forward(self, real_logits: torch.Tensor, fake_logits: torch.Tensor):
        return fused_gan_loss(real_logits, fake_logits, loss=self.loss, label_smoothing=self.label_smoothing,
                              reduction=self.reduction, inputs=self.inputs, return_stats=self.return_stats)

    def extra_repr(self) -> str:
        return f"loss={self.loss!r}, label_smoothing={self.label_smoothing}, reduction={self.reduction!r}, inputs={self.inputs!r}"


class GeneratorLoss(torch.nn.Module):
    """Generator loss module: ``GeneratorLoss()(fake_logits)``; see fused_generator_loss."""

    def __init__(self, loss: str = "bce", *, saturating: bool = False, reduction: str = "mean",
                 inputs: str = "logits", return_stats: bool = False):
        super().__init__()
        self.loss, self.saturating, self.reduction = loss, saturating, reduction
        self.inputs, self.return_stats = inputs, return_stats

    def forward(self, fake_logits: torch.Tensor, real_logits: Optional[torch.Tensor] = None):
        return fused_generator_loss(fake_logits, loss=self.loss, saturating=self.saturating, real_logits=real_logits,
                                    reduction=self.reduction, inputs=self.inputs, return_stats=self.return_stats)

    def extra_repr(self) -> str:
        return f"loss={self.loss!r}, saturating={self.saturating}, reduction={self.reduction!r}, inputs={self.inputs!r}"


class MMDLoss(torch.nn.Module):
    """MMD^2 loss module (a GMMN's generator loss): ``MMDLoss(kernel="rbf")(x, y)``; see fastgan.mmd."""

    def __init__(self, *, bandwidths: Optional[Sequence[float]] = None, kernel: str = "rbf",
                 estimator: str = "unbiased", squared: bool = True, degree: Optional[int] = None,
                 gamma: Optional[float] = None, coef: Optional[float] = None):
        super().__init__()
        self.bandwidths = None if bandwidths is None else tuple(float(b) for b in bandwidths)
        self.kernel, self.estimator, self.squared = kernel, estimator, squared
        self.degree, self.gamma, self.coef = degree, gamma, coef

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mmd(x, y, bandwidths=self.bandwidths, kernel=self.kernel, estimator=self.estimator,
                   squared=self.squared, degree=self.degree, gamma=self.gamma, coef=self.coef)

    def extra_repr(self) -> str:
        options = {"bandwidths": self.bandwidths, "degree": self.degree, "gamma": self.gamma, "coef": self.coef}
        given = "".join(f", {name}={value}" for name, value in options.items() if value is not None)
        return f"kernel={self.kernel!r}, estimator={self.estimator!r}, squared={self.squared}{given}"


class R1Penalty(torch.nn.Module):
    """R1 penalty module: ``R1Penalty(gamma=10.0, interval=1)(D(real), real)``; see fastgan.r1_penalty."""

    def __init__(self, gamma: float = 10.0, interval: int = 1):
        super().__init__()
        self.gamma, self.interval = gamma, interval

    def forward(self, d_out: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return r1_penalty(d_out, real, gamma=self.gamma, interval=self.interval)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, interval={self.interval}"


class R2Penalty(R1Penalty):
    """R2 penalty module: ``R2Penalty(gamma)(D(fake), fake)``; see fastgan.r2_penalty."""

    def forward(self, d_out: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return r2_penalty(d_out, fake, gamma=self.gamma, interval=self.interval)


class WGANGP(torch.nn.Module):
    """WGAN-GP module around a critic: ``WGANGP(D, weight=10.0)(real, fake, seed=...)``; see fastgan.wgan_gp."""

    def __init__(self, discriminator, *, weight: float = 10.0, centre: float = 1.0):
        super().__init__()
        self.discriminator, self.weight, self.centre = discriminator, weight, centre

    def forward(self, real: torch.Tensor, fake: torch.Tensor, **draw) -> torch.Tensor:
        return wgan_gp(self.discriminator, real, fake, weight=self.weight, centre=self.centre, **draw)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, centre={self.centre}"
