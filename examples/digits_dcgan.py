#!/usr/bin/env python
"""Train a small DCGAN on scikit-learn's 8x8 digits with fastgan's fused losses, and evaluate it as papers do: KID,
FID and precision/recall/density/coverage of the generator's samples against the 1797 real digits, in the feature
space of a small classifier that the example first trains on the digits' labels (an "Inception" for 8x8 digits).
Then compare what DRS and MH-GAN do to those numbers.

    python examples/digits_dcgan.py [--steps 4000] [--output-dir examples/results]

Saves digits_dcgan_samples.png (real, generator, DRS and MH-GAN samples) and digits_dcgan_metrics.png (the metrics
over training) and prints the tables. About a minute on 2 CPU cores.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import fastgan  # noqa: E402

LATENT = 16


def digits(device):
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32) / 8 - 1  # 0..16 -> [-1, 1]
    return images[:, None].to(device), torch.tensor(data.target).to(device)


def make_generator():
    return nn.Sequential(
        nn.Linear(LATENT, 128 * 2 * 2), nn.Unflatten(1, (128, 2, 2)), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),  # 4x4
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())  # 8x8


def make_discriminator():
    return nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),  # 4x4
        nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2),  # 2x2
        nn.Flatten(), nn.Linear(128 * 2 * 2, 1))


class FeatureNet(nn.Module):
    """A digit classifier; its 64-wide penultimate layer, before the ReLU, is the feature map of the metrics
    (after the ReLU, units that are dead on every digit would make the covariance singular)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64))
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.head(self.features(x))


def train_feature_net(images, labels, steps=600):
    net = FeatureNet().to(images.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(net(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    accuracy = (net(images).argmax(1) == labels).float().mean().item()
    return net.eval().requires_grad_(False), accuracy


def evaluate(feature_net, real_images, fake_images):
    with torch.no_grad():
        real, fake = feature_net.features(real_images).double(), feature_net.features(fake_images).double()
    scores = {"KID": float(fastgan.metrics.kid(real, fake)), "FID": float(fastgan.metrics.fid(real, fake))}
    scores.update(fastgan.metrics.precision_recall(real, fake, k=3))
    scores.update(fastgan.metrics.density_coverage(real, fake, k=5))
    return scores


def grid(ax, images, title):
    tiles = images[:64].cpu().view(8, 8, 8, 8).permute(0, 2, 1, 3).reshape(64, 64)
    ax.imshow(tiles, cmap="gray", vmin=-1, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output-dir", default="examples/results")
    args = parser.parse_args()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(0)
    real_images, labels = digits(args.device)
    n = len(real_images)
    feature_net, accuracy = train_feature_net(real_images, labels)
    print(f"feature net: {accuracy:.1%} training accuracy on the {n} digits")
    # the floor the metrics can reach: a random half of the real digits against the other half
    half = torch.randperm(n, device=args.device)
    floor = evaluate(feature_net, real_images[half[: n // 2]], real_images[half[n // 2:]])

    generator, discriminator = make_generator().to(args.device), make_discriminator().to(args.device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    noise = fastgan.LatentSampler(LATENT, seed=1, device=args.device)
    eval_noise = fastgan.latent(n, LATENT, seed=2, device=args.device)
    history = []
    for step in range(1, args.steps + 1):
        rows = torch.randint(0, n, (args.batch,), device=args.device)
        fake = generator(noise(args.batch))
        d_loss = fastgan.fused_gan_loss(discriminator(real_images[rows]), discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = fastgan.fused_generator_loss(discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if step % args.eval_every == 0 or step == args.steps:
            generator.eval()
            with torch.no_grad():
                scores = evaluate(feature_net, real_images, generator(eval_noise))
            generator.train()
            history.append((step, scores))
            print(f"step {step:5d}  D {d_loss.item():.3f}  G {g_loss.item():.3f}  " +
                  "  ".join(f"{k} {v:.4f}" for k, v in scores.items()))

    generator.eval().requires_grad_(False)
    discriminator.eval().requires_grad_(False)
    with torch.no_grad():
        plain = generator(eval_noise)
    drs, rate = fastgan.discriminator_rejection_sampling(generator, discriminator, n, LATENT, seed=3,
                                                         device=args.device)
    mh = fastgan.mh_gan(generator, discriminator, n, LATENT, real=real_images[torch.randperm(n, device=args.device)],
                        seed=4, device=args.device)
    results = {"real vs real (floor)": floor, "generator": evaluate(feature_net, real_images, plain),
               f"DRS (acceptance {rate:.0%})": evaluate(feature_net, real_images, drs),
               "MH-GAN (k = 640)": evaluate(feature_net, real_images, mh)}
    keys = list(floor)
    print("\n| samples | " + " | ".join(keys) + " |\n|---|" + "---:|" * len(keys))
    for name, scores in results.items():
        print(f"| {name} | " + " | ".join(f"{scores[k]:.4f}" for k in keys) + " |")

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, (title, images) in zip(axes, [("real digits", real_images), ("generator", plain),
                                          (f"DRS ({rate:.0%} accepted)", drs), ("MH-GAN", mh)]):
        grid(ax, images, title)
    fig.tight_layout()
    fig.savefig(out / "digits_dcgan_samples.png", dpi=100)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    steps = [s for s, _ in history]
    for ax, group in zip(axes, [("KID",), ("FID",), ("precision", "recall", "density", "coverage")]):
        for key in group:
            ax.plot(steps, [scores[key] for _, scores in history], "o-", label=key)
            ax.axhline(floor[key], ls=":", lw=0.8, color=ax.lines[-1].get_color())
        ax.set(xlabel="training step", yscale="log" if group[0] == "FID" else "linear")
        ax.legend(fontsize=8)
    axes[0].set_title("KID (dotted: real vs real)", fontsize=9)
    axes[1].set_title("FID", fontsize=9)
    axes[2].set_title("precision / recall / density / coverage (k = 3, 5)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "digits_dcgan_metrics.png", dpi=100)
    print(f"saved {out / 'digits_dcgan_samples.png'} and {out / 'digits_dcgan_metrics.png'}")


if __name__ == "__main__":
    main()
