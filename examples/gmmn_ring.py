#!/usr/bin/env python
"""Train a generator on the 8-Gaussian ring with MMD alone: no discriminator (a generative moment matching
network, Li et al. 2015). The real data and the latent noise come from fastgan's samplers, the loss is
fastgan.mmd. Prints mode coverage as training goes and saves a scatter plot of the final samples.

    python examples/gmmn_ring.py [--steps 2000] [--batch 512] [--output gmmn_ring.png]
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import fastgan  # noqa: E402

STD = 0.01  # the ring's mode standard deviation (PacGAN's setting)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--latent", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", default="gmmn_ring.png")
    args = parser.parse_args()

    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(args.latent, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                              nn.Linear(128, 2)).to(args.device)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    noise = fastgan.LatentSampler(args.latent, seed=1, device=args.device)
    # bandwidths from the mode width up to the ring's diameter: the small ones sharpen the modes
    bandwidths = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    for step in range(1, args.steps + 1):
        real, centres = fastgan.toy.ring(args.batch, seed=2, offset=step * args.batch, device=args.device)
        loss = fastgan.mmd(generator(noise(args.batch)), real, bandwidths=bandwidths)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % max(1, args.steps // 5) == 0 or step == args.steps:
            with torch.no_grad():
                samples = generator(fastgan.latent(10_000, args.latent, seed=3, device=args.device))
            coverage = fastgan.metrics.mode_coverage(samples, centres, STD)
            print(f"step {step:5d}  MMD^2 {loss.item():.5f}  modes {coverage['modes']}/{coverage['num_modes']}  "
                  f"high quality {coverage['high_quality']:.1%}  reverse KL {coverage['reverse_kl']:.3f}")
    samples = samples.cpu()
    real = fastgan.toy.ring(10_000, seed=4)[0]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.3, label="real")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.3, label="GMMN (fastgan.mmd)")
    ax.set_aspect("equal")
    ax.legend(loc="upper right")
    ax.set_title(f"MMD-only generator after {args.steps} steps")
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
