"""What the tests share besides fixtures (those are in conftest.py): the device parameters and their marks, the
dtype tolerances, the peer-package gate, and small helpers. Tests import it as `helpers` (pyproject.toml puts tests/
on pytest's pythonpath)."""

import contextlib
import importlib
import os

import pytest
import torch

from fastgan import _simt

HAS_CUDA = torch.cuda.is_available()
HAS_SIMT = _simt.available()

# The one way CUDA tests are gated: marked `cuda` (so `pytest -m cuda` selects them on a GPU machine) and skipped
# where there is no GPU. A test for every device takes the `device` fixture (below); a test that compares the CUDA
# kernels with the CPU ones takes the `gpu` fixture; a test of what only a real GPU has (streams, graphs, several
# devices) is decorated with needs_cuda.
CUDA_MARKS = [pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")]
# The CUDA kernels on the SIMT emulator (fastgan/_simt.py): in every build of `make test`, which compiles it in.
SIMT_MARKS = [pytest.mark.simt, pytest.mark.skipif(not HAS_SIMT, reason="this build has no SIMT emulator")]
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=CUDA_MARKS),
           pytest.param("simt", id="simt", marks=SIMT_MARKS)]
GPUS = [pytest.param("cuda", id="cuda", marks=CUDA_MARKS), pytest.param("simt", id="simt", marks=SIMT_MARKS)]
# The largest input an emulated test draws: a CUDA test's 3,000,001 logits run in ~2 s on a GPU's emulation, and a
# few hundred thousand exercise the same code paths (many chunks, a persistent grid, ragged tails).
SIMT_MAX_SIZE = 300_001


def peer(module: str):
    """A peer package used as a test reference (torchmetrics, prdc, pytorch_fid). `make test` installs them and
    sets FASTGAN_REQUIRE_PEERS=1, so there a missing peer fails; elsewhere (a GPU machine without network) the
    test is skipped with the reason."""
    if os.environ.get("FASTGAN_REQUIRE_PEERS") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"the peer package {module} is not installed")


def needs_cuda(test):
    for mark in reversed(CUDA_MARKS):
        test = mark(test)
    return test

# Tolerances for fastgan in a dtype against the float64 reference evaluated on the same (already rounded) inputs.
# float64: a few ulp of the result (1e-16) times the condition of a long sum.
# float32: per-element transcendentals are within ~2 ulp (1.2e-7); lane sums run over <= 1024 terms before they
#          are combined in float64, so the relative error of a mean stays below ~1e-5.
# float16: the result is rounded to 11 bits (rtol 2^-10 ~ 1e-3); gradients of a mean over many elements are
#          ~1/N and land in float16's subnormals, whose spacing is 2^-24 ~ 6e-8 (atol).
# bfloat16: 8 bits of mantissa (rtol 2^-7 ~ 8e-3); its exponent range is float32's, so atol only covers the
#          float32 accumulation error of results near zero.
TOLERANCES = {
    torch.float64: dict(rtol=1e-12, atol=1e-14),
    torch.float32: dict(rtol=2e-5, atol=2e-6),
    torch.float16: dict(rtol=2e-3, atol=1e-7),
    torch.bfloat16: dict(rtol=1e-2, atol=2e-6),
}
DTYPES = list(TOLERANCES)


class Gpu:
    """The device side of a test that compares the CUDA kernels with the CPU ones: a CUDA GPU, or the SIMT
    emulator. to(t) puts a CPU tensor there; the device-side fastgan calls go inside `with gpu:` (the emulator's
    switch; nothing on a GPU), the CPU side outside it. One test body serves both."""

    def __init__(self, kind):
        self.kind = kind
        self.device = "cuda" if kind == "cuda" else "cpu"
        self._context = None

    def to(self, t):
        return t.to(self.device) if self.kind == "cuda" else t.clone()

    def size(self, n):
        """n, or for the emulator at most SIMT_MAX_SIZE."""
        return n if self.kind == "cuda" else min(n, SIMT_MAX_SIZE)

    def __enter__(self):
        self._context = _simt.emulated() if self.kind == "simt" else contextlib.nullcontext()
        return self._context.__enter__()

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)


def at_thread_counts(call, counts):
    """call() at each of the thread counts (torch.set_num_threads), in order: the results. The process's thread count
    is restored afterwards."""
    before, results = torch.get_num_threads(), []
    try:
        for count in counts:
            torch.set_num_threads(count)
            results.append(call())
    finally:
        torch.set_num_threads(before)
    return results


def on_device(args, device):
    """args with every tensor moved to device (leaves stay leaves that require grad where they did): one set of op
    arguments for every device's opcheck."""
    def move(a):
        if isinstance(a, torch.Tensor):
            return a.detach().to(device).requires_grad_(a.requires_grad)
        return a
    return tuple(move(a) for a in args)
