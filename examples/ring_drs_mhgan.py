#!/usr/bin/env python
"""Train a small GAN on the 8-Gaussian ring with fastgan's fused losses, then draw from it three ways: the plain
generator, discriminator rejection sampling (DRS) and MH-GAN. Prints mode coverage and the high-quality fraction
for each and saves the three scatter plots.

    python examples/ring_drs_mhgan.py [--steps 3000] [--output ring_drs_mhgan.png]
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import fastgan  # noqa: E402

STD = 0.01  # the ring's mode standard deviation (PacGAN's setting)


def mlp(inputs, outputs, hidden=128):
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, outputs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--latent", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", default="ring_drs_mhgan.png")
    args = parser.parse_args()

    torch.manual_seed(0)
    generator, discriminator = mlp(args.latent, 2).to(args.device), mlp(2, 1).to(args.device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    noise = fastgan.LatentSampler(args.latent, seed=1, device=args.device)
    for step in range(args.steps):
        real, centres = fastgan.toy.ring(args.batch, seed=2, offset=step * args.batch, device=args.device)
        d_loss = fastgan.fused_gan_loss(discriminator(real), discriminator(generator(noise(args.batch)).detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = fastgan.fused_generator_loss(discriminator(generator(noise(args.batch))))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    print(f"trained {args.steps} steps: D loss {d_loss.item():.3f}, G loss {g_loss.item():.3f}")

    with torch.no_grad():
        plain = generator(fastgan.latent(args.samples, args.latent, seed=3, device=args.device))
    drs, rate = fastgan.discriminator_rejection_sampling(generator, discriminator, args.samples, args.latent, seed=4,
                                                         device=args.device)
    real_starts = fastgan.toy.ring(args.samples, seed=5, device=args.device)[0]
    mh = fastgan.mh_gan(generator, discriminator, args.samples, args.latent, real=real_starts, seed=6,
                        device=args.device)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), sharex=True, sharey=True)
    for ax, (name, samples) in zip(axes, [("generator", plain), (f"DRS (acceptance {rate:.0%})", drs),
                                         ("MH-GAN (k = 640)", mh)]):
        coverage = fastgan.metrics.mode_coverage(samples, centres, STD)
        print(f"{name:28s} modes {coverage['modes']}/{coverage['num_modes']}  high quality "
              f"{coverage['high_quality']:.1%}  reverse KL {coverage['reverse_kl']:.3f}")
        samples = samples.cpu()
        ax.scatter(centres[:, 0].cpu(), centres[:, 1].cpu(), s=60, c="black", marker="x")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.3)
        ax.set_title(f"{name}\n{coverage['modes']}/8 modes, {coverage['high_quality']:.0%} high quality")
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
