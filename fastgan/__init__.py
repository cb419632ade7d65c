"""fastgan: fused C++/CUDA GAN losses and samplers for PyTorch. The public API, re-exported; nothing else."""

from ._ext import build_info
from . import metrics, nn, reference, toy
from .losses import LOSSES, fused_gan_loss, fused_generator_loss
from .chains import metropolis_hastings, mh_gan, mh_gan_select
from .rejection import discriminator_rejection_sampling, drs, drs_accept, rejection_sample
from .mmd import mmd
from .penalties import gradient_penalty, r1_penalty, r2_penalty, wgan_gp
from .sampling import LatentSampler, inverse_transform, latent, random_bits, sample_cdf

__version__ = build_info()["version"]

__all__ = [
    "LOSSES", "LatentSampler", "build_info", "discriminator_rejection_sampling", "drs", "drs_accept",
    "fused_gan_loss", "fused_generator_loss", "gradient_penalty", "inverse_transform", "latent",
    "metropolis_hastings", "mh_gan", "mh_gan_select", "mmd", "r1_penalty", "r2_penalty", "rejection_sample",
    "wgan_gp", "metrics", "nn", "random_bits", "reference", "sample_cdf", "toy", "__version__",
]
