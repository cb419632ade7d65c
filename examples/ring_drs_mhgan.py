#!/usr/bin/env python
"""Train a small GAN on the 8-Gaussian ring with fastgan's fused losses, then draw from it three ways: the plain
generator, discriminator rejection sampling (DRS) and MH-GAN. Repeats this over several seeds and prints mode
coverage, the high-quality fraction and the reverse KL of each sampler as mean ± standard error, with the
differences that exceed their combined error; saves the three scatter plots of the first seed.

    python examples/ring_drs_mhgan.py [--seeds 5] [--steps 3000] [--output-dir examples/out]

Writes ring_drs_mhgan.png, ring_drs_mhgan.md (the table and the conclusions) and ring_drs_mhgan.json to
--output-dir (examples/out, git-ignored, by default).
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

STD = 0.01  # the ring's mode standard deviation (PacGAN's setting)
SAMPLERS = ("generator", "DRS", "MH-GAN (k = 640)")
METRICS = {"modes": ("modes (of 8)", "{:.1f}", False), "high_quality": ("high quality", "{:.1f}", True),
           "reverse_kl": ("reverse KL", "{:.3f}", False)}


def mlp(inputs, outputs, hidden=128):
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, outputs))


def run(seed: int, args):
    """One seed: train, then draw with each sampler. Every fastgan stream's seed is 10 * seed + k, so seed 0 is
    the single run this example made before it took --seeds. Returns ({sampler: samples}, DRS acceptance)."""
    torch.manual_seed(seed)
    generator, discriminator = mlp(args.latent, 2).to(args.device), mlp(2, 1).to(args.device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    noise = fastgan.LatentSampler(args.latent, seed=10 * seed + 1, device=args.device)
    for step in range(args.steps):
        real, _ = fastgan.toy.ring(args.batch, seed=10 * seed + 2, offset=step * args.batch, device=args.device)
        d_loss = fastgan.fused_gan_loss(discriminator(real), discriminator(generator(noise(args.batch)).detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = fastgan.fused_generator_loss(discriminator(generator(noise(args.batch))))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    with torch.no_grad():
        plain = generator(fastgan.latent(args.samples, args.latent, seed=10 * seed + 3, device=args.device))
    drs, rate = fastgan.discriminator_rejection_sampling(generator, discriminator, args.samples, args.latent,
                                                         seed=10 * seed + 4, device=args.device)
    real_starts = fastgan.toy.ring(args.samples, seed=10 * seed + 5, device=args.device)[0]
    mh = fastgan.mh_gan(generator, discriminator, args.samples, args.latent, real=real_starts, seed=10 * seed + 6,
                        device=args.device)
    return dict(zip(SAMPLERS, (plain, drs, mh))), rate


def main() -> None:
    parser = seeds.parser(__doc__, seeds=5)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--latent", type=int, default=2)
    args = parser.parse_args()
    out = seeds.output_dir(args)
    centres = fastgan.toy.ring(1, seed=0, device=args.device)[1]

    values = {name: {m: [] for m in METRICS} for name in SAMPLERS}
    rates, seconds, first = [], [], None
    for seed in range(args.seeds):
        start = time.perf_counter()
        samples, rate = run(seed, args)
        seconds.append(time.perf_counter() - start)
        rates.append(rate)
        first = first or (samples, rate)
        line = []
        for name, s in samples.items():
            coverage = fastgan.metrics.mode_coverage(s, centres, STD)
            for m in METRICS:
                values[name][m].append(float(coverage[m]))
            line.append(f"{name} {coverage['modes']}/8 {coverage['high_quality']:.1%} KL {coverage['reverse_kl']:.3f}")
        print(f"seed {seed} ({seconds[-1]:.1f} s, DRS acceptance {rate:.0%}): " + ", ".join(line), flush=True)

    lines = [f"{args.seeds} seeds, {args.steps} steps, batch {args.batch}, {args.samples} samples per sampler; mean "
             f"± standard error over seeds; {sum(seconds) / len(seconds):.1f} s per seed (training and the three "
             f"samplers). DRS acceptance {seeds.cell(rates, '{:.1f}', percent=True)}.", "",
             *seeds.table(values, METRICS, "sampler"), "", f"Conclusions ({seeds.PAIRED_RULE}):", ""]
    for name in SAMPLERS[1:]:
        for m, (header, fmt, pct) in METRICS.items():
            scale = 100 if pct else 1
            lines.append(seeds.compare(name, [v * scale for v in values[name][m]], "the generator",
                                       [v * scale for v in values["generator"][m]], header + (" (%)" if pct else ""),
                                       fmt, paired=True))
    text = "\n".join(lines)
    print("\n" + text)
    (out / "ring_drs_mhgan.md").write_text(f"`{seeds.command()}`, {datetime.date.today()}, {seeds.machine()}\n\n"
                                           + text + "\n")
    (out / "ring_drs_mhgan.json").write_text(json.dumps({"args": vars(args), "per_seed": values,
                                                         "drs_acceptance": rates, "seconds_per_seed": seconds},
                                                        indent=1))

    samples, rate = first
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), sharex=True, sharey=True)
    for ax, (name, s) in zip(axes, samples.items()):
        coverage = fastgan.metrics.mode_coverage(s, centres, STD)
        s = s.cpu()
        ax.scatter(centres[:, 0].cpu(), centres[:, 1].cpu(), s=60, c="black", marker="x")
        ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.3)
        title = f"DRS (acceptance {rate:.0%})" if name == "DRS" else name
        # seed 0 alone (its figure is the same whatever --seeds is); the means over seeds are in the .md table
        ax.set_title(f"{title}, seed 0\n{coverage['modes']}/8 modes, {coverage['high_quality']:.0%} high quality",
                     fontsize=10)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(out / "ring_drs_mhgan.png", dpi=100)
    print(f"saved {out / 'ring_drs_mhgan.png'}, {out / 'ring_drs_mhgan.md'} and {out / 'ring_drs_mhgan.json'}")


if __name__ == "__main__":
    main()
