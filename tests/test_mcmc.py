"""Metropolis-Hastings chains, the MH-GAN selection and DRS: statistics on known targets and known density ratios
(scipy.stats at level 1e-4), determinism, CPU == CUDA, bad input."""

import math

import pytest
import scipy.stats
import torch

import fastgan
from fastgan import reference
from helpers import at_thread_counts, needs_cuda, on_device


def beta_log_prob(x):
    """Unnormalised Beta(2, 5) on (0, 1), -inf outside."""
    inside = (x > 0) & (x < 1)
    value = torch.log(x.clamp(1e-300, 1)) + 4 * torch.log1p(-x.clamp(max=1 - 1e-16))
    return torch.where(inside, value, torch.full_like(value, -math.inf))[:, 0]


def mixture_log_prob(x):
    """0.3 N(-2, 0.5^2) + 0.7 N(1.5, 0.7^2), unnormalised."""
    a = math.log(0.3) + torch.distributions.Normal(-2.0, 0.5).log_prob(x[:, 0])
    b = math.log(0.7) + torch.distributions.Normal(1.5, 0.7).log_prob(x[:, 0])
    return torch.logaddexp(a, b)


def mixture_cdf(v):
    return 0.3 * scipy.stats.norm(-2, 0.5).cdf(v) + 0.7 * scipy.stats.norm(1.5, 0.7).cdf(v)


def test_metropolis_hastings_samples_a_beta(device):
    """4096 chains from U(0, 1), 300 steps, step 0.3: each chain's last state is a draw from Beta(2, 5)."""
    x0 = fastgan.latent(4096, 1, dist="uniform", seed=1, device=device, dtype=torch.float64)
    samples, acceptance = fastgan.metropolis_hastings(beta_log_prob, x0, 300, step_size=0.3, seed=2, burn_in=299)
    assert samples.shape == (4096, 1, 1)
    assert 0.2 < acceptance.mean().item() < 0.9
    assert scipy.stats.kstest(samples[:, -1, 0].cpu().numpy(), scipy.stats.beta(2, 5).cdf).pvalue > 1e-4


def test_metropolis_hastings_samples_a_gaussian_mixture():
    x0 = 3 * fastgan.latent(4096, 1, seed=3, dtype=torch.float64)
    samples, _ = fastgan.metropolis_hastings(mixture_log_prob, x0, 400, step_size=2.0, seed=4, burn_in=300, thin=50)
    assert samples.shape == (4096, 2, 1)
    assert scipy.stats.kstest(samples[:, -1, 0].numpy(), mixture_cdf).pvalue > 1e-4


def test_metropolis_hastings_is_deterministic_and_keeps_every_thinned_state():
    x0 = torch.zeros(64, 2, dtype=torch.float64)
    log_prob = lambda x: -0.5 * (x**2).sum(1)  # noqa: E731
    a, rate_a = fastgan.metropolis_hastings(log_prob, x0, 20, step_size=0.5, seed=5, burn_in=3, thin=4)
    b, rate_b = fastgan.metropolis_hastings(log_prob, x0, 20, step_size=0.5, seed=5, burn_in=3, thin=4)
    assert a.shape == (64, 5, 2) and torch.equal(a, b) and torch.equal(rate_a, rate_b)
    assert torch.equal(x0, torch.zeros(64, 2, dtype=torch.float64))  # x0 is not modified


def test_metropolis_hastings_takes_a_log_prob_that_returns_a_view_of_its_input():
    """log p(x) = x (a drift upwards; 15 steps) as x[:, 0] of a [C, 1] input, a view of the proposal buffer that
    the fused step overwrites: the chains must be those of the same target returned as a copy."""
    x0 = fastgan.latent(256, 1, dist="uniform", seed=8, dtype=torch.float64)
    as_view, _ = fastgan.metropolis_hastings(lambda x: x[:, 0], x0, 15, step_size=0.3, seed=9)
    as_copy, _ = fastgan.metropolis_hastings(lambda x: x[:, 0].clone(), x0, 15, step_size=0.3, seed=9)
    assert torch.equal(as_view, as_copy)


def test_cpu_chains_and_compaction_do_not_depend_on_the_thread_count():
    """mh_step splits 20000 chains among the threads (blocks of at least 8192), accept_compact its 25 chunks of
    100003 ratios: one thread and several give the same bits."""
    x0 = fastgan.latent(20_000, 2, seed=15)
    log_ratio = fastgan.latent(100_003, 1, dist="uniform", low=-2.0, high=0.5, seed=16)[:, 0]
    runs = at_thread_counts(lambda: (
        fastgan.metropolis_hastings(lambda x: -0.5 * (x * x).sum(1), x0, 5, step_size=0.5, seed=17),
        torch.ops.fastgan.accept_compact(log_ratio, 18, 0, 0)), (1, max(2, torch.get_num_threads())))
    (chains_one, index_one), (chains_many, index_many) = runs
    assert torch.equal(chains_one[0], chains_many[0]) and torch.equal(chains_one[1], chains_many[1])
    assert torch.equal(index_one[0], index_many[0]) and torch.equal(index_one[1], index_many[1])


def known_ratio_proposals(chains, k, seed, device):
    """Proposals from q = N(0, 1) with logits = log p/q for the target p = N(1, 1): l(x) = x - 1/2."""
    x = fastgan.latent(chains, k, seed=seed, device=device, dtype=torch.float64)
    return x, x - 0.5


def test_mh_gan_select_recovers_the_target_from_a_known_density_ratio(device):
    """Started at a draw from the target (MH-GAN's real-sample start), the independent chain stays at the target:
    the selected states of 20000 chains of 40 proposals pass a KS test against N(1, 1); the proposals do not."""
    chains, k = 20_000, 40
    x, logits = known_ratio_proposals(chains, k, 6, device)
    start = fastgan.latent(chains, 1, seed=7, device=device, dtype=torch.float64)[:, 0] + 1.0
    index, moved = fastgan.mh_gan_select(logits, seed=8, init_logit=start - 0.5)
    chosen = torch.where(index >= 0, x.gather(1, index.clamp_min(0)[:, None])[:, 0], start).cpu().numpy()
    assert moved.float().mean().item() > 0.9
    assert scipy.stats.kstest(chosen, scipy.stats.norm(1, 1).cdf).pvalue > 1e-4
    assert scipy.stats.kstest(x[:, 0].cpu().numpy(), scipy.stats.norm(1, 1).cdf).pvalue < 1e-10


def test_mh_gan_select_without_an_initial_state_starts_at_proposal_zero():
    logits = torch.tensor([[0.0, -1e9, -1e9], [0.0, 5.0, -1e9]], dtype=torch.float64)
    index, moved = fastgan.mh_gan_select(logits, seed=1)
    assert index.tolist() == [0, 1] and moved.tolist() == [False, True]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1, 37, 4100])
@pytest.mark.parametrize("with_init", [False, True])
def test_mh_gan_select_follows_its_definition(device, dtype, k, with_init, generator):
    """Against the torch loop (fastgan.reference.mh_gan_select): proposal j of chain c uses word offset + c k + j
    (the documented uniform maps, as for accept_compact) and is accepted when log u < l_j - l_current. k = 4100
    crosses the CPU's 4096-proposal chunks; k = 37 a partial second round of the CUDA warp's 32."""
    chains, seed, offset, stream = 50, 4, 9, 3
    logits = (torch.randn(chains, k, generator=generator, dtype=torch.float64) * 2).to(dtype)
    init = (torch.randn(chains, generator=generator, dtype=torch.float64) * 2).to(dtype) if with_init else None
    index, moved = fastgan.mh_gan_select(logits.to(device), seed=seed, offset=offset, stream=stream,
                                         init_logit=None if init is None else init.to(device))
    words = fastgan.random_bits(chains * k, seed=seed, offset=offset, stream=stream).view(chains, k)
    u = (words.double() + 1) * 2.0**-32 if dtype == torch.float64 else ((words >> 8) + 1).float() * 2.0**-24
    expected_index, expected_moved = reference.mh_gan_select(logits, torch.log(u), init)
    if k > 1:  # accepts and rejects both exercised
        assert expected_moved.any() and (expected_index != k - 1).any()
    assert torch.equal(index.cpu(), expected_index) and torch.equal(moved.cpu(), expected_moved)


def test_drs_recovers_the_target_from_a_known_density_ratio(device):
    """DRS with the exact log ratio and gamma = 0 is plain rejection sampling with envelope exp(max_logit)
    (the eps term changes the acceptance by ~1e-6): accepted proposals from N(0, 1) follow N(1, 1) on the range
    where the envelope holds."""
    x, logits = known_ratio_proposals(400_000, 1, 9, device)
    x, logits = x[:, 0], logits[:, 0]
    inside = x < 3.0  # the envelope max l = 2.5 bounds the ratio there
    accept, f = fastgan.drs_accept(logits[inside], max_logit=2.5, gamma=0.0, seed=10)
    chosen = x[inside][accept].cpu().numpy()
    assert len(chosen) > 20_000
    truncated = scipy.stats.truncnorm(-math.inf, 3.0 - 1.0, loc=1.0)
    assert scipy.stats.kstest(chosen, truncated.cdf).pvalue > 1e-4
    _, f_default = fastgan.drs_accept(logits[inside], max_logit=2.5, seed=10)
    assert abs(torch.quantile(f_default.double(), 0.95).item()) < 1e-9  # gamma=None centres the 95th percentile


def test_cuda_and_cpu_select_the_same_states(gpu):
    """k = 1, 30, 70: no round, a partial round and several rounds of the warp's 32 proposals; with and without an
    initial state."""
    for k in (1, 30, 70):
        _, logits = known_ratio_proposals(1000, k, 11, "cpu")
        for init in (None, logits[:, 0] - 0.3):
            cpu = fastgan.mh_gan_select(logits, seed=12, init_logit=init)
            with gpu:
                selected = fastgan.mh_gan_select(gpu.to(logits), seed=12,
                                                 init_logit=None if init is None else gpu.to(init))
            assert torch.equal(cpu[0], selected[0].cpu()) and torch.equal(cpu[1], selected[1].cpu())


def test_metropolis_hastings_on_cuda_follows_the_cpu_chains(gpu):
    """The same seed gives the same chains: the noise agrees to a few ulps between devices (vector vs CUDA
    sin/cos), the Gaussian log-density is exact arithmetic, so no accept decision flips and the states agree."""
    x0 = fastgan.latent(2048, 2, seed=13, dtype=torch.float64)
    log_prob = lambda x: -0.5 * (x * x).sum(1)  # noqa: E731
    cpu, rate_cpu = fastgan.metropolis_hastings(log_prob, x0, 30, step_size=0.7, seed=14, burn_in=10, thin=5)
    with gpu:
        chains, rate = fastgan.metropolis_hastings(log_prob, gpu.to(x0), 30, step_size=0.7, seed=14, burn_in=10,
                                                   thin=5)
    assert torch.equal(rate_cpu, rate.cpu())
    torch.testing.assert_close(chains.cpu(), cpu, rtol=0, atol=1e-12)


@needs_cuda
def test_cuda_graph_replays_the_same_chains():
    """The graph runs log_prob and the fused step with the step number read from a device counter: the chains,
    the kept states and the acceptance rates are those of the eager loop, bit for bit."""
    x0 = fastgan.latent(4096, 2, seed=19, device="cuda")

    def log_prob(x):  # two unit Gaussians at (1.5, 0) and (0, 1.5)
        return torch.logsumexp(-0.5 * ((x[:, None, :] - 1.5 * torch.eye(2, device=x.device)) ** 2).sum(-1), dim=1)

    eager = fastgan.metropolis_hastings(log_prob, x0, 40, step_size=0.6, seed=20, burn_in=7, thin=3)
    graph = fastgan.metropolis_hastings(log_prob, x0, 40, step_size=0.6, seed=20, burn_in=7, thin=3, cuda_graph=True)
    assert torch.equal(eager[0], graph[0]) and torch.equal(eager[1], graph[1])


@needs_cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_cuda_graph_captures_on_the_chains_device_not_the_current_one():
    """x0 on cuda:1 while cuda:0 is current: the capture must happen on cuda:1 (an empty graph would replay nothing
    and leave the samples uninitialised)."""
    x0 = fastgan.latent(512, 2, seed=3, device="cuda:1")
    log_prob = lambda x: -0.5 * (x * x).sum(1)  # noqa: E731
    eager = fastgan.metropolis_hastings(log_prob, x0, 20, step_size=0.6, seed=4, burn_in=5)
    with torch.cuda.device(0):
        graph = fastgan.metropolis_hastings(log_prob, x0, 20, step_size=0.6, seed=4, burn_in=5, cuda_graph=True)
    assert torch.equal(eager[0], graph[0]) and torch.equal(eager[1], graph[1])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: fastgan.mh_gan_select(torch.tensor([[0.0, float("nan")]]), seed=0), ValueError, "non-finite"),
        (lambda: fastgan.mh_gan_select(torch.zeros(3, 0), seed=0), ValueError, "k >= 1 proposals"),
        (lambda: fastgan.mh_gan_select(torch.zeros(3), seed=0), ValueError, r"\[chains, k\]"),
        (lambda: fastgan.mh_gan_select(torch.zeros(3, 2), seed=0, init_logit=torch.zeros(2)), ValueError,
         r"init_logit must be \[chains\]"),
        (lambda: fastgan.metropolis_hastings(lambda x: x, torch.zeros(4, 2), 3, step_size=0.1, seed=0), ValueError,
         r"log_prob must return a \[chains\] = \[4\] tensor, got \(4, 2\)"),
        (lambda: fastgan.metropolis_hastings(lambda x: x[:, 0], torch.zeros(4, 2), 3, step_size=0.0, seed=0),
         ValueError, "step_size must be finite and > 0"),
        (lambda: fastgan.metropolis_hastings(lambda x: x[:, 0], torch.zeros(4), 3, step_size=0.1, seed=0),
         ValueError, r"\[chains, d\]"),
        (lambda: fastgan.metropolis_hastings(lambda x: x[:, 0], torch.zeros(4, 2), 3, step_size=0.1, seed=0,
                                             cuda_graph=True), ValueError, "CUDA device"),
        (lambda: fastgan.drs_accept(torch.tensor([0.0, float("inf")]), max_logit=1.0, seed=0), ValueError, "non-finite"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_opcheck_mcmc_ops(device):
    logits = torch.randn(5, 4, dtype=torch.float64)
    torch.library.opcheck(torch.ops.fastgan.mh_select.default,
                          on_device((logits, torch.randn(5, dtype=torch.float64), 1, 0, 0), device))
    torch.library.opcheck(torch.ops.fastgan.accept_compact.default, on_device((torch.randn(7), 1, 2, 3), device))
    for step, offset in ((-1, None), (1, torch.tensor(1))):  # the second keeps step 2 in slot 1
        torch.library.opcheck(torch.ops.fastgan.mh_step_.default, on_device(
            (torch.randn(5, 2), torch.randn(5), torch.randn(5, 2), torch.randn(5), torch.zeros(5, dtype=torch.int64),
             torch.zeros(5, 3, 2), step, offset, 0, 2, 0.5, 3, 1), device))


# ---- rejection sampling, DRS and MH-GAN end to end ----

BETA_LOG_ENVELOPE = math.log(0.2 * 0.8**4)  # max of x (1 - x)^4 on (0, 1), at x = 0.2


def uniform_proposals(seed):
    rows = [0]

    def propose(k):
        x = fastgan.latent(k, 1, dist="uniform", seed=seed, offset=rows[0], dtype=torch.float64)[:, 0]
        rows[0] += k
        return x, torch.zeros(k, dtype=torch.float64)
    return propose


def beta_log_density(x):
    return torch.log(x) + 4 * torch.log1p(-x)


def test_rejection_sample_draws_a_beta_from_uniform_proposals():
    """Target x (1 - x)^4 (Beta(2, 5) unnormalised), uniform proposals, envelope its maximum 0.08192: the acceptance
    rate is B(2, 5) / 0.08192 = 0.4069, and 50000 samples pass a KS test against Beta(2, 5)."""
    samples, rate = fastgan.rejection_sample(beta_log_density, uniform_proposals(20), BETA_LOG_ENVELOPE, 50_000, seed=21)
    assert samples.shape == (50_000,)
    assert abs(rate - (1 / 30) / 0.08192) < 0.01
    assert scipy.stats.kstest(samples.numpy(), scipy.stats.beta(2, 5).cdf).pvalue > 1e-4
    again, _ = fastgan.rejection_sample(beta_log_density, uniform_proposals(20), BETA_LOG_ENVELOPE, 50_000, seed=21)
    assert torch.equal(samples, again)


def test_rejection_sample_draws_a_gaussian_mixture_from_a_wide_normal(device):
    """Target: the two-Gaussian mixture (normalised); proposals N(0, 3^2) from the stream; log M = max log p/q on a
    fine grid plus 1e-3 (p/q is smooth and its peak is resolved far below that). The acceptance rate is 1/M and
    30000 samples pass a KS test against the mixture."""
    grid = torch.linspace(-8, 8, 200_001, dtype=torch.float64)[:, None]
    log_q_of = lambda x: -x[:, 0] ** 2 / 18 - math.log(3 * math.sqrt(2 * math.pi))  # noqa: E731
    log_envelope = (mixture_log_prob(grid) - log_q_of(grid)).max().item() + 1e-3
    rows = [0]

    def propose(k):
        x = 3 * fastgan.latent(k, 1, seed=26, offset=rows[0], device=device, dtype=torch.float64)
        rows[0] += k
        return x, log_q_of(x)

    samples, rate = fastgan.rejection_sample(mixture_log_prob, propose, log_envelope, 30_000, seed=27)
    assert samples.shape == (30_000, 1) and samples.device.type == device
    assert abs(rate - math.exp(-log_envelope)) < 0.01
    assert scipy.stats.kstest(samples[:, 0].cpu().numpy(), mixture_cdf).pvalue > 1e-4


def test_rejection_sample_reports_a_hopeless_envelope_and_a_violated_one():
    with pytest.raises(RuntimeError, match="acceptance rate"):
        fastgan.rejection_sample(beta_log_density, uniform_proposals(1), BETA_LOG_ENVELOPE + 30, 100, seed=0,
                                 max_rounds=3)
    with pytest.warns(RuntimeWarning, match="exceeded log_envelope"):
        fastgan.rejection_sample(beta_log_density, uniform_proposals(2), BETA_LOG_ENVELOPE - 1.0, 100, seed=0)
    with pytest.raises(ValueError, match="propose"):
        fastgan.rejection_sample(beta_log_density, lambda k: (torch.rand(k), torch.zeros(k + 1)), 0.0, 10, seed=0)


def identity_generator(z):
    return z  # G(z) = z ~ N(0, 1): the proposal


def exact_discriminator(x):
    return x - 0.5  # log N(1, 1) / N(0, 1): the logit of the optimal discriminator for a N(1, 1) target


def test_discriminator_rejection_sampling_recovers_the_target():
    """With the exact log ratio and gamma = 0, DRS is rejection sampling: 20000 samples pass a KS test against
    N(1, 1) (the envelope from the running maximum truncates the target above ~3.9, mass 0.002, well inside the
    KS test's resolution of 0.014 at this size)."""
    samples, rate = fastgan.discriminator_rejection_sampling(identity_generator, exact_discriminator, 20_000, 1,
                                                             seed=22, gamma=0.0)
    assert samples.shape == (20_000, 1)
    assert 0.005 < rate < 0.05  # exp(-max_logit): the running maximum of ~1e6 logits is ~4.4
    assert scipy.stats.kstest(samples[:, 0].numpy(), scipy.stats.norm(1, 1).cdf).pvalue > 1e-4


def test_mh_gan_recovers_the_target():
    """Chains start at real samples of the target N(1, 1); with the paper's k = 640 proposals a chain that never
    moves (and would be restarted from a generated sample, an approximation) is vanishingly rare, so the output
    passes a KS test against the target."""
    real = fastgan.latent(2000, 1, seed=23) + 1.0
    samples = fastgan.mh_gan(identity_generator, exact_discriminator, 2000, 1, real=real, seed=24)
    assert samples.shape == (2000, 1)
    assert scipy.stats.kstest(samples[:, 0].numpy(), scipy.stats.norm(1, 1).cdf).pvalue > 1e-4
    without_real = fastgan.mh_gan(identity_generator, exact_discriminator, 3000, 1, k=200, seed=25)
    assert abs(without_real.mean().item() - 1.0) < 0.1  # mixes towards the target from a generated start


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 10_001, 100_003])
def test_accept_compact_matches_its_definition(device, dtype, n):
    """index[:count] = the ascending i with log u_i < log_ratio[i], u_i = (word + 1) 2^-32 for float64 ratios and
    ((word >> 8) + 1) 2^-24 for float32 (the documented maps); sizes around the CPU's 4096-entry chunks."""
    log_ratio = torch.empty(n, dtype=torch.float64).uniform_(-3, 0.5).to(device=device, dtype=dtype)
    index, count = torch.ops.fastgan.accept_compact(log_ratio, 3, 7, 2)
    words = fastgan.random_bits(n, seed=3, offset=7, stream=2)
    u = (words.double() + 1) * 2.0**-32 if dtype == torch.float64 else ((words >> 8) + 1).float() * 2.0**-24
    expected = torch.nonzero(torch.log(u) < log_ratio.cpu()).flatten()
    assert index.shape == (n,) and count.shape == () and count.item() == len(expected)
    assert torch.equal(index[:count.item()].cpu(), expected)
    assert (index[count.item():] == -1).all()


@pytest.mark.parametrize("step_arg, step_offset", [(4, None), (1, 3)])
def test_mh_step_follows_its_definition(step_arg, step_offset):
    """One fused step (step 4, given directly or as 1 plus a counter of 3) against its definition: accept where
    log u < lp' - lp, keep the state in its slot (burn-in 0, thin 4: slot 1), propose from `latent`'s normals of
    the next step's rows."""
    chains, d, step, seed, stream = 3000, 3, 4, 11, 5
    counter = None if step_offset is None else torch.tensor(step_offset)
    state, proposal = torch.randn(chains, d, dtype=torch.float64), torch.randn(chains, d, dtype=torch.float64)
    log_prob, proposal_log_prob = torch.randn(chains, dtype=torch.float64), torch.randn(chains, dtype=torch.float64)
    accepted, samples = torch.randint(0, 5, (chains,)), torch.zeros(chains, 2, d, dtype=torch.float64)
    x, lp, xp, count, kept = state.clone(), log_prob.clone(), proposal.clone(), accepted.clone(), samples.clone()
    torch.ops.fastgan.mh_step_(x, lp, xp, proposal_log_prob, count, kept, step_arg, counter, 0, 4, 0.25, seed, stream)

    words = fastgan.random_bits(chains, seed=seed, offset=step * chains, stream=stream + 1)
    move = torch.log((words.double() + 1) * 2.0**-32) < proposal_log_prob - log_prob
    assert 0.2 < move.double().mean() < 0.8  # both branches exercised
    expected = torch.where(move[:, None], proposal, state)
    assert torch.equal(x, expected)
    assert torch.equal(lp, torch.where(move, proposal_log_prob, log_prob))
    assert torch.equal(count, accepted + move.long())
    assert torch.equal(kept[:, 1], expected) and torch.equal(kept[:, 0], samples[:, 0])
    noise = fastgan.latent(chains, d, seed=seed, offset=(step + 1) * chains, stream=stream, dtype=torch.float64)
    torch.testing.assert_close(xp, expected + 0.25 * noise, rtol=0, atol=1e-15)
