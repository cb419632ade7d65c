"""docs/domains.md, checked against the code: each row's accepted example runs, and each refused example raises
TypeError or ValueError with the argument's name in the message."""

import math
import pathlib
import re

import pytest
import torch

import fastgan

TABLE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "domains.md"
NAMESPACE = {"torch": torch, "math": math, "inf": math.inf, "nan": math.nan}


def rows():
    for line in TABLE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue
        function, argument = cells[0].strip("`"), cells[1].strip("`")
        accepted = re.findall(r"`([^`]*)`", cells[3])
        refused = re.findall(r"`([^`]*)`", cells[4])
        yield function, argument, accepted[0], refused


def propose(k):
    return torch.rand(k, 2), torch.zeros(k)


def _metrics_update(feats):
    metrics = fastgan.metrics.GANMetrics(("kid",))
    metrics.update(torch.rand(4, 3), real=True)
    metrics.update(feats, real=False)


def _penalty(function, name, **a):
    """function(D(x), x, ...) with x the argument `name` (a fresh leaf that requires grad unless given)."""
    x = a.pop(name, None)
    x = torch.rand(4, 3).requires_grad_() if x is None else x
    critic = torch.nn.Linear(3, 1)
    return function(critic(x) if x.shape[0] == 4 else critic(torch.rand(4, 3)), x, **a)


# Each function with every argument at a valid value; `context` makes an argument apply (a uniform's low needs
# dist="uniform").
CALLS = {
    "random_bits": (lambda **a: fastgan.random_bits(**{"n": 5, "seed": 0, **a}), {}),
    "latent": (lambda **a: fastgan.latent(**{"n": 2, "dim": 3, "seed": 0, **a}),
               {"truncation": {"dist": "truncated_normal"}, "low": {"dist": "uniform"},
                "high": {"dist": "uniform", "low": -3.0}, "p": {"dist": "bernoulli"}}),
    "inverse_transform": (lambda **a: fastgan.inverse_transform(**{"n": 4, "dist": "exponential", "seed": 0, **a}),
                          {"loc": {"dist": "logistic"}, "scale": {"dist": "cauchy"}}),
    "sample_cdf": (lambda **a: fastgan.sample_cdf(**{"cdf": torch.tensor([0.2, 1.0]), "n": 7, "seed": 0, **a}), {}),
    "LatentSampler": (lambda **a: fastgan.LatentSampler(**{"dim": 8, "seed": 0, **a})(2),
                      {"low": {"dist": "uniform"}}),
    "toy.ring": (lambda **a: fastgan.toy.ring(**{"n": 16, "seed": 0, **a}), {}),
    "fused_gan_loss": (lambda **a: fastgan.fused_gan_loss(**{"real_logits": torch.zeros(3),
                                                             "fake_logits": torch.zeros(3), **a}),
                       {"inputs": {"real_logits": torch.full((3,), 0.5), "fake_logits": torch.full((3,), 0.5)}}),
    "fused_generator_loss": (lambda **a: fastgan.fused_generator_loss(**{"fake_logits": torch.zeros(3), **a}), {}),
    "mmd": (lambda **a: fastgan.mmd(**{"x": torch.rand(4, 2), "y": torch.rand(5, 2), **a}),
            {"degree": {"kernel": "polynomial"}, "gamma": {"kernel": "polynomial"}}),
    "metropolis_hastings": (lambda **a: fastgan.metropolis_hastings(
        **{"log_prob": lambda x: -x.square().sum(1), "x0": torch.zeros(4, 2), "steps": 3, "step_size": 0.1,
           "seed": 0, **a}), {}),
    "rejection_sample": (lambda **a: fastgan.rejection_sample(
        **{"log_target": lambda x: torch.zeros(len(x)), "propose": propose, "log_envelope": 0.0, "n": 4, "seed": 0,
           **a}), {}),
    "drs_accept": (lambda **a: fastgan.drs_accept(**{"logits": torch.zeros(4), "max_logit": 1.0, "seed": 0, **a}), {}),
    "mh_gan_select": (lambda **a: fastgan.mh_gan_select(**{"logits": torch.zeros(2, 3), "seed": 0, **a}), {}),
    "mh_gan": (lambda **a: fastgan.mh_gan(**{"generator": torch.nn.Linear(2, 2), "discriminator": torch.nn.Linear(2, 1),
                                             "n": 2, "latent_dim": 2, "seed": 0, **a}), {}),
    "discriminator_rejection_sampling": (lambda **a: fastgan.discriminator_rejection_sampling(
        **{"generator": torch.nn.Linear(2, 2), "discriminator": torch.nn.Linear(2, 1), "n": 2, "latent_dim": 2,
           "seed": 0, **a}), {}),
    "gradient_penalty": (lambda **a: fastgan.gradient_penalty(**{"grads": torch.rand(3, 2), **a}), {}),
    "r1_penalty": (lambda **a: _penalty(fastgan.r1_penalty, "real", **a), {}),
    "r2_penalty": (lambda **a: _penalty(fastgan.r2_penalty, "fake", **a), {}),
    "wgan_gp": (lambda **a: fastgan.wgan_gp(**{"discriminator": torch.nn.Linear(3, 1), "real": torch.rand(4, 3),
                                               "fake": torch.rand(4, 3), "seed": 0, **a}), {}),
    "metrics.kid": (lambda **a: fastgan.metrics.kid(**{"real_feats": torch.rand(5, 3), "fake_feats": torch.rand(5, 3),
                                                       **a}), {}),
    "metrics.fid": (lambda **a: fastgan.metrics.fid(**{"real_feats": torch.rand(5, 3), "fake_feats": torch.rand(5, 3),
                                                       **a}), {}),
    "metrics.fid_from_stats": (lambda **a: fastgan.metrics.fid_from_stats(
        **{"mu1": torch.zeros(2), "sigma1": torch.eye(2), "mu2": torch.ones(2), "sigma2": torch.eye(2), **a}), {}),
    "metrics.prdc": (lambda **a: fastgan.metrics.prdc(**{"real_feats": torch.rand(5, 3),
                                                         "fake_feats": torch.rand(5, 3), **a}), {}),
    "metrics.mode_coverage": (lambda **a: fastgan.metrics.mode_coverage(**{"samples": torch.zeros(3, 2),
                                                                           "centres": torch.zeros(2, 2), "std": 0.1,
                                                                           **a}), {}),
    "metrics.GANMetrics": (lambda **a: fastgan.metrics.GANMetrics(**a), {}),
    "metrics.GANMetrics.update": (lambda **a: _metrics_update(**a), {}),
}

ROWS = list(rows())


def test_the_table_covers_every_public_function():
    documented = {function for function, *_ in ROWS}
    assert documented == set(CALLS), documented ^ set(CALLS)
    public = {name for name in fastgan.__all__ if callable(getattr(fastgan, name)) and name != "build_info"}
    deprecated = {"drs"}  # drs_accept's old name, kept for one release
    assert public <= documented | deprecated | {"metrics", "nn", "reference", "toy"}, public - documented


@pytest.mark.parametrize("function, argument, accepted, refused", ROWS,
                         ids=[f"{f}-{a}" for f, a, *_ in ROWS])
def test_each_row_holds(function, argument, accepted, refused):
    call, contexts = CALLS[function]
    context = contexts.get(argument, {})
    call(**{**context, argument: eval(accepted, NAMESPACE)})
    for example in refused:
        with pytest.raises((TypeError, ValueError)) as raised:
            call(**{**context, argument: eval(example, NAMESPACE)})
        assert re.search(rf"\b{argument}\b", str(raised.value)), (example, str(raised.value))
