"""Whole training loops: fastgan's losses swapped into real GAN loops change nothing but the speed."""

import pytest
import torch
from torch.func import functional_call, grad, vmap

from benchmarks import setups


# float32's unit roundoff. The tolerances below are multiples of it, derived from how the two implementations round.
EPS32 = torch.finfo(torch.float32).eps / 2


def _loss_and_grads(loss_fn, params):
    loss = loss_fn()
    return loss.detach(), torch.autograd.grad(loss, params)


def _gradient_scales(model, inputs, loss_of_logits, prefix):
    """For each parameter p of model whose name starts with prefix: ||J_p||_F ||dL/dlogit||, J_p = d logits / d p.

    A parameter's gradient is J_p^T dL/dlogit, so this bounds the gradient's size before any cancellation: the
    scale that rounding errors of the per-logit gradients are relative to."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def logit(ps, x):
        return functional_call(model, ps, (x.unsqueeze(0),)).reshape(())

    per_sample = vmap(grad(logit), in_dims=(None, 0))(params, inputs)
    logits = model(inputs).detach().requires_grad_()
    (dloss,) = torch.autograd.grad(loss_of_logits(logits), logits)
    return [torch.linalg.vector_norm(per_sample[name]) * torch.linalg.vector_norm(dloss)
            for name in params if name.startswith(prefix)]


def _assert_same_step(name, step, ours, theirs, scales):
    """ours/theirs: (loss, grads) computed on identical parameters and batches; scales from _gradient_scales.

    Loss: a mean of <= 512 positive float32 terms. Each term agrees within 2 ulp; each side's summation errs by at
    most log2(512) = 9 units of roundoff u relative to the sum; so |difference| <= (2 * 9 + 2) u |loss| < 32 u |loss|.
    Gradients: backpropagation is the same linear map J^T on both sides (same activations and ReLU masks, bit for
    bit), applied to per-logit gradients that agree within 2 ulp (4u relative), so ||difference|| <= 4u ||J||
    ||dL/dlogit||; each side's own backpropagation rounds by at most ~2 log2(512) u of the same product. 64u covers
    both with room; a wrong gradient (a missing factor, a sign, a wrong half) is off by O(1) of it."""
    (loss_a, grads_a), (loss_b, grads_b) = ours, theirs
    assert abs(loss_a - loss_b) <= 32 * EPS32 * abs(loss_b), f"{name} loss at step {step}: {loss_a} vs {loss_b}"
    for k, (ga, gb, scale) in enumerate(zip(grads_a, grads_b, scales, strict=True)):
        error = torch.linalg.vector_norm(ga - gb)
        assert error <= 64 * EPS32 * scale, f"{name} grad {k} at step {step}: {error} (scale {scale})"
        assert torch.linalg.vector_norm(gb) <= scale * (1 + 1e-3)  # the scale does bound the gradient


@pytest.mark.skip_simt("400 loss launches compared through vmap'd Jacobians: 30 s there, for kernels that "
                       "test_losses checks against the same reference")
def test_ring_gan_losses_and_gradients_match_the_reference_at_every_step(device):
    """Teacher forcing: 200 steps of the MLP GAN on the 8-Gaussian ring in which, at every step, fastgan's losses and
    the eager reference's are computed from the same parameters and the same batches, and compared (value and every
    parameter's gradient); then one optimizer step with the reference's gradients moves both on together. Free
    GAN dynamics are chaotic (a 1-ulp difference grows with the CPU's GEMM kernels), so comparing two free-running
    curves tests the machine; this tests the losses, on any machine, over the states real training visits."""
    torch.manual_seed(0)
    generator, discriminator = (m.to(device) for m in setups.mlp_gan(latent=2))
    generator_then_discriminator = torch.nn.Sequential(generator, discriminator)  # parameters "0.*": G's
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    rng = torch.Generator(device=device).manual_seed(0)
    centres = setups.ring_centres(device=device)
    d_params, g_params = list(discriminator.parameters()), list(generator.parameters())
    implementations = {"fastgan": setups.loss_functions("fastgan"), "eager": setups.loss_functions("eager")}
    reference_d_loss, reference_g_loss = implementations["eager"]

    def apply(optimizer, params, grads):
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()

    for step in range(200):
        real = setups.ring_batch(256, centres, generator=rng)
        fake = generator(torch.randn(256, 2, device=device, generator=rng)).detach()
        d_steps = {name: _loss_and_grads(lambda: d_loss(discriminator(real), discriminator(fake)), d_params)
                   for name, (d_loss, _) in implementations.items()}
        scales = _gradient_scales(discriminator, torch.cat([real, fake]),
                                  lambda logits: reference_d_loss(logits[:256], logits[256:]), prefix="")
        _assert_same_step("D", step, d_steps["fastgan"], d_steps["eager"], scales)
        apply(opt_d, d_params, d_steps["eager"][1])

        z = torch.randn(256, 2, device=device, generator=rng)
        g_steps = {name: _loss_and_grads(lambda: g_loss(discriminator(generator(z))), g_params)
                   for name, (_, g_loss) in implementations.items()}
        scales = _gradient_scales(generator_then_discriminator, z, reference_g_loss, prefix="0.")
        _assert_same_step("G", step, g_steps["fastgan"], g_steps["eager"], scales)
        apply(opt_g, g_params, g_steps["eager"][1])


def test_ring_gan_runs_freely_on_the_reference_curve_for_20_steps(device):
    """A short free-running stretch: the whole training step as users run it (fastgan's autograd, the optimizer),
    from the same seed. The curves start 1 ulp apart (1e-7) and 20 steps amplify that far less than to 1e-5 (the
    chaotic growth shows only after hundreds of steps), while a wrong gradient is off by > 1e-2 within 20 steps."""
    eager = setups.make_trainer("ring", "eager", 256, device, seed=0)
    fused = setups.make_trainer("ring", "fastgan", 256, device, seed=0)
    eager_curve = torch.stack([torch.stack(eager()) for _ in range(20)]).cpu()
    fused_curve = torch.stack([torch.stack(fused()) for _ in range(20)]).cpu()
    assert torch.isfinite(eager_curve).all()
    torch.testing.assert_close(fused_curve, eager_curve, rtol=0, atol=1e-5)


def test_dcgan_tutorial_one_line_swap_gives_the_same_losses(device):
    """The PyTorch DCGAN tutorial loop (Sigmoid + nn.BCELoss) against the same loop with
    fastgan.fused_gan_loss(..., inputs="probs"): the same losses to 1e-5 over 10 steps."""
    tutorial = setups.make_tutorial_trainer(False, 32, device)
    swapped = setups.make_tutorial_trainer(True, 32, device)
    for _ in range(10):
        for a, b in zip(tutorial(), swapped()):
            assert abs(a.item() - b.item()) <= 1e-5
