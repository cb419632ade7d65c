"""The build and the import contract: build_info, and no silent fallback."""

import json
import subprocess
import sys

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
    if torch.cuda.is_available():
        assert info["cuda"], "a GPU is present but fastgan was built without CUDA kernels"


def test_every_op_is_registered_under_torch_ops():
    for name in ["gan_loss", "gan_loss_backward", "generator_loss", "generator_loss_backward"]:
        assert hasattr(torch.ops.fastgan, name)


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