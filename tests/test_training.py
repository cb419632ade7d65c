"""Whole training loops: fastgan's losses swapped into real GAN loops change nothing but the speed."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import setups  # noqa: E402
from conftest import DEVICES  # noqa: E402


@pytest.mark.parametrize("device", DEVICES)
def test_ring_gan_follows_the_reference_loss_curve(device):
    """Same seed, same models, same data: 300 steps of the MLP GAN on the 8-Gaussian ring with the eager reference
    losses and with fastgan's. The per-step losses start 1 float32 ulp apart (1e-7) and, through the chaotic GAN
    dynamics, drift to ~5e-5 by step 300 (measured on CPU); the tolerance 1e-3 leaves 20x room and still fails
    for any real difference in the loss or its gradient (a wrong gradient diverges by > 0.1 within 50 steps)."""
    eager = setups.make_trainer("ring", "eager", 256, device, seed=0)
    fused = setups.make_trainer("ring", "fastgan", 256, device, seed=0)
    eager_curve = torch.stack([torch.stack(eager.step()) for _ in range(300)]).cpu()
    fused_curve = torch.stack([torch.stack(fused.step()) for _ in range(300)]).cpu()
    assert torch.isfinite(eager_curve).all()
    torch.testing.assert_close(fused_curve[:20], eager_curve[:20], rtol=0, atol=1e-5)
    torch.testing.assert_close(fused_curve, eager_curve, rtol=0, atol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_dcgan_tutorial_one_line_swap_gives_the_same_losses(device):
    """The PyTorch DCGAN tutorial loop (Sigmoid + nn.BCELoss) against the same loop with
    fastgan.fused_gan_loss(..., inputs="probs"): the same losses to 1e-5 over 10 steps."""
    tutorial = setups.make_tutorial_trainer(False, 32, device)
    swapped = setups.make_tutorial_trainer(True, 32, device)
    for _ in range(10):
        for a, b in zip(tutorial.step(), swapped.step()):
            assert abs(a.item() - b.item()) <= 1e-5
