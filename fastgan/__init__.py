"""fastgan: fused C++/CUDA GAN losses and samplers for PyTorch. The public API, re-exported; nothing else."""

from ._ext import build_info
from . import metrics, nn, reference, toy
from .losses import LOSSES, fused_gan_loss, fused_generator_loss
from .mcmc import drs, metropolis_hastings, mh_gan_select
from .mmd import mmd
from .sampling import LatentSampler, inverse_transform, latent, random_bits, sample_cdf

__version__ = build_info()["version"]

__all__ = [
    "LOSSES", "LatentSampler", "build_info", "drs", "fused_gan_loss", "fused_generator_loss", "inverse_transform",
    "latent", "metropolis_hastings", "mh_gan_select", "mmd",
    "metrics", "nn", "random_bits", "reference", "sample_cdf", "toy", "__version__",
]
