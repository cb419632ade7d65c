import contextlib
import importlib
import os
import random
import tempfile
import zlib

import pytest

# torch.compile's on-disk caches are not keyed by ATEN_CPU_CAPABILITY: a kernel generated for AVX-512 lanes and
# reused in a run under ATEN_CPU_CAPABILITY=avx2 (or default) writes only part of its output (seen with torch
# 2.13). A suite run under an override gets caches of its own. Set before torch compiles anything.
if os.environ.get("ATEN_CPU_CAPABILITY"):
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(
        tempfile.gettempdir(), f"fastgan-inductor-{os.environ['ATEN_CPU_CAPABILITY']}"))

import torch  # noqa: E402

from fastgan import _simt  # noqa: E402

# Fresh random inputs every run, reproducible on failure: FASTGAN_TEST_SEED=<the seed in the header> replays it.
SESSION_SEED = int(os.environ.get("FASTGAN_TEST_SEED", random.SystemRandom().randrange(2**31)))


def pytest_report_header(config):
    return f"fastgan test seed: FASTGAN_TEST_SEED={SESSION_SEED}"


def pytest_terminal_summary(terminalreporter):
    # also under -q, where the header is not shown: a failure can be replayed with this seed
    terminalreporter.write_line(f"replay these inputs with FASTGAN_TEST_SEED={SESSION_SEED}")
    if HAS_SIMT:
        counts = _simt.process_launches()
        terminalreporter.write_line(f"SIMT emulator: {sum(counts.values())} emulated launches of {len(counts)} "
                                    "kernels in this session")

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


@pytest.fixture(params=DEVICES)
def device(request):
    """Where the test's fastgan ops run: "cpu", "cuda", or "simt", the CUDA kernels on the emulator. Under simt the
    tensors are CPU tensors (the fixture's value is "cpu") and every fastgan op of the test runs emulated."""
    if request.param == "simt":
        skip = request.node.get_closest_marker("skip_simt")
        if skip is not None:
            pytest.skip(f"not emulated: {skip.args[0]}")
        with _simt.emulated():
            yield "cpu"
    else:
        yield request.param


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


@pytest.fixture(params=GPUS)
def gpu(request):
    return Gpu(request.param)


@pytest.fixture
def generator(request):
    """A CPU generator seeded from the session seed and the test's name: fresh inputs per run and per test."""
    seed = (SESSION_SEED + zlib.crc32(request.node.nodeid.encode())) % (2**31)
    return torch.Generator().manual_seed(seed)


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
