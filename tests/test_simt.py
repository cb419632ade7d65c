"""The SIMT emulator (fastgan/_simt.py, csrc/common/simt/): its own semantics and error reports, every __global__
kernel of csrc/ launched through it, and the contracts the CUDA kernels promise, checked on the emulated kernels:
bit-equal Philox words and uniforms, reductions whose bits depend neither on the grid nor on the schedule nor on
the alignment, outputs written in full (the emulator poisons them first), the grid ticket reused by consecutive
launches. The `device` and `gpu` fixtures run the other test files' CUDA bodies on the emulator as well; the planted
bugs are in test_simt_mutants.py.

Emulated sizes: 1, 7, 4097, 57,600 and 300,001 elements (one chunk, a ragged tail, many chunks walked by the
persistent grid), plus 300k to 4M elements for the partitions of 2 to 8 packs per thread."""

import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

import fastgan
from fastgan import _simt
from helpers import DTYPES, SIMT_MARKS, TOLERANCES

pytestmark = SIMT_MARKS

CSRC = Path(__file__).resolve().parent.parent / "csrc"
SIZES = [1, 7, 4097, 57_600, 300_001]
# (sms, blocks per SM, schedule): emulated devices whose persistent grids differ (1 to 1024 blocks), each block
# order and thread schedule
DEVICES = [(1, 1, "lowest"), (4, 2, "highest"), (7, 3, "random"), (64, 16, "lowest")]


# ---- the emulator itself ----


def expected_collectives():
    """What CUDA documents for simt_collectives_kernel (csrc/common/simt/selftest.cpp), thread t's 8 outputs."""
    rows = []
    for t in range(64):
        lane = t % 32

        def up(delta, width):
            return lane - delta if lane % width >= delta else lane

        def down(delta, width):
            return lane + delta if lane % width + delta < width else lane

        ballot = sum(1 << j for j in range(32) if j % 3 == 0)
        rows.append([lane ^ 1, up(1, 8), down(2, 16), 70, ballot - 2**32 if ballot >= 2**31 else ballot,
                     15 - lane if lane < 16 else 47 - lane, (63 - t) ** 2, 2 * down(1, 32) + 1])
    return torch.tensor(rows, dtype=torch.int32)


@pytest.mark.parametrize("schedule", _simt.SCHEDULES)
def test_collectives_and_barriers_give_what_cuda_documents(schedule):
    out = torch.full((64 * 8,), -1, dtype=torch.int32)
    with _simt.emulated(schedule, seed=5):
        _simt.selftest("collectives", out)
    assert torch.equal(out.view(64, 8), expected_collectives())


MISUSE = [
    ("exit_before_barrier", r"thread \d+ .*(exited while|waits at __syncthreads).*selftest.cpp:\d+"),
    ("divergent_barrier", r"waits at __syncthreads at common/simt/selftest.cpp:\d+ while thread \d+ .*waits at "
                          r"another __syncthreads"),
    ("exited_lane_shuffle", r"__shfl_sync at common/simt/selftest.cpp:\d+ .*lane 3, which has exited|"
                            r"lane 3 has exited"),
    ("crossed_shuffles", r"__shfl_sync at common/simt/selftest.cpp:\d+ .*the lanes of a mask must reach the same"),
    ("deadlock", r"deadlock: .*\n  thread 0: __shfl_sync .*mask 0x00000003\)\n  thread 1: __shfl_sync .*"
                 r"0x00000006\)\n  thread 2: __shfl_sync .*0x00000005\)"),
]


@pytest.mark.parametrize("schedule", _simt.SCHEDULES)
@pytest.mark.parametrize("name, message", MISUSE, ids=[m[0] for m in MISUSE])
def test_misuse_is_an_error_that_names_kernel_block_and_thread(name, message, schedule):
    """Each misuse raises (never hangs) under every schedule, naming the kernel, the block, the thread and the call
    sites; the next launch runs normally."""
    out = torch.zeros(64 * 8, dtype=torch.int32)
    with _simt.emulated(schedule, seed=3), pytest.raises(RuntimeError) as caught:
        _simt.selftest(name, out)
    text = str(caught.value)
    assert re.search(rf"kernel fastgan::simt::\{{anonymous\}}::simt_{name}_kernel \(grid \d+x1x1, block \d+x1x1\), "
                     rf"block \d+, (thread \d+ \(warp \d+, lane \d+\)|no thread): ", text), text
    assert re.search(message, text), text
    test_collectives_and_barriers_give_what_cuda_documents(schedule)


def stderr_of_a_crash(code):
    """Runs `code` in a child Python that must die (the watchdog's abort, AddressSanitizer's): its stderr."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, result.stdout
    return result.stderr


def test_a_launch_that_never_ends_is_stopped_by_the_watchdog():
    """A fiber in an endless loop never returns to the scheduler; the watchdog thread aborts the process with the
    kernel's name (in a child process, with a 0.5 s limit)."""
    stderr = stderr_of_a_crash("import torch; from fastgan import _simt\n"
                               "out = torch.ones(512, dtype=torch.int32)\n"
                               "with _simt.emulated(watchdog_seconds=0.5):\n"
                               "    _simt.selftest('runaway', out)\n")
    assert re.search(r"watchdog: kernel \S*simt_runaway_kernel has run for more than 0.5 s \(block 0, thread 0",
                     stderr), stderr


def test_the_emulator_runs_only_under_its_switch():
    """Outside emulated() a CPU op runs the CPU engine (no emulated launch); inside it the CUDA kernel; an exception
    inside the block switches it off again."""
    assert fastgan.build_info()["simt"]
    _simt.reset_launches()
    words = fastgan.random_bits(10, seed=1)
    assert _simt.launches() == {}
    with _simt.emulated():
        assert torch.equal(fastgan.random_bits(10, seed=1), words)
    assert _simt.launches() == {"words_kernel": 1}
    with pytest.raises(ZeroDivisionError), _simt.emulated(variant="mmd_tile_sync"):
        1 / 0
    fastgan.random_bits(10, seed=1)
    assert _simt.launches() == {"words_kernel": 1}
    assert not _simt._C._simt_get()["on"] and _simt._C._simt_get()["variant"] == ""


# ---- every kernel ----


def global_kernels():
    """The names of the __global__ functions in csrc/, read from the sources."""
    pattern = re.compile(r"__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(")
    names = set()
    for path in CSRC.rglob("*"):
        if path.suffix in (".cu", ".cuh", ".cpp", ".h"):
            names.update(pattern.findall(path.read_text()))
    return names


def launch_every_family(generator):
    """A small call of every op family (both loss layouts, forward and backward), and every emulator self-test."""
    real, fake = torch.randn(300, generator=generator).requires_grad_(), torch.randn(5, generator=generator)
    for loss, other in (("bce", fake), ("rpgan", real.detach().flip(0))):
        fastgan.fused_gan_loss(real, other, loss=loss).backward()
    fastgan.random_bits(9, seed=1)
    fastgan.latent(3, 5, seed=1)
    fastgan.sample_cdf(torch.rand(2, 6, generator=generator).cumsum(1), 11, seed=2)
    fastgan.mh_gan_select(torch.randn(3, 40, generator=generator, dtype=torch.float64), seed=3)
    fastgan.metropolis_hastings(lambda x: -(x * x).sum(1), torch.zeros(40, 2), 2, step_size=0.5, seed=4)
    torch.ops.fastgan.accept_compact(torch.randn(100, generator=generator), 5, 0, 0)
    x = torch.randn(20, 3, generator=generator, requires_grad=True)
    fastgan.mmd(x, torch.randn(17, 3, generator=generator)).backward()
    with mock.patch.dict(os.environ, FASTGAN_MMD_GEMM_MIN_D="1"):  # the GEMM path's epilogue kernels
        fastgan.mmd(x, torch.randn(17, 3, generator=generator)).backward()
    g = torch.randn(4, 5000, generator=generator, requires_grad=True)  # two chunks a row
    fastgan.gradient_penalty(g, centre=1.0).backward()
    out = torch.zeros(64 * 8, dtype=torch.int32)
    for name in ["collectives", "runaway"] + [m[0] for m in MISUSE]:  # runaway with out[0] == 0: it ends at once
        out.zero_()
        try:
            _simt.selftest(name, out)
        except RuntimeError:
            pass


def test_every_global_kernel_runs_on_the_emulator(generator):
    kernels = global_kernels()
    assert {"loss_forward_kernel", "loss_backward_kernel", "fill_kernel", "words_kernel", "sample_cdf_kernel",
            "mh_select_kernel", "mh_step_kernel", "mmd_forward_kernel", "mmd_backward_kernel",
            "penalty_forward_kernel", "penalty_backward_kernel"} <= kernels
    _simt.reset_launches()
    with _simt.emulated():
        launch_every_family(generator)
    launched = _simt.launches()
    assert kernels - set(launched) == set(), f"never launched on the emulator: {kernels - set(launched)}"


# ---- losses ----


def padded(x):
    """x as the interior view of a NaN-filled buffer, one element in (so unaligned): a kernel that reads one
    element past either end of it reads NaN, which the result shows."""
    buffer = torch.full((x.numel() + 2,), float("nan"), dtype=x.dtype)
    buffer[1:-1] = x
    return buffer[1:-1]


def check_loss_on_padded_views(dtype, n, generator, loss="bce"):
    """The emulated loss (value, stats, per-element losses, gradients) on NaN-padded unaligned views against the
    CPU kernels on the same values."""
    real = (3 * torch.randn(n, generator=generator, dtype=torch.float64)).to(dtype)
    fake = (3 * torch.randn(n if loss == "rpgan" else n + 3, generator=generator, dtype=torch.float64)).to(dtype)
    results = []
    for emulate, wrap in ((False, lambda t: t), (True, padded)):
        a, b = wrap(real).requires_grad_(), wrap(fake).requires_grad_()
        with _simt.emulated() if emulate else _simt.off():
            value, stats = fastgan.fused_gan_loss(a.detach(), b.detach(), loss=loss, return_stats=True)
            per_element = fastgan.fused_gan_loss(a, b, loss=loss, reduction="none")
            parts = per_element if isinstance(per_element, tuple) else (per_element,)  # (real, fake) or the pairs'
            upstream = [torch.linspace(-1, 1, p.numel(), dtype=torch.float64).to(dtype) for p in parts]
            grads = torch.autograd.grad(parts, (a, b), upstream)
        results.append([value, *stats.values(), *parts, *grads])
    for ours, theirs in zip(results[1], results[0]):
        torch.testing.assert_close(ours, theirs, **TOLERANCES[ours.dtype])


@pytest.mark.parametrize("loss", ["bce", "rpgan"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_loss_kernels_match_the_cpu_on_padded_unaligned_views(dtype, n, loss, generator):
    check_loss_on_padded_views(dtype, n, generator, loss)


# per dtype, logits per half for several packs per thread (Partition: up to 512 chunks of 256 threads x packs):
# float32 2, 3 and 8 (the most, kMaxPacks), 16-bit types 1 to 4 (their most), float64 3, 5 and 8
PACK_SIZES = {torch.float32: [300_001, 700_001, 2_000_001], torch.float16: [57_600, 150_001, 300_001, 400_001],
              torch.float64: [300_001, 600_001, 1_000_001], torch.bfloat16: [400_001]}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_loss_bits_depend_on_the_partition_only(dtype, generator):
    """The forward's bits are the same on every emulated device (persistent grids of 1 to 1024 blocks), in every
    block order and thread schedule, for every pack count of the partition; and close to the CPU's."""
    for n in PACK_SIZES[dtype]:
        real, fake = ((3 * torch.randn(n, generator=generator, dtype=torch.float64)).to(dtype) for _ in range(2))
        cpu, cpu_stats = fastgan.fused_gan_loss(real, fake, return_stats=True)
        outputs = []
        for sms, per_sm, schedule in DEVICES:
            with _simt.emulated(schedule, sms=sms, blocks_per_sm=per_sm, seed=n):
                value, stats = fastgan.fused_gan_loss(real, fake, return_stats=True)
            outputs.append(torch.cat([value.double().view(1), *(s.double().view(1) for s in stats.values())]))
        for other in outputs[1:]:
            assert torch.equal(other, outputs[0]), n
        torch.testing.assert_close(value, cpu, **TOLERANCES[dtype])
        for key, v in stats.items():
            torch.testing.assert_close(v, cpu_stats[key], **TOLERANCES[v.dtype])


def test_consecutive_launches_reuse_the_grid_ticket(generator):
    """One ticket counter serves every grid reduction on the stream: the last block of each launch resets it (the
    emulator checks after every launch that it is 0 again), so calls in a row give the same bits."""
    real, fake = torch.randn(300_001, generator=generator), torch.randn(200_003, generator=generator)
    x, y = torch.randn(300, 7, generator=generator), torch.randn(250, 7, generator=generator)
    with _simt.emulated():
        first, mmd_first = fastgan.fused_gan_loss(real, fake), fastgan.mmd(x, y)
        for _ in range(2):
            assert torch.equal(fastgan.fused_gan_loss(real, fake), first)
            assert torch.equal(fastgan.mmd(x, y), mmd_first)


# ---- samplers ----


@pytest.mark.parametrize("n", SIZES)
def test_words_and_uniforms_are_the_cpus_bit_for_bit(n):
    """Words at offsets that start mid-block and far into the stream, and uniform and Bernoulli draws in every dtype,
    written into sentinel-filled outputs (also unaligned ones): equal to the CPU's, every element written."""
    for offset in (0, 3, 2**40 + 1):
        out = torch.full((n,), -7, dtype=torch.int64)
        with _simt.emulated():
            torch.ops.fastgan.fill_random_bits_(out, 11, offset, 2**63 + 5 - 2**64)  # the op takes int64 patterns
        assert torch.equal(out, fastgan.random_bits(n, seed=11, offset=offset, stream=2**63 + 5))
    for dtype in DTYPES:
        for dist, a, b in (("uniform", -2.0, 3.0), ("bernoulli", 0.3, 0.0)):
            expected = torch.empty(n, dtype=dtype)
            torch.ops.fastgan.fill_latent_(expected, dist, a, b, 12, 5, None, 0)
            storage = torch.full((n + 1,), 7.0, dtype=dtype)
            for out in (storage[:n], storage[1:]):  # aligned (vector stores for float32), then unaligned
                out.fill_(7.0)
                with _simt.emulated():
                    torch.ops.fastgan.fill_latent_(out, dist, a, b, 12, 5, None, 0)
                assert torch.equal(out, expected), (dtype, dist)


def test_sample_cdf_picks_the_cpus_bins(generator):
    for rows, n in ((1, 1), (3, 7), (2, 4097), (5, 57_600)):
        cdf = torch.rand(rows, 37, generator=generator, dtype=torch.float64).cumsum(1)
        with _simt.emulated("highest"):
            emulated = fastgan.sample_cdf(cdf, n, seed=6, offset=5)
        assert torch.equal(emulated, fastgan.sample_cdf(cdf, n, seed=6, offset=5))


# ---- MCMC ----


@pytest.mark.parametrize("schedule", _simt.SCHEDULES)
def test_accept_compact_selects_what_the_cpu_selects(schedule, generator):
    """cub's select pass (emulated with a copy of the stateful predicate per thread, called in the schedule's
    order) keeps the accepted indices in order: the CPU's, for one and many tiles."""
    for n in (1, 7, 4097, 57_600):
        log_ratio = torch.randn(n, generator=generator, dtype=torch.float64) - 0.5
        index, count = torch.ops.fastgan.accept_compact(log_ratio, 7, 3, 1)
        with _simt.emulated(schedule, seed=n):
            emulated_index, emulated_count = torch.ops.fastgan.accept_compact(log_ratio, 7, 3, 1)
        assert torch.equal(emulated_count, count) and torch.equal(emulated_index, index)


def check_mh_select_matches_cpu(generator, k=30):
    logits = torch.randn(100, k, generator=generator, dtype=torch.float64)
    with _simt.off():
        expected = fastgan.mh_gan_select(logits, seed=9)
    with _simt.emulated():
        selected = fastgan.mh_gan_select(logits, seed=9)
    assert torch.equal(selected[0], expected[0]) and torch.equal(selected[1], expected[1])


@pytest.mark.parametrize("schedule", _simt.SCHEDULES)
def test_mh_select_in_every_schedule(schedule, generator):
    with _simt.emulated(schedule, seed=2):
        check_mh_select_matches_cpu(generator, k=45)


@pytest.mark.parametrize("d", [1, 3, 130, 301])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_mh_step_moves_the_rows_the_cpu_moves(d, dtype, generator):
    """The warp-per-chain step (128-word windows of the normal stream, each lane's Philox block staged in shared
    memory) against the CPU kernel: rows that start anywhere in a Philox block (odd d), span several windows
    (d = 301), and a kept slot. Accept decisions, states, kept rows and counts are exact; the proposals agree to
    the sin/cos rounding."""
    chains, step, seed, stream = 37, 4, 11, 5
    state, proposal = (torch.randn(chains, d, generator=generator, dtype=torch.float64).to(dtype) for _ in range(2))
    log_prob, proposal_log_prob = (torch.randn(chains, generator=generator, dtype=torch.float64).to(dtype)
                                   for _ in range(2))
    accepted, samples = torch.randint(0, 5, (chains,), generator=generator), torch.zeros(chains, 2, d, dtype=dtype)
    results = []
    for emulate in (False, True):
        out = [t.clone() for t in (state, log_prob, proposal, accepted, samples)]
        x, lp, xp, count, kept = out
        with _simt.emulated(seed=d) if emulate else _simt.off():
            torch.ops.fastgan.mh_step_(x, lp, xp, proposal_log_prob, count, kept, step, None, 0, 4, 0.25, seed,
                                       stream)
        results.append(out)
    (x, lp, xp, count, kept), (ex, elp, exp, ecount, ekept) = results[1], results[0]
    assert 0 < (count - accepted).sum() < chains  # both branches
    assert torch.equal(x, ex) and torch.equal(lp, elp) and torch.equal(count, ecount) and torch.equal(kept, ekept)
    torch.testing.assert_close(xp, exp, **TOLERANCES[dtype])


# ---- MMD ----


def check_mmd_matches_cpu(generator, shape=(70, 90, 40)):
    """Value and gradients of the emulated MMD against the CPU kernels, for d past one shared-memory slice (and
    below the CUDA GEMM path's 64, so that the tile kernels run)."""
    n, m, d = shape
    x, y = torch.randn(n, d, generator=generator, dtype=torch.float64), torch.randn(m, d, generator=generator,
                                                                                 dtype=torch.float64) + 0.3
    results = []
    for emulate in (False, True):
        a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
        with _simt.emulated() if emulate else _simt.off():
            value = fastgan.mmd(a, b, bandwidths=(4.0, 16.0))
            results.append([value, *torch.autograd.grad(value, (a, b))])
    for ours, theirs in zip(results[1], results[0]):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("sms, per_sm, schedule", DEVICES)
def test_mmd_bits_do_not_depend_on_the_schedule(sms, per_sm, schedule, generator):
    """The forward's grid is one block per tile; the last block to take the ticket differs with the block order,
    and the sum does not."""
    x, y = torch.randn(150, 9, generator=generator), torch.randn(170, 9, generator=generator)
    with _simt.emulated():
        expected = fastgan.mmd(x, y, kernel="laplacian")
    with _simt.emulated(schedule, sms=sms, blocks_per_sm=per_sm, seed=1):
        assert torch.equal(fastgan.mmd(x, y, kernel="laplacian"), expected)
    check_mmd_matches_cpu(generator, (37, 29, 5))
