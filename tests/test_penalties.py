"""Gradient penalties against a float64 reference written from the papers' formulas, and against the formulas of
the published code (StyleGAN2-ADA's loss.py, R3GAN's, the WGAN-GP paper's Algorithm 1, StudioGAN's losses.py),
in every dtype and shape (images [B, C, H, W], vectors [B, d], B = 1), with NaN, inf and zero gradients."""

import math

import pytest
import torch

import fastgan
from helpers import DTYPES, TOLERANCES, at_thread_counts, on_device


def reference_penalty(grads, centre, weight):
    """weight / B * sum_i (|g_i| - centre)^2, |g_i| the 2-norm over every element of sample i, in float64."""
    norms = grads.double().flatten(1).norm(dim=1)
    return weight * ((norms - centre) ** 2).mean()


def mlp_critic():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1)).double()


def conv_critic():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.LeakyReLU(0.2),
                               torch.nn.Conv2d(8, 8, 3, 2, 1), torch.nn.LeakyReLU(0.2), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 4 * 4, 1)).double()


SHAPES = [(1, 5), (7, 3), (16, 3, 8, 8), (3, 20000)]  # B = 1, vectors, images, rows past one chunk


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("centre", [0.0, 1.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_penalty_and_its_gradient_match_the_reference(shape, centre, dtype, device, generator):
    grads = (0.7 * torch.randn(shape, generator=generator, dtype=torch.float64)).to(dtype).to(device)
    x = grads.clone().requires_grad_()
    ours, norms = fastgan.gradient_penalty(x, centre=centre, weight=2.5, return_norms=True)
    x64 = grads.double().cpu().requires_grad_()
    expected = reference_penalty(x64, centre, 2.5)
    assert ours.dtype == dtype and norms.dtype == fastgan._args.accumulate_dtype(dtype)
    tolerance = TOLERANCES[dtype]
    torch.testing.assert_close(ours.double().cpu(), expected.detach(), **tolerance)
    torch.testing.assert_close(norms.double().cpu(), x64.detach().flatten(1).norm(dim=1), **tolerance)
    upstream = torch.tensor(1.7, dtype=torch.float64)
    ours.backward(upstream.to(dtype).to(device))
    expected.backward(upstream.to(dtype).double())
    torch.testing.assert_close(x.grad.double().cpu(), x64.grad, **tolerance)


def test_gradcheck_and_opcheck(device, generator):
    grads = torch.randn(4, 3, 2, generator=generator, dtype=torch.float64)
    for centre in (0.0, 1.0):
        assert torch.autograd.gradcheck(lambda g: fastgan.gradient_penalty(g, centre=centre, weight=3.0),
                                        (grads.to(device).requires_grad_(),))
        torch.library.opcheck(torch.ops.fastgan.gradient_penalty.default,
                              on_device((grads.requires_grad_(), centre, 3.0), device))


def test_a_zero_gradient_has_a_finite_penalty_gradient(device):
    """At g_i = 0 the norm's gradient is undefined; the hand-written sqrt(sum g^2) gives NaN, fastgan 0."""
    g = torch.zeros(3, 4, dtype=torch.float64, device=device, requires_grad=True)
    for centre in (0.0, 1.0):
        penalty = fastgan.gradient_penalty(g, centre=centre)
        (grad,) = torch.autograd.grad(penalty, g)
        assert penalty.item() == centre**2 and torch.equal(grad, torch.zeros_like(g))
    hand = ((g.pow(2).sum(1).sqrt() - 1) ** 2).mean()
    assert torch.isnan(torch.autograd.grad(hand, g)[0]).all()  # what fastgan avoids


def test_nan_in_nan_out_and_inf(device):
    g = torch.tensor([[1.0, math.nan], [1.0, 2.0]], device=device, requires_grad=True)
    penalty = fastgan.gradient_penalty(g, centre=1.0)
    assert torch.isnan(penalty)
    penalty.backward()
    assert torch.isnan(g.grad[0]).all() and torch.isfinite(g.grad[1]).all()
    assert torch.isinf(fastgan.gradient_penalty(torch.tensor([[math.inf, 0.0]], device=device)))


def test_the_same_bits_at_any_thread_count(generator):
    g = torch.randn(5, 100_000, generator=generator)
    results = at_thread_counts(lambda: fastgan.gradient_penalty(g, centre=1.0, return_norms=True), (1, 2, 3))
    for penalty, norms in results[1:]:
        assert torch.equal(penalty, results[0][0]) and torch.equal(norms, results[0][1])


# ---- R1, R2 and WGAN-GP against the formulas of the published code, written out ----

def stylegan2_ada_r1(critic, real, r1_gamma, gain):
    """StyleGAN2-ADA training/loss.py (Dr1 phase): r1_grads = grad(real_logits.sum(), real_img_tmp,
    create_graph=True); r1_penalty = r1_grads.square().sum([1,2,3]); loss_Dr1 = r1_penalty * (r1_gamma / 2);
    then (... + loss_Dr1).mean().mul(gain) with gain the lazy interval."""
    real_img_tmp = real.detach().requires_grad_(True)
    real_logits = critic(real_img_tmp)
    (r1_grads,) = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp], create_graph=True,
                                      only_inputs=True)
    r1_penalty = r1_grads.square().sum(list(range(1, r1_grads.dim())))
    loss_Dr1 = r1_penalty * (r1_gamma / 2)
    return loss_Dr1.mean().mul(gain)


def r3gan_penalties(critic, real, fake, gamma):
    """R3GAN (Huang et al. 2024), ZeroCenteredGradientPenalty: Gradient = grad(Critics.sum(), Samples,
    create_graph=True); Gradient.square().sum([1, 2, 3]); the loss adds Gamma / 2 * (R1Penalty + R2Penalty) and
    takes the mean."""
    def zero_centred(samples):
        samples = samples.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(outputs=critic(samples).sum(), inputs=samples, create_graph=True)
        return gradient.square().sum(list(range(1, gradient.dim())))
    return (gamma / 2 * (zero_centred(real) + zero_centred(fake))).mean()


def studiogan_gp(critic, real, fake, alpha, weight):
    """StudioGAN's losses.py cal_grad_penalty: alpha [B, 1] expanded per sample; interpolates = alpha * real +
    (1 - alpha) * fake; grads of the critic's output; grads.view(B, -1); ((grads.norm(2, dim=1) - 1) ** 2).mean();
    times the penalty weight (lambda). This is also the WGAN-GP paper's Algorithm 1 term."""
    batch = real.size(0)
    alpha = alpha.view(batch, 1).expand(batch, real.nelement() // batch).contiguous().view(real.size())
    interpolates = (alpha * real + ((1 - alpha) * fake)).detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(outputs=critic(interpolates).sum(), inputs=interpolates, create_graph=True)
    grads = grads.view(grads.size(0), -1)
    return weight * ((grads.norm(2, dim=1) - 1) ** 2).mean()


def same_parameter_gradients(critic, ours, theirs):
    """Both penalties, and the gradients they send to the critic's parameters (through the double backward)."""
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    ours_grads = torch.autograd.grad(ours, list(critic.parameters()), allow_unused=True)
    theirs_grads = torch.autograd.grad(theirs, list(critic.parameters()), allow_unused=True)
    for a, b in zip(ours_grads, theirs_grads):
        if a is None or b is None:
            assert a is None and b is None or (a if b is None else b).abs().max() == 0
        else:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("make_critic, shape", [(mlp_critic, (32, 6)), (conv_critic, (16, 3, 16, 16)),
                                                (mlp_critic, (1, 6))], ids=["mlp", "conv", "one"])
@pytest.mark.parametrize("interval", [1, 16])
def test_r1_is_stylegan2_adas(make_critic, shape, interval, generator):
    critic = make_critic()
    real = torch.randn(shape, generator=generator, dtype=torch.float64).requires_grad_()
    ours = fastgan.r1_penalty(critic(real), real, gamma=10.0, interval=interval)
    same_parameter_gradients(critic, ours, stylegan2_ada_r1(critic, real, 10.0, interval))


@pytest.mark.parametrize("make_critic, shape", [(mlp_critic, (32, 6)), (conv_critic, (8, 3, 16, 16))],
                         ids=["mlp", "conv"])
def test_r1_plus_r2_is_r3gans(make_critic, shape, generator):
    critic = make_critic()
    real = torch.randn(shape, generator=generator, dtype=torch.float64).requires_grad_()
    fake = (torch.randn(shape, generator=generator, dtype=torch.float64) + 0.5).requires_grad_()
    ours = fastgan.r1_penalty(critic(real), real, gamma=1.0) + fastgan.r2_penalty(critic(fake), fake, gamma=1.0)
    same_parameter_gradients(critic, ours, r3gan_penalties(critic, real, fake, 1.0))


@pytest.mark.parametrize("make_critic, shape", [(mlp_critic, (32, 6)), (conv_critic, (8, 3, 16, 16))],
                         ids=["mlp", "conv"])
def test_wgan_gp_is_studiogans_with_one_eps_per_sample_from_the_stream(make_critic, shape, generator):
    critic = make_critic()
    real = torch.randn(shape, generator=generator, dtype=torch.float64)
    fake = torch.randn(shape, generator=generator, dtype=torch.float64) + 1.0
    eps = fastgan.latent(shape[0], 1, dist="uniform", seed=5, offset=3, dtype=torch.float64)
    ours = fastgan.wgan_gp(critic, real, fake, seed=5, offset=3)
    same_parameter_gradients(critic, ours, studiogan_gp(critic, real, fake, eps, 10.0))
    x_hat = fastgan.penalties.interpolate(real, fake, seed=5, offset=3)
    per_sample = ((x_hat - fake) / (real - fake)).flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), rtol=1e-9)  # one eps per sample


def test_zero_centred_gp_and_the_sampler(generator):
    critic = mlp_critic()
    real = torch.randn(16, 6, generator=generator, dtype=torch.float64)
    fake = torch.randn(16, 6, generator=generator, dtype=torch.float64)
    sampler = fastgan.LatentSampler(1, dist="uniform", seed=9, dtype=torch.float64)
    first = fastgan.wgan_gp(critic, real, fake, centre=0.0, weight=2.0, sampler=sampler)
    eps = fastgan.latent(16, 1, dist="uniform", seed=9, dtype=torch.float64)
    x_hat = (fake + eps * (real - fake)).requires_grad_()
    (grads,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    torch.testing.assert_close(first, 2.0 * grads.square().sum(1).mean(), rtol=1e-12, atol=0)
    second = fastgan.wgan_gp(critic, real, fake, centre=0.0, weight=2.0, sampler=sampler)
    assert sampler.offset == 32 and not torch.equal(first, second)  # the sampler moved on


@pytest.mark.parametrize("call, error, message", [
    (lambda: fastgan.gradient_penalty(torch.zeros(0, 3)), ValueError, "B >= 1"),
    (lambda: fastgan.gradient_penalty(torch.zeros(2, 3), centre=-1.0), ValueError, "centre"),
    (lambda: fastgan.gradient_penalty(torch.zeros(2, 3), weight=math.nan), ValueError, "weight"),
    (lambda: fastgan.gradient_penalty(torch.zeros(2, 3, dtype=torch.int64)), TypeError, "grads"),
    (lambda: fastgan.gradient_penalty([1.0, 2.0]), TypeError, "grads"),
    (lambda: fastgan.r1_penalty(torch.zeros(2, 1), torch.zeros(2, 3)), ValueError, "requires_grad_"),
    (lambda: fastgan.r1_penalty(torch.zeros(2, 1), torch.zeros(2, 3), interval=0), ValueError, "interval"),
    (lambda: fastgan.wgan_gp(lambda x: x, torch.zeros(2, 3), torch.zeros(3, 3), seed=0), ValueError, "share"),
    (lambda: fastgan.wgan_gp(3, torch.zeros(2, 3), torch.zeros(2, 3), seed=0), TypeError, "discriminator"),
])
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_modules_match_functional(generator):
    critic = mlp_critic()
    real = torch.randn(8, 6, generator=generator, dtype=torch.float64).requires_grad_()
    fake = torch.randn(8, 6, generator=generator, dtype=torch.float64)
    assert torch.equal(fastgan.nn.R1Penalty(gamma=3.0)(critic(real), real),
                       fastgan.r1_penalty(critic(real), real, gamma=3.0))
    assert torch.equal(fastgan.nn.WGANGP(critic, weight=5.0)(real, fake, seed=1),
                       fastgan.wgan_gp(critic, real, fake, weight=5.0, seed=1))
