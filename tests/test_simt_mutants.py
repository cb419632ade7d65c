"""Proof that the emulated tests catch real kernel bugs: each planted bug (a mutant, built by CMakeLists.txt from
the real sources with one exact text replacement, registered as a named variant of its family's SIMT engine) makes
an ordinary check of test_simt.py fail, by its own assertions or by the emulator's error, while the real kernels
pass the same check. `make test-simt-asan` also runs the loss mutant under AddressSanitizer, which reports its
out-of-range read where the NaN-padded views below report a wrong value."""

import re

import pytest
import torch

import fastgan
from fastgan import _simt
from helpers import SIMT_MARKS
from test_simt import (check_loss_on_padded_views, check_mh_select_matches_cpu, check_mmd_matches_cpu,
                       stderr_of_a_crash)

pytestmark = SIMT_MARKS

# variant: (what was planted, the check that catches it, what the failure must say)
MUTANTS = {
    # (a) threads compute with slices the others have not staged yet: wrong values (the lowest-first schedule runs
    # warp 0 past the missing barrier)
    "mmd_tile_sync": ("a __syncthreads removed from the MMD tile loop", check_mmd_matches_cpu,
                      (AssertionError, "are not close")),
    # (b) the last chunk of the real logits reads the element after their end: the NaN past the padded view
    "loss_tail": ("an off-by-one in the ragged tail of the loss forward",
                  lambda generator: check_loss_on_padded_views(torch.float32, 4097, generator),
                  (AssertionError, "nan")),
    # (c) lanes without a proposal return before the full-mask shuffles of the others
    "mh_select_exit": ("a full-mask shuffle after some lanes returned", check_mh_select_matches_cpu,
                       (RuntimeError, r"__shfl_sync at mcmc/mcmc_kernels.cuh:\d+ .*lane 30, which has exited")),
    # (d) the last-but-one block takes itself for the last: it adds a partial nobody stored (poisoned: NaN) and
    # resets the ticket, which the real last block then leaves at 1
    "ticket_early": ("a grid_sum whose last block resets the counter too early", check_mmd_matches_cpu,
                     (RuntimeError, "mmd_forward_kernel.* left the stream's grid ticket at 1")),
}


@pytest.mark.parametrize("variant", MUTANTS)
def test_each_planted_bug_is_caught(variant, generator):
    _, check, (error, message) = MUTANTS[variant]
    check(generator)  # the real kernels pass
    with _simt.emulated(variant=variant), pytest.raises(error, match=message):
        check(generator)


@pytest.mark.skipif(not fastgan.build_info()["simt_asan"], reason="needs the AddressSanitizer build: make "
                    "test-simt-asan")
def test_address_sanitizer_reports_the_loss_tail_read():
    """On real logits of exactly 4097 floats (no padding to read), the loss mutant's read past their end is a
    heap-buffer-overflow that AddressSanitizer reports in the emulated kernel: 4 bytes read right after the
    16388-byte tensor. (In a child process: the report aborts it.)"""
    stderr = stderr_of_a_crash("import torch, fastgan\nfrom fastgan import _simt\n"
                               "real, fake = torch.randn(4097), torch.randn(4100)\n"
                               "with _simt.emulated(variant='loss_tail'):\n"
                               "    fastgan.fused_gan_loss(real, fake)\n")
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in stderr and "READ of size 4" in stderr, stderr
    assert re.search(r"0 bytes (after|to the right of) 16388-byte region", stderr), stderr
    assert "loss_forward_kernel" in stderr, stderr  # the emulated kernel, in the report's stack
