#!/usr/bin/env python
"""Train a small DCGAN on scikit-learn's 8x8 digits with fastgan's fused losses, and evaluate it as papers do: KID,
FID and precision/recall/density/coverage of the generator's samples against the 1797 real digits, in the feature
space of a small classifier that the example first trains on the digits' labels (an "Inception" for 8x8 digits).
Then compare what DRS and MH-GAN do to those numbers. Repeats the GAN's training over several seeds (the feature
net and the real-vs-real floor are computed once) and prints each metric as mean ± standard error over seeds, with
the differences that exceed their combined error.

    python examples/digits_dcgan.py [--seeds 3] [--steps 4000] [--output-dir examples/out]

Saves digits_dcgan_samples.png (real, generator, DRS and MH-GAN samples of the first seed), digits_dcgan_metrics.png
(the metrics over training, mean ± standard error over seeds), digits_dcgan.md (the table and the conclusions) and
digits_dcgan.json to --output-dir (examples/out, git-ignored, by default).
"""

import datetime
import json
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import fastgan  # noqa: E402
import seeds  # noqa: E402  (examples/seeds.py: mean ± standard error, the conclusions' rule)

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


def train_and_sample(seed, args, feature_net, real_images):
    """One seed: train the GAN, then draw the 1797 evaluation samples three ways. Returns (history [(step, scores)],
    {sampler: images}, DRS acceptance)."""
    n = len(real_images)
    torch.manual_seed(seed)
    generator, discriminator = make_generator().to(args.device), make_discriminator().to(args.device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    noise = fastgan.LatentSampler(LATENT, seed=10 * seed + 1, device=args.device)
    eval_noise = fastgan.latent(n, LATENT, seed=10 * seed + 2, device=args.device)
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
            print(f"seed {seed} step {step:5d}  D {d_loss.item():.3f}  G {g_loss.item():.3f}  " +
                  "  ".join(f"{k} {v:.4f}" for k, v in scores.items()), flush=True)

    generator.eval().requires_grad_(False)
    discriminator.eval().requires_grad_(False)
    with torch.no_grad():
        plain = generator(eval_noise)
    drs, rate = fastgan.discriminator_rejection_sampling(generator, discriminator, n, LATENT, seed=10 * seed + 3,
                                                         device=args.device)
    mh = fastgan.mh_gan(generator, discriminator, n, LATENT, k=args.mh_k,
                        real=real_images[torch.randperm(n, device=args.device)], seed=10 * seed + 4, device=args.device)
    return history, {"generator": plain, "DRS": drs, f"MH-GAN (k = {args.mh_k})": mh}, rate


def main() -> None:
    parser = seeds.parser(__doc__, seeds=3, seeds_help="independent GAN runs (seeds 0 .. N-1)")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--mh-k", type=int, default=640, help="MH-GAN's proposals per chain (the paper's 640)")
    parser.add_argument("--feature-steps", type=int, default=600, help="training steps of the feature net")
    args = parser.parse_args()
    out = seeds.output_dir(args)

    torch.manual_seed(0)
    real_images, labels = digits(args.device)
    n = len(real_images)
    feature_net, accuracy = train_feature_net(real_images, labels, args.feature_steps)
    print(f"feature net: {accuracy:.1%} training accuracy on the {n} digits")
    # the floor the metrics can reach: a random half of the real digits against the other half
    half = torch.randperm(n, device=args.device)
    floor = evaluate(feature_net, real_images[half[: n // 2]], real_images[half[n // 2:]])
    keys = list(floor)

    names = ("real vs real, two halves (floor)", "generator", "DRS", f"MH-GAN (k = {args.mh_k})")
    values = {name: {k: [] for k in keys} for name in names}
    for k in keys:
        values[names[0]][k].append(floor[k])
    histories, rates, seconds, first = [], [], [], None
    for seed in range(args.seeds):
        start = time.perf_counter()
        history, samples, rate = train_and_sample(seed, args, feature_net, real_images)
        for name, images in samples.items():
            for k, v in evaluate(feature_net, real_images, images).items():
                values[name][k].append(v)
        seconds.append(time.perf_counter() - start)
        histories.append(history)
        rates.append(rate)
        first = first or (samples, rate)
        print(f"seed {seed}: {seconds[-1]:.1f} s", flush=True)

    metrics = {k: (k, {"KID": "{:.1f}", "FID": "{:.2f}"}.get(k, "{:.3f}"), False) for k in keys}
    lines = [f"{args.seeds} seeds, {args.steps} steps, batch {args.batch}; the {n} generated samples of each "
             f"sampler against the {n} real digits; mean ± standard error over seeds (the floor: one split); "
             f"{sum(seconds) / len(seconds):.1f} s per seed (training, evaluation, DRS and MH-GAN). DRS acceptance "
             f"{seeds.cell(rates, '{:.1f}', percent=True)}.", "",
             *seeds.table(values, metrics, "samples (1797)"), "", f"Conclusions ({seeds.PAIRED_RULE}):", ""]
    for name in names[2:]:
        for k in keys:
            lines.append(seeds.compare(name, values[name][k], "the generator", values["generator"][k], k,
                                       metrics[k][1], paired=True))
    text = "\n".join(lines)
    print("\n" + text)
    (out / "digits_dcgan.md").write_text(f"`{seeds.command()}`, {datetime.date.today()}, {seeds.machine()}\n\n"
                                         + text + "\n")
    (out / "digits_dcgan.json").write_text(json.dumps({"args": vars(args), "per_seed": values, "floor": floor,
                                                       "drs_acceptance": rates, "seconds_per_seed": seconds,
                                                       "histories": histories}, indent=1))

    samples, rate = first
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, (title, images) in zip(axes, [("real digits", real_images), ("generator, seed 0", samples["generator"]),
                                          (f"DRS ({rate:.0%} accepted)", samples["DRS"]),
                                          ("MH-GAN", samples[names[3]])]):
        grid(ax, images, title)
    fig.tight_layout()
    fig.savefig(out / "digits_dcgan_samples.png", dpi=100)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    steps = [s for s, _ in histories[0]]
    for ax, group in zip(axes, [("KID",), ("FID",), ("precision", "recall", "density", "coverage")]):
        for key in group:
            per_step = [[history[i][1][key] for history in histories] for i in range(len(steps))]
            mean, se = np.array([seeds.mean_se(v) for v in per_step]).T
            ax.errorbar(steps, mean, yerr=np.nan_to_num(se), fmt="o-", capsize=2, label=key)
            ax.axhline(floor[key], ls=":", lw=0.8, color=ax.lines[-1].get_color())
        ax.set(xlabel="training step", yscale="log" if group[0] == "FID" else "linear")
        ax.legend(fontsize=8)
    axes[0].set_title(f"KID (dotted: real vs real); mean ± se, {args.seeds} seeds", fontsize=9)
    axes[1].set_title("FID", fontsize=9)
    axes[2].set_title("precision / recall / density / coverage (k = 3, 5)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "digits_dcgan_metrics.png", dpi=100)
    print(f"saved {out / 'digits_dcgan_samples.png'}, {out / 'digits_dcgan_metrics.png'}, {out / 'digits_dcgan.md'} "
          f"and {out / 'digits_dcgan.json'}")


if __name__ == "__main__":
    main()
