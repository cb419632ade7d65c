"""Sample-quality measures for the toy distributions (PacGAN, Lin et al. 2018; VEEGAN, Srivastava et al. 2017)."""

from __future__ import annotations

from typing import Dict

import torch


def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, std: float) -> Dict[str, float]:
    """How well samples [N, D] cover the modes centres [K, D] of a mixture with per-mode standard deviation std.

    A sample is high quality when it lies within 3 std of its nearest centre. Returns:

    - ``modes``: how many modes have at least one high-quality sample, out of ``num_modes``;
    - ``high_quality``: the fraction of samples that are high quality;
    - ``reverse_kl``: KL(q || uniform) of the histogram q of the high-quality samples over the modes, 0 when they
      spread evenly, log K when they all sit on one mode (inf with no high-quality sample).
    """
    if samples.dim() != 2 or centres.dim() != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"samples [N, D] and centres [K, D] must share D, got {tuple(samples.shape)} and "
                         f"{tuple(centres.shape)}")
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    distance, nearest = torch.cdist(samples.double(), centres.double(), compute_mode="donot_use_mm_for_euclid_dist").min(1)
    good = distance <= 3 * std
    counts = torch.bincount(nearest[good], minlength=len(centres)).double()
    total = counts.sum().item()
    if total == 0:
        reverse_kl = float("inf")
    else:
        q = counts / total
        nonzero = q > 0
        reverse_kl = float((q[nonzero] * (q[nonzero] * len(centres)).log()).sum())
    return {
        "modes": int((counts > 0).sum().item()),
        "num_modes": len(centres),
        "high_quality": float(good.double().mean().item()) if len(samples) else 0.0,
        "reverse_kl": reverse_kl,
    }
