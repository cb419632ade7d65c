"""The build and the import contract: build_info, and no silent fallback."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import torch

import fastgan


def test_build_info_describes_this_build():
    info = fastgan.build_info()
    assert info["version"] == fastgan.__version__
    assert info["torch_version"] == torch.__version__
    assert isinstance(info["cuda"], bool)
    assert info["cuda"] == bool(info["cuda_archs"])
    assert "generic" in info["cpu_isas"].split(",")
    assert info["cpu_isa"] in info["cpu_isas"].split(",")
    assert info["compiler"]
    assert isinstance(info["simt"], bool) and isinstance(info["simt_asan"], bool)
    assert info["simt"] or not info["simt_asan"]
    if torch.cuda.is_available():
        assert info["cuda"], "a GPU is present but fastgan was built without CUDA kernels"


SCHEMA_BLOCK = Path(__file__).resolve().parent.parent / "csrc" / "fastgan.cpp"


def declared_ops():
    """The op names of the TORCH_LIBRARY block, read from the source: the table of contents, not a list kept here."""
    return re.findall(r'm\.def\("(\w+)\(', SCHEMA_BLOCK.read_text())


def test_every_declared_op_has_cpu_and_cuda_kernels():
    """Every op of the schema block is registered, has a CPU kernel and a CUDA one: the real kernel, or in a build
    without CUDA kernels the one that says so."""
    ops = declared_ops()
    assert len(ops) >= 12
    registered = {name for name in torch._C._dispatch_get_all_op_names() if name.startswith("fastgan::")}
    assert registered == {f"fastgan::{op}" for op in ops}
    for op in ops:
        assert hasattr(torch.ops.fastgan, op)
        for key in ("CPU", "CUDA"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"fastgan::{op}", key), (op, key)


@pytest.mark.skipif(fastgan.build_info()["cuda"], reason="this build has CUDA kernels")
@pytest.mark.parametrize("call", [
    lambda x, v: torch.ops.fastgan.mmd(x, x, [1.0]),
    lambda x, v: torch.ops.fastgan.fill_latent_(x, "normal", 0.0, 1.0, 0, 0, None, 0),
    lambda x, v: torch.ops.fastgan.accept_compact(v, 0, 0, 0),
    lambda x, v: torch.ops.fastgan.mh_select(x, None, 0, 0, 0),
    lambda x, v: torch.ops.fastgan.gan_loss(v, v),
], ids=["mmd", "sampling", "rejection", "mh_gan", "losses"])
def test_a_cpu_only_build_says_so_for_every_family(call):
    """Dispatched to the CUDA key (as a CUDA tensor would be), each family of a build without CUDA kernels gives
    the same message, not the dispatcher's list of backends."""
    x, v = torch.zeros(3, 2), torch.zeros(3)  # made outside the guard: no aten op may run under it
    with torch._C._IncludeDispatchKeyGuard(torch._C.DispatchKey.CUDA), \
            pytest.raises(RuntimeError, match="this build of fastgan has no CUDA kernels.*FASTGAN_CUDA=1"):
        call(x, v)


def test_a_missing_extension_is_a_clear_import_error():
    """With fastgan._C unloadable, `import fastgan` must fail loudly and say how to rebuild."""
    code = (
        "import sys\n"
        "class NoExtension:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'fastgan._C':\n"
        "            raise ImportError('simulated: no fastgan._C')\n"
        "sys.meta_path.insert(0, NoExtension())\n"
        "import fastgan\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "fastgan._C could not be loaded: simulated: no fastgan._C" in result.stderr
    assert "--no-build-isolation" in result.stderr


def test_isa_override_is_honoured():
    """ATEN_CPU_CAPABILITY=default selects the portable kernels, and they compute the same losses and draw the same
    words (each ISA has its own Philox code)."""
    code = ("import json, torch, fastgan; x = torch.linspace(-9, 9, 1001, dtype=torch.float64); "
            "print(fastgan.build_info()['cpu_isa'], repr(fastgan.fused_gan_loss(x, x.flip(0)).item()), "
            "json.dumps(fastgan.random_bits(5003, seed=2**64 - 3, offset=2**40 + 1, stream=2**63 + 5).tolist()))")
    outputs = {}
    for isa in ["default"] + (["avx2"] if "avx2" in fastgan.build_info()["cpu_isas"] else []):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                env={**__import__("os").environ, "ATEN_CPU_CAPABILITY": isa})
        outputs[isa] = result.stdout.split(maxsplit=2)
    assert outputs["default"][0] == "generic"
    x = torch.linspace(-9, 9, 1001, dtype=torch.float64)
    words = fastgan.random_bits(5003, seed=2**64 - 3, offset=2**40 + 1, stream=2**63 + 5).tolist()
    for chosen, value, their_words in outputs.values():
        assert abs(float(value) - fastgan.fused_gan_loss(x, x.flip(0)).item()) <= 1e-14
        assert json.loads(their_words) == words, chosen