"""The CPU kernels run on torch's thread pool: every thread it offers, the thread count torch.set_num_threads sets,
and the same bits at any thread count (the determinism tests of each family cover the bits).

Measured through fastgan's own record of which threads ran the tasks of its last parallel loop: with OpenMP a
parallel region always starts the requested threads and each runs its share, so the count does not depend on how
busy the machine is (a timing would)."""

import pytest
import torch

import fastgan
from fastgan import _ext
from helpers import at_thread_counts


def test_build_info_reports_the_backend_and_follows_torch_thread_count():
    assert fastgan.build_info()["parallel_backend"] in ("OpenMP", "native")
    # fastgan's side of the pool sees torch's setting: one OpenMP runtime in the process, not two
    assert at_thread_counts(lambda: fastgan.build_info()["num_threads"], (1, 2, 3)) == [1, 2, 3]


LARGE_OPS = {
    "gan_loss forward, 4M + 4M logits": lambda: fastgan.fused_gan_loss(torch.randn(1 << 22), torch.randn(1 << 22)),
    "gan_loss backward, 4M + 4M logits": lambda: fastgan.fused_gan_loss(
        *(torch.randn(1 << 22, requires_grad=True) for _ in range(2))).backward(),
    "latent, 16M normals": lambda: fastgan.latent(1 << 12, 1 << 12, seed=1),
    "random_bits, 16M words": lambda: fastgan.random_bits(1 << 24, seed=1),
    "mmd, n = m = 2048, d = 64": lambda: fastgan.mmd(torch.randn(2048, 64), torch.randn(2048, 64)),
    "mmd backward": lambda: fastgan.mmd(torch.randn(2048, 64, requires_grad=True), torch.randn(2048, 64)).backward(),
    "sample_cdf, 1M samples": lambda: fastgan.sample_cdf(torch.rand(4, 100).cumsum(1), 1 << 18, seed=1),
    "metropolis_hastings step, 64k chains": lambda: fastgan.metropolis_hastings(
        lambda x: -0.5 * x.square().sum(1), torch.zeros(1 << 16, 2), 1, step_size=0.5, seed=1),
    "accept_compact, 1M": lambda: torch.ops.fastgan.accept_compact(torch.randn(1 << 20, dtype=torch.float64), 1, 0, 0),
}


def threads_used(op: str, threads: int) -> int:
    """How many threads ran the tasks of op's last parallel loop, at `threads` threads."""
    def run():
        LARGE_OPS[op]()
        return _ext.last_parallel_threads()
    return at_thread_counts(run, (threads,))[0]


@pytest.mark.parametrize("op", list(LARGE_OPS))
def test_large_ops_run_on_every_thread(op):
    assert threads_used(op, 2) == 2, f"{op} ran on one thread with torch.get_num_threads() == 2"


def test_one_thread_means_one_thread():
    assert threads_used("latent, 16M normals", 1) == 1
