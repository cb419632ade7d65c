#!/usr/bin/env python
"""R3GAN's objective (Huang et al. 2024: the relativistic pairing loss with R1 and R2) against the plain
non-saturating GAN, on the 25-Gaussian grid and the 8-Gaussian ring, trained the same number of steps with the same
networks, over several seeds. Reports mode coverage and the high-quality fraction (fastgan.metrics.mode_coverage) as
mean ± standard error, and saves the samples of the first seed.

    python examples/r3gan_toy.py [--seeds 5] [--steps 2000] [--output-dir examples/out]

Everything fastgan: the data and the noise from its streams, the losses (loss="rpgan" and "bce"), the penalties
(r1_penalty, r2_penalty: one fused kernel each over D's input gradient), the coverage metric.
"""

import datetime
import json
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import fastgan  # noqa: E402
import seeds  # noqa: E402  (examples/seeds.py: mean ± standard error, the conclusions' rule)

DATASETS = {"grid": (fastgan.toy.grid, 0.05), "ring": (fastgan.toy.ring, 0.01)}  # (sampler, mode std)
METHODS = ("non-saturating", "R3GAN (rpgan + R1 + R2)")


def mlp(inputs, outputs, hidden=128):
    return nn.Sequential(nn.Linear(inputs, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
                         nn.Linear(hidden, outputs))


def train(method: str, dataset: str, seed: int, args) -> torch.Tensor:
    """One run; returns 10,000 samples of the trained generator."""
    draw, _ = DATASETS[dataset]
    torch.manual_seed(seed)
    generator, critic = mlp(args.latent, 2).to(args.device), mlp(2, 1).to(args.device)
    # R3GAN's Adam (beta1 = 0, beta2 = 0.99); the same for both methods, so the objective is the one difference
    opt_g = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(critic.parameters(), lr=args.lr, betas=(0.0, 0.99))
    noise = fastgan.LatentSampler(args.latent, seed=seed, stream=0, device=args.device)
    r3gan = method.startswith("R3GAN")
    for step in range(args.steps):
        real, _ = draw(args.batch, seed=seed, stream=2, offset=step * args.batch, device=args.device)
        fake = generator(noise(args.batch)).detach()
        if r3gan:
            real.requires_grad_()
            fake.requires_grad_()
            d_real, d_fake = critic(real), critic(fake)
            d_loss = (fastgan.fused_gan_loss(d_real, d_fake, loss="rpgan")
                      + fastgan.r1_penalty(d_real, real, gamma=args.gamma)
                      + fastgan.r2_penalty(d_fake, fake, gamma=args.gamma))
        else:
            d_loss = fastgan.fused_gan_loss(critic(real), critic(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        fake = generator(noise(args.batch))
        if r3gan:
            g_loss = fastgan.fused_generator_loss(critic(fake), loss="rpgan", real_logits=critic(real.detach()))
        else:
            g_loss = fastgan.fused_generator_loss(critic(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    with torch.no_grad():
        return generator(fastgan.latent(10_000, args.latent, seed=seed, stream=5, device=args.device)).cpu()


def main() -> None:
    parser = seeds.parser(__doc__, seeds=5, seeds_help="independent runs per method and dataset")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--gamma", type=float, default=0.1, help="R1 and R2 weight (gamma / 2 each)")
    args = parser.parse_args()
    out = seeds.output_dir(args)

    results = {}  # "dataset | method" -> list of coverage dicts, one per seed
    first = {}
    seconds = []
    for dataset, (draw, std) in DATASETS.items():
        centres = draw(1, seed=0)[1]
        for method in METHODS:
            for seed in range(args.seeds):
                start = time.perf_counter()
                samples = train(method, dataset, seed, args)
                seconds.append(time.perf_counter() - start)
                coverage = fastgan.metrics.mode_coverage(samples, centres, std)
                results.setdefault(f"{dataset} | {method}", []).append(coverage)
                first.setdefault((dataset, method), samples)
                print(f"{dataset:4s}  {method:25s}  seed {seed}: {coverage['modes']}/{coverage['num_modes']} modes, "
                      f"{coverage['high_quality']:.1%} high quality ({seconds[-1]:.1f} s)", flush=True)

    metrics = {"modes": ("modes covered", "{:.1f}", False), "high_quality": ("high-quality fraction", "{:.1f}", True),
               "reverse_kl": ("reverse KL", "{:.3f}", False)}
    per_run = {key: {m: [r[m] for r in runs] for m in metrics} for key, runs in results.items()}
    rows = {key.replace(" | ", ", "): values for key, values in per_run.items()}
    lines = [f"{args.seeds} seeds, {args.steps} steps, batch {args.batch}, gamma {args.gamma:g}; mean ± standard "
             f"error over seeds; {sum(seconds) / len(seconds):.1f} s per training run (one method, one dataset, one "
             "seed).", "", *seeds.table(rows, metrics, "dataset, method"), "",
             f"Conclusions ({seeds.RULE}):", ""]
    for dataset in DATASETS:
        r3gan, plain = per_run[f"{dataset} | {METHODS[1]}"], per_run[f"{dataset} | {METHODS[0]}"]
        for metric, (header, fmt, pct) in metrics.items():
            lines.append(seeds.compare(f"R3GAN on {dataset}", [v * (100 if pct else 1) for v in r3gan[metric]],
                                       "non-saturating", [v * (100 if pct else 1) for v in plain[metric]],
                                       header + (" (%)" if pct else ""), fmt))
    text = "\n".join(lines)
    print("\n" + text)
    (out / "r3gan_toy.md").write_text(f"`{seeds.command()}`, {datetime.date.today()}, {seeds.machine()}\n\n"
                                      + text + "\n")
    summary = {key: {m: dict(zip(("mean", "standard_error"), seeds.mean_se(v))) for m, v in values.items()}
               for key, values in per_run.items()}
    (out / "r3gan_toy.json").write_text(json.dumps({"args": vars(args), "summary": summary, "runs": results,
                                                    "seconds_per_run": seconds}, indent=1))

    fig, axes = plt.subplots(2, 2, figsize=(9, 9))
    for row, dataset in enumerate(DATASETS):
        centres = DATASETS[dataset][0](1, seed=0)[1]
        for col, method in enumerate(METHODS):
            ax, samples = axes[row][col], first[(dataset, method)]
            ax.scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.2)
            ax.scatter(centres[:, 0], centres[:, 1], s=30, c="black", marker="x")
            stats = summary[f"{dataset} | {method}"]
            ax.set_title(f"{dataset}: {method}\nhigh quality {stats['high_quality']['mean']:.1%} "
                         f"± {stats['high_quality']['standard_error']:.1%} ({args.seeds} seeds)", fontsize=9)
            ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(out / "r3gan_toy.png", dpi=90)
    print(f"\nsaved {out / 'r3gan_toy.png'}, {out / 'r3gan_toy.md'} and {out / 'r3gan_toy.json'}")


if __name__ == "__main__":
    main()
