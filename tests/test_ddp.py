"""Training across processes: examples/ddp_ring.py under torchrun with two gloo ranks on the CPU trains as one
process on the global batch would, and a rank that fails ends the job with its cause named by every rank."""

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import fastgan
from helpers import at_thread_counts
from fastgan.metrics import GANMetrics, mode_coverage

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "ddp_ring.py"
_spec = importlib.util.spec_from_file_location("ddp_ring", SCRIPT)
ddp_ring = sys.modules["ddp_ring"] = importlib.util.module_from_spec(_spec)  # dataclasses look their module up
_spec.loader.exec_module(ddp_ring)

WORLD = 2
# Tiny and short: the launch is dominated by three interpreters importing torch. R1 every 2 steps, so both kinds of
# step occur, the first one (step 0) an R1 step.
ARGS = ["--steps", "5", "--global-batch", "32", "--hidden", "16", "--r1-interval", "2", "--r1-gamma", "1",
        "--eval-samples", "128", "--seed", "3", "--device", "cpu", "--log-every", "1"]
# A launch that has not ended by then is a hang. Start-up (three interpreters importing torch on two loaded cores)
# took 8-16 s here, the hang case's collective timeout included; the limit leaves a wide margin for a slower machine.
LAUNCH_LIMIT_S = 150


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str):
    """Runs the example under torchrun, 2 processes on this machine (no network: 127.0.0.1), each rank's output
    teed with its "[default<r>]:" prefix. Returns (exit code, output, {rank: its lines}, seconds)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD), "--master_addr",
               "127.0.0.1", "--master_port", str(_free_port()), "--tee", "3", str(SCRIPT), *ARGS, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # what torchrun sets anyway, without its warning
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=LAUNCH_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the launcher and its workers: the session started above
        output, _ = process.communicate()
        pytest.fail(f"the launch did not end within {LAUNCH_LIMIT_S} s (a hang); its output:\n{output}")
    elapsed = time.monotonic() - start
    ranks = {r: [line.split(":", 1)[1] for line in output.splitlines() if line.startswith(f"[default{r}]:")]
             for r in range(WORLD)}
    return process.returncode, output, ranks, elapsed


def f32(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def assert_bits_equal(a, b, what: str) -> None:
    """Equal bit for bit (so -0.0 differs from 0.0, and NaN equals only the same NaN)."""
    a, b = (x if isinstance(x, torch.Tensor) else f32(x) for x in (a, b))
    assert a.shape == b.shape and torch.equal(a.view(torch.int32), b.view(torch.int32)), what


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run twice: two ranks under torchrun, and one process (world size 1, no torchrun) in this one."""
    ddp_dir, one_dir = tmp_path_factory.mktemp("ddp"), tmp_path_factory.mktemp("one")
    code, output, _, _ = torchrun("--record", str(ddp_dir))
    assert code == 0, output
    with torch.random.fork_rng():  # the example seeds torch's generator
        ddp_ring.main([*ARGS, "--record", str(one_dir)])
    ranks = [json.loads((ddp_dir / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert [r["world_size"] for r in ranks] == [WORLD] * WORLD
    return ranks, json.loads((one_dir / "rank0.json").read_text())


def test_ranks_hold_the_same_parameters_bit_for_bit_after_every_step(runs):
    ranks, _ = runs
    assert len(ranks[0]["steps"]) == 5
    for t, steps in enumerate(zip(*(r["steps"] for r in ranks))):
        for key in ("d_params", "g_params", "d_grads", "g_grads", "d_loss", "g_loss"):
            for other in steps[1:]:
                assert_bits_equal(steps[0][key], other[key], f"step {t}: {key} differs between ranks")


def test_the_ranks_draw_together_what_one_process_draws(runs):
    ranks, one = runs
    args = ddp_ring.parse(ARGS)
    for t in range(args.steps):
        latents = torch.cat([f32(r["steps"][t]["latents"]) for r in ranks])
        real = torch.cat([f32(r["steps"][t]["real"]) for r in ranks])
        assert latents.shape == (args.global_batch, args.latent)
        assert_bits_equal(latents, fastgan.latent(args.global_batch, args.latent, seed=args.seed,
                                                  stream=ddp_ring.LATENT_STREAM, offset=t * args.global_batch),
                          f"step {t}: the ranks' latents are not the global batch's")
        assert_bits_equal(latents, one["steps"][t]["latents"], f"step {t}: latents differ from one process's")
        assert_bits_equal(real, one["steps"][t]["real"], f"step {t}: real rows differ from one process's")
    assert not torch.equal(f32(ranks[0]["steps"][0]["latents"]), f32(ranks[1]["steps"][0]["latents"]))


def _fresh_models(args):
    with torch.random.fork_rng():  # build_models seeds torch's generator
        return ddp_ring.build_models(args)


def _load(module: torch.nn.Module, flat_values) -> None:
    torch.nn.utils.vector_to_parameters(f32(flat_values), module.parameters())


def test_the_reduced_gradients_are_the_mean_of_the_shards_gradients_r1_steps_included(runs):
    """DDP's gradient of every step, R1's double backward included, equals bit for bit the mean of the two shards'
    gradients computed here in one process without DDP, from the parameters the ranks held before the step. With 2
    ranks that mean is exact to compare: DDP divides by 2 (exact) and adds two numbers (commutative), so any other
    result is a gradient DDP lost, duplicated or mis-scaled (a penalty term missing from the reduction, say). At one
    thread, as the ranks ran (torchrun's OMP_NUM_THREADS=1)."""
    at_thread_counts(lambda: _check_reduced_gradients(runs[0]), (1,))


def _check_reduced_gradients(ranks) -> None:
    args = ddp_ring.parse(ARGS)
    rows = args.global_batch // WORLD
    steps = ranks[0]["steps"]
    assert [s["r1"] for s in steps] == [True, False, True, False, True]
    G, D = _fresh_models(args)
    for t, step in enumerate(steps):
        if t:
            _load(G, steps[t - 1]["g_params"])
            _load(D, steps[t - 1]["d_params"])
        batches = [ddp_ring.draw_batch(args, t, rank, rows, "cpu") for rank in range(WORLD)]
        d_shards, g_shards = [], []
        for z, real in batches:
            loss = ddp_ring.discriminator_loss(D, real, G(z), r1=step["r1"], gamma=args.r1_gamma,
                                               interval=args.r1_interval)
            d_shards.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(D.parameters()))]))
        _load(D, step["d_params"])  # G's step sees D after D's update
        for z, _ in batches:
            loss = fastgan.fused_generator_loss(D(G(z)))
            g_shards.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(G.parameters()))]))
        assert_bits_equal(step["d_grads"], sum(d_shards) / WORLD, f"step {t} (R1: {step['r1']}): D's gradient")
        assert_bits_equal(step["g_grads"], sum(g_shards) / WORLD, f"step {t}: G's gradient")


U = 2.0**-24  # float32's unit roundoff


def loss_tolerance(loss: float, updates: int, batch: int) -> float:
    """How far a loss of DDP's run may lie from one process's, from float32 rounding alone.

    The runs compute the same float32 operations on the same numbers (the streams give both the same rows, and D and
    G act on each row alone: their rows' values agree bit for bit, see test_the_reduced_gradients...), except the
    order of the sums over the batch: one process sums the B rows of a mean or of a parameter's gradient at once;
    each rank sums its B / 2 and DDP's all-reduce (or the logged loss's) adds the two partial sums.

    - A float32 sum of n terms in any order lies within (n - 1) u sum|terms| of the exact sum (Higham, Accuracy and
      Stability of Numerical Algorithms, 2002, section 4.2), so two orders lie within 2 (n - 1) u sum|terms| of each
      other. The longest sums of a step are D's on an R1 step: 2B BCE terms (real and fake halves) and B penalty
      terms, all >= 0, so sum|terms| = the sum, and the loss differs by at most eps |L|, eps = 2 (3B - 1) u, at
      equal parameters. D's gradients sum the same 3B rows' contributions.
    - The parameters are not equal after the first update: each update's gradient differs by that relative eps, and
      so does Adam's step, a ratio of the gradient to its own running magnitude. To first order such a change moves
      the loss by eps times what the update moves it, less than |L| (the updates here move it by ~1%), and the
      updates' differences add: a loss evaluated after k updates (D's and G's together) differs by at most
      (k + 1) eps |L|.

    This is a first-order model, not a proof: it takes the gradient sums as well conditioned (no cancellation
    between rows) and the few small steps as not amplifying differences (tests/test_training.py sees free GAN
    curves drift apart only after hundreds of steps). Measured here: the losses differ by 0 or 1 ulp (<= 8.6e-8
    relative), at most 1/130 of the bound (step 0's D loss), and a rank drawing the wrong real rows is off by
    far more than the bound at step 0 already."""
    eps = 2 * (3 * batch - 1) * U
    return (updates + 1) * eps * abs(loss)


def test_the_loss_curve_equals_one_process_within_float32_reassociation(runs):
    ranks, one = runs
    batch = ddp_ring.parse(ARGS).global_batch
    for t, (ddp, single) in enumerate(zip(ranks[0]["steps"], one["steps"])):
        # d_loss of step t follows t updates of D and t of G; g_loss follows D's update of step t too
        for key, updates in (("d_loss", 2 * t), ("g_loss", 2 * t + 1)):
            bound = loss_tolerance(single[key], updates, batch)
            assert abs(ddp[key] - single[key]) <= bound, (
                f"step {t}: {key} {ddp[key]!r} (2 ranks) vs {single[key]!r} (one process): "
                f"{abs(ddp[key] - single[key]):.3g} > {bound:.3g}")
    assert len(one["steps"]) == len(ranks[0]["steps"]) == 5


def test_the_gathered_metrics_equal_one_process_metrics_on_the_same_samples(runs):
    at_thread_counts(lambda: _check_gathered_metrics(*runs), (1,))


def _check_gathered_metrics(ranks, one) -> None:
    args = ddp_ring.parse(ARGS)
    latents = torch.cat([f32(r["eval_latents"]) for r in ranks])
    real = torch.cat([f32(r["eval_real"]) for r in ranks])
    fake = torch.cat([f32(r["eval_fake"]) for r in ranks])
    assert_bits_equal(latents, fastgan.latent(args.eval_samples, args.latent, seed=args.seed,
                                              stream=ddp_ring.EVAL_LATENT_STREAM), "evaluation latents")
    expected_real, centres = fastgan.toy.ring(args.eval_samples, std=ddp_ring.STD, seed=args.seed,
                                              stream=ddp_ring.EVAL_REAL_STREAM)
    assert_bits_equal(real, expected_real, "evaluation's real samples")
    assert_bits_equal(real, one["eval_real"], "evaluation's real samples vs one process's")
    G, _ = _fresh_models(args)
    _load(G, ranks[0]["steps"][-1]["g_params"])
    with torch.no_grad():
        for r in ranks:
            assert_bits_equal(r["eval_fake"], G(f32(r["eval_latents"])), f"rank {r['rank']}'s generated samples")

    evaluator = GANMetrics()
    evaluator.update(real, real=True)
    evaluator.update(fake, real=False)
    expected = evaluator.compute()
    coverage = mode_coverage(fake, centres, ddp_ring.STD)
    assert set(expected) == {"kid", "fid", "precision", "recall", "density", "coverage"}
    for r in ranks:
        # FID's float64 statistics are merged from the ranks' (Chan's update), so they agree to float64 rounding
        assert r["metrics"] == pytest.approx(expected, rel=1e-12, abs=1e-15), f"rank {r['rank']}"
        assert r["mode_coverage"] == coverage, f"rank {r['rank']}"


def test_one_process_runs_without_torchrun(runs):
    _, one = runs
    assert one["world_size"] == 1 and one["rank"] == 0


def _lines(ranks: dict, rank: int) -> str:
    return "\n".join(ranks[rank])


def test_a_rank_that_raises_ends_the_job_and_every_rank_names_it():
    """Rank 1 raises after step 1. Rank 0, in step 2's all-reduce, loses its peer and stops; torchrun ends the job.
    With a 600 s collective timeout, the job ending within the launch limit shows that it did not wait for it."""
    code, output, ranks, elapsed = torchrun("--fail-rank", "1", "--fail-step", "1", "--timeout", "600")
    cause = "rank 1 failed at step 1: RuntimeError: injected failure after step 1 (--fail-rank 1 --fail-step 1)"
    assert code != 0, output
    assert f"ddp_ring: {cause}" in _lines(ranks, 1), output
    assert f"ddp_ring: rank 0 stopped at step 2 because {cause}" in _lines(ranks, 0), output
    assert elapsed < LAUNCH_LIMIT_S


def test_a_rank_that_hangs_ends_the_job_at_the_process_group_timeout():
    """Rank 1 stops answering after step 1 (alive, sockets open). Rank 0 waits in step 2's all-reduce until the
    training group's timeout (5 s), fails, and torchrun's SIGTERM stops rank 1, which names rank 0's failure."""
    code, output, ranks, elapsed = torchrun("--fail-rank", "1", "--fail-step", "1", "--fail-mode", "hang",
                                            "--timeout", "5")
    assert code != 0, output
    timed_out = re.search(r"ddp_ring: rank 0 failed at step 2: \w+: .*[Tt]imed out.*", _lines(ranks, 0))
    assert timed_out, output
    cause = timed_out.group(0)[len("ddp_ring: "):]
    assert f"ddp_ring: rank 1 stopped at step 1 because {cause}. Here: Terminated" in _lines(ranks, 1), output
    assert 5 <= elapsed < LAUNCH_LIMIT_S
