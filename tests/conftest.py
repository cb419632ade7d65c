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
from helpers import DEVICES, GPUS, HAS_SIMT, Gpu  # noqa: E402

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


@pytest.fixture(params=GPUS)
def gpu(request):
    return Gpu(request.param)


@pytest.fixture
def generator(request):
    """A CPU generator seeded from the session seed and the test's name: fresh inputs per run and per test."""
    seed = (SESSION_SEED + zlib.crc32(request.node.nodeid.encode())) % (2**31)
    return torch.Generator().manual_seed(seed)
