"""Loads the compiled extension ``fastgan._C``. There is no pure-Python fallback: a missing or stale build is an
error that says how to fix it, never a silent switch to slow code."""

import pathlib
import sys

import torch  # must come first: fastgan._C links against the libraries that importing torch loads

_REBUILD = (
    "Rebuild fastgan against the torch you have: `make build` in a fastgan checkout, or "
    "`pip install --no-build-isolation -e .` from it (the --no-build-isolation matters: it builds against "
    "the installed torch instead of downloading another one)."
)

def _shadowing_source_folder(error: ImportError) -> str:  # pragma: no cover - broken installs only
    """A message when fastgan was imported from a source checkout that holds no build (typically: Python started in
    the repository's root after a non-editable install, so ./fastgan hides the installed package), else ''."""
    here = pathlib.Path(__file__).resolve().parent
    if any(here.glob("_C*.so")) or any(here.glob("_C*.pyd")) or "undefined symbol" in str(error):
        return ""
    # An installed copy is a whole package with its extension (an editable install's site-packages folder holds
    # the extension alone, and its finder maps the rest here: no shadowing then)
    installed = [str(candidate) for candidate in (pathlib.Path(entry or ".").resolve() / "fastgan" for entry in sys.path)
                 if candidate != here and (candidate / "__init__.py").exists() and any(candidate.glob("_C*.so"))]
    if not installed:
        return ""
    return (f"fastgan was imported from {here}, a source folder with no compiled extension, which hides the "
            f"installed package at {installed[0]} when Python starts in its parent folder. Run Python from another "
            f"folder, or install this checkout in place with `pip install --no-build-isolation -e .` (or "
            f"`make build`).")


try:
    from . import _C
except ImportError as error:  # pragma: no cover - exercised only on broken installs (tests run it in a subprocess)
    raise ImportError(_shadowing_source_folder(error) or (
        f"fastgan's compiled extension fastgan._C could not be loaded: {error}. An 'undefined symbol' here "
        f"usually means it was built against a different torch than the one installed (torch {torch.__version__}). "
        + _REBUILD)) from error

_BUILD_INFO = dict(_C.build_info())

if _BUILD_INFO["torch_version"] != torch.__version__:  # pragma: no cover - needs two torch installs
    raise ImportError(
        f"fastgan._C was built against torch {_BUILD_INFO['torch_version']} but torch {torch.__version__} is "
        "installed; C++ extensions only load into the torch they were compiled with. " + _REBUILD
    )


def build_info() -> dict:
    """What this build of fastgan contains: its version, the torch it was built against, whether the CUDA kernels
    are in (and for which archs), the compilers, the CPU ISAs it has kernels for (and the one in use), the intra-op
    parallel backend (torch's own: "OpenMP" or "native"), ``simt`` (whether the SIMT emulator, a test tool that runs
    the CUDA kernels on the CPU, is compiled in; ``simt_asan``: with AddressSanitizer) and ``num_threads``, the threads
    fastgan's CPU kernels use now (``torch.get_num_threads()``, read from fastgan's side of the shared thread pool)."""
    return {**_BUILD_INFO, "num_threads": _C.parallel_threads()}


def last_parallel_threads() -> int:
    """How many distinct threads ran the tasks of fastgan's most recent parallel CPU loop (process-wide). A test hook:
    it proves the kernels really run on several threads."""
    return _C.last_parallel_threads()


def check_same_device(op: str, **tensors) -> None:
    """For the fake (meta) kernels: every tensor argument on one device, as the C++ checks require. A meta tensor
    beside a CPU one dispatches to the fake kernel, not to C++."""
    devices = {name: t.device for name, t in tensors.items() if t is not None}
    if len(set(devices.values())) > 1:
        listed = ", ".join(f"{name} on {device}" for name, device in devices.items())
        raise ValueError(f"{op}: tensors must be on the same device, got {listed}")


# The ops that only write into their arguments (the samplers' fills, the MH step) return nothing, so their fake
# kernels, for torch.compile and FakeTensor, have nothing to compute.
for _op in ("fill_random_bits_", "fill_latent_", "sample_cdf_", "mh_step_"):
    torch.library.register_fake(f"fastgan::{_op}")(lambda *args, **kwargs: None)
