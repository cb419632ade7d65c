#!/usr/bin/env python
"""Train a generator on the 8-Gaussian ring with MMD alone: no discriminator (a generative moment matching
network, Li et al. 2015). The real data and the latent noise come from fastgan's samplers, the loss is
fastgan.mmd. Repeats the training over several seeds and prints mode coverage, the high-quality fraction and the
reverse KL as mean ± standard error, next to the same metrics of real ring samples (the ceiling); saves a scatter
plot of the first seed's samples.

    python examples/gmmn_ring.py [--seeds 5] [--steps 2000] [--batch 512] [--output-dir examples/out]

Writes gmmn_ring.png, gmmn_ring.md (the table and the conclusions) and gmmn_ring.json to --output-dir
(examples/out, git-ignored, by default).
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
METRICS = {"modes": ("modes (of 8)", "{:.1f}", False), "high_quality": ("high quality", "{:.1f}", True),
           "reverse_kl": ("reverse KL", "{:.3f}", False)}


def train(seed: int, args) -> torch.Tensor:
    """One seed; returns 10,000 samples of the trained generator. The streams' seeds are 10 * seed + k, so seed 0
    is the single run this example made before it took --seeds."""
    torch.manual_seed(seed)
    generator = nn.Sequential(nn.Linear(args.latent, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                              nn.Linear(128, 2)).to(args.device)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    noise = fastgan.LatentSampler(args.latent, seed=10 * seed + 1, device=args.device)
    # bandwidths from the mode width up to the ring's diameter: the small ones sharpen the modes
    bandwidths = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    for step in range(1, args.steps + 1):
        real, _ = fastgan.toy.ring(args.batch, seed=10 * seed + 2, offset=step * args.batch, device=args.device)
        loss = fastgan.mmd(generator(noise(args.batch)), real, bandwidths=bandwidths)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    print(f"seed {seed}: final MMD^2 {loss.item():.5f}", end="", flush=True)
    with torch.no_grad():
        return generator(fastgan.latent(10_000, args.latent, seed=10 * seed + 3, device=args.device))


def main() -> None:
    parser = seeds.parser(__doc__, seeds=5)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--latent", type=int, default=8)
    args = parser.parse_args()
    out = seeds.output_dir(args)
    centres = fastgan.toy.ring(1, seed=0, device=args.device)[1]

    names = ("GMMN (fastgan.mmd)", "real ring samples")
    values = {name: {m: [] for m in METRICS} for name in names}
    seconds, first = [], None
    for seed in range(args.seeds):
        start = time.perf_counter()
        samples = train(seed, args)
        seconds.append(time.perf_counter() - start)
        first = samples.cpu() if first is None else first
        real = fastgan.toy.ring(10_000, seed=10 * seed + 4, device=args.device)[0]
        for name, s in zip(names, (samples, real)):
            coverage = fastgan.metrics.mode_coverage(s, centres, STD)
            for m in METRICS:
                values[name][m].append(float(coverage[m]))
        print(f" ({seconds[-1]:.1f} s): modes {values[names[0]]['modes'][-1]:.0f}/8, high quality "
              f"{values[names[0]]['high_quality'][-1]:.1%}, reverse KL {values[names[0]]['reverse_kl'][-1]:.3f}",
              flush=True)

    lines = [f"{args.seeds} seeds, {args.steps} steps, batch {args.batch}, 10,000 samples; mean ± standard error "
             f"over seeds; {sum(seconds) / len(seconds):.1f} s per seed.", "",
             *seeds.table(values, METRICS, "samples"), "", f"Conclusions ({seeds.RULE}):", ""]
    for m, (header, fmt, pct) in METRICS.items():
        scale = 100 if pct else 1
        lines.append(seeds.compare("the GMMN", [v * scale for v in values[names[0]][m]], "real samples",
                                   [v * scale for v in values[names[1]][m]], header + (" (%)" if pct else ""), fmt))
    text = "\n".join(lines)
    print("\n" + text)
    (out / "gmmn_ring.md").write_text(f"`{seeds.command()}`, {datetime.date.today()}, {seeds.machine()}\n\n"
                                      + text + "\n")
    (out / "gmmn_ring.json").write_text(json.dumps({"args": vars(args), "per_seed": values,
                                                    "seconds_per_seed": seconds}, indent=1))

    real = fastgan.toy.ring(10_000, seed=4)[0]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.3, label="real")
    ax.scatter(first[:, 0], first[:, 1], s=2, alpha=0.3, label="GMMN (fastgan.mmd), seed 0")
    ax.set_aspect("equal")
    ax.legend(loc="upper right")
    hq = seeds.cell(values[names[0]]["high_quality"], "{:.0f}", percent=True)
    ax.set_title(f"MMD-only generator after {args.steps} steps\nhigh quality {hq} ({args.seeds} seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "gmmn_ring.png", dpi=110)
    print(f"saved {out / 'gmmn_ring.png'}, {out / 'gmmn_ring.md'} and {out / 'gmmn_ring.json'}")


if __name__ == "__main__":
    main()
