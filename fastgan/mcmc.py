"""Deprecated module, kept for one release: its samplers moved to fastgan.chains (Metropolis-Hastings, MH-GAN) and
fastgan.rejection (rejection sampling, DRS), and fastgan exports every one of them. The module name held rejection
samplers, which are not Markov chains."""

import warnings

from . import chains, rejection

_MOVED = {name: module for module in (chains, rejection) for name in (
    "metropolis_hastings", "mh_gan_select", "mh_gan", "rejection_sample", "drs", "drs_accept",
    "discriminator_rejection_sampling") if hasattr(module, name)}


def __getattr__(name):
    if name in _MOVED:
        module = _MOVED[name]
        warnings.warn(f"fastgan.mcmc is deprecated: use {module.__name__}.{name} (or fastgan.{name})",
                      DeprecationWarning, stacklevel=2)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
