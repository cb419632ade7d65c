"""The GAN training setups that benchmarks/run.py times and tests/test_training.py checks: the same models, data and
seeds, with the losses computed three ways (eager reference, fastgan, torch.compile of the reference)."""

from __future__ import annotations

import math
from typing import Callable, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

import fastgan
from fastgan import reference

IMPLS = ("eager", "fastgan", "compile")


# ---- data ----


def ring_centres(modes: int = 8, radius: float = 1.0, device="cpu") -> torch.Tensor:
    angles = torch.arange(modes, device=device, dtype=torch.float32) * (2 * math.pi / modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def ring_batch(batch: int, centres: torch.Tensor, std: float = 0.01, generator=None) -> torch.Tensor:
    """The 8-Gaussian ring (PacGAN's synthetic experiment: radius 1, std 0.01), drawn with torch ops."""
    device = centres.device
    modes = torch.randint(len(centres), (batch,), device=device, generator=generator)
    return centres[modes] + std * torch.randn(batch, 2, device=device, generator=generator)


def digits_32x32(device="cpu") -> torch.Tensor:
    """scikit-learn's 8x8 digits (1797 images), upsampled to 32x32 and scaled to [-1, 1]: [N, 1, 32, 32]."""
    from sklearn.datasets import load_digits

    images = torch.tensor(load_digits().images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    return (images * 2 - 1).to(device)


# ---- models ----


def mlp_gan(latent: int = 2, hidden: int = 128):
    generator = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                              nn.Linear(hidden, 2))
    discriminator = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                  nn.Linear(hidden, 1))
    return generator, discriminator


def dcgan(latent: int = 64, width: int = 32, sigmoid: bool = False):
    """The PyTorch DCGAN tutorial's architecture scaled down to 32x32 single-channel images."""
    generator = nn.Sequential(
        nn.ConvTranspose2d(latent, width * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(width * 4), nn.ReLU(True),
        nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.ReLU(True),
        nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
        nn.ConvTranspose2d(width, 1, 4, 2, 1, bias=False), nn.Tanh(),
    )
    layers = [
        nn.Conv2d(1, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width * 2, width * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 4), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width * 4, 1, 4, 1, 0, bias=False), nn.Flatten(),
    ]
    if sigmoid:
        layers.append(nn.Sigmoid())
    return generator, nn.Sequential(*layers)


# ---- training steps ----


def loss_functions(impl: str, inputs: str = "logits"):
    """(d_loss(real_out, fake_out), g_loss(fake_out)) for an implementation."""
    if impl == "fastgan":
        return (lambda r, f: fastgan.fused_gan_loss(r, f, inputs=inputs),
                lambda f: fastgan.fused_generator_loss(f, inputs=inputs))
    return (lambda r, f: reference.gan_loss(r, f, inputs=inputs),
            lambda f: reference.generator_loss(f, inputs=inputs))


# A trainer is one GAN's training step: each call makes a discriminator step and a generator step and returns
# (d_loss, g_loss), detached.
Trainer = Callable[[], Tuple[torch.Tensor, torch.Tensor]]


def make_trainer(kind: str, impl: str, batch: int, device, seed: int = 0) -> Trainer:
    """kind: 'ring' (MLP GAN on the 8-Gaussian ring) or 'dcgan' (DCGAN on the upsampled digits)."""
    torch.manual_seed(seed)  # the initial weights
    rng = torch.Generator(device=device).manual_seed(seed)  # data and noise: each trainer draws its own stream
    if kind == "ring":
        latent = 2
        generator, discriminator = mlp_gan(latent)
        centres = ring_centres(device=device)
        draw_real = lambda: ring_batch(batch, centres, generator=rng)  # noqa: E731
        lr, betas = 1e-3, (0.5, 0.999)
    elif kind == "dcgan":
        latent = 64
        generator, discriminator = dcgan(latent)
        data = digits_32x32(device)
        draw_real = lambda: data[torch.randint(len(data), (batch,), device=device, generator=rng)]  # noqa: E731
        lr, betas = 2e-4, (0.5, 0.999)
    else:
        raise ValueError(kind)
    generator, discriminator = generator.to(device), discriminator.to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
    d_loss_fn, g_loss_fn = loss_functions("fastgan" if impl == "fastgan" else "eager")
    noise_shape = (batch, latent) if kind == "ring" else (batch, latent, 1, 1)

    def d_objective(real, z):
        return d_loss_fn(discriminator(real), discriminator(generator(z).detach()))

    def g_objective(z):
        return g_loss_fn(discriminator(generator(z)))

    if impl == "compile":
        d_objective = torch.compile(d_objective)
        g_objective = torch.compile(g_objective)

    def step():
        real = draw_real()
        d_loss = d_objective(real, torch.randn(noise_shape, device=device, generator=rng))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = g_objective(torch.randn(noise_shape, device=device, generator=rng))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        return d_loss.detach(), g_loss.detach()

    return step


def make_tutorial_trainer(swap: bool, batch: int, device, seed: int = 0) -> Trainer:
    """The PyTorch DCGAN tutorial's loop (D ends in Sigmoid, nn.BCELoss, two backward passes for D), and the same
    loop with its D loss swapped for one fastgan.fused_gan_loss(..., inputs="probs") call."""
    torch.manual_seed(seed)  # the initial weights
    rng = torch.Generator(device=device).manual_seed(seed)  # data and noise
    latent = 64
    generator, discriminator = (m.to(device) for m in dcgan(latent, sigmoid=True))
    data = digits_32x32(device)
    criterion = nn.BCELoss()
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step():
        real = data[torch.randint(len(data), (batch,), device=device, generator=rng)]
        noise = torch.randn(batch, latent, 1, 1, device=device, generator=rng)
        fake = generator(noise)
        discriminator.zero_grad()
        if swap:
            err_d = fastgan.fused_gan_loss(discriminator(real).view(-1), discriminator(fake.detach()).view(-1),
                                           inputs="probs")
            err_d.backward()
        else:
            output = discriminator(real).view(-1)
            err_d_real = criterion(output, torch.ones_like(output))
            err_d_real.backward()
            output = discriminator(fake.detach()).view(-1)
            err_d_fake = criterion(output, torch.zeros_like(output))
            err_d_fake.backward()
            err_d = err_d_real + err_d_fake
        opt_d.step()
        generator.zero_grad()
        output = discriminator(fake).view(-1)
        err_g = (fastgan.fused_generator_loss(output, inputs="probs") if swap
                 else criterion(output, torch.ones_like(output)))
        err_g.backward()
        opt_g.step()
        return err_d.detach(), err_g.detach()

    return step
