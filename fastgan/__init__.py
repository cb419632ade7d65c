"""fastgan: fused C++/CUDA GAN losses and samplers for PyTorch. The public API, re-exported; nothing else."""

from ._ext import build_info
from . import nn, reference
from .losses import LOSSES, fused_gan_loss, fused_generator_loss

__version__ = build_info()["version"]

__all__ = ["LOSSES", "build_info", "fused_gan_loss", "fused_generator_loss", "nn", "reference", "__version__"]
