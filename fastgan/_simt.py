"""The SIMT emulator's test switch (tests only; not part of the API).

A build with the emulator (``fastgan.build_info()["simt"]``; ``make test`` builds one, a plain ``pip install`` does
not) contains a third engine per op family: the CUDA kernels, compiled for the host and run by an emulator with
one fiber per CUDA thread (``csrc/common/simt/``). Inside ``emulated()``, fastgan's ops on CPU tensors run those
kernels instead of the CPU ones; outside it, nothing changes. It is never a fallback: only this switch turns it on.
"""

import collections
import contextlib

from ._ext import _C, build_info

SCHEDULES = ("lowest", "highest", "random")


def available() -> bool:
    return build_info()["simt"]


@contextlib.contextmanager
def emulated(schedule=None, *, seed=None, sms=None, blocks_per_sm=None, variant=None, watchdog_seconds=None):
    """Ops on CPU tensors run the emulated CUDA kernels inside the block. A setting left None keeps the value of an
    enclosing emulated() (so a test body that switches the emulator on runs a caller's variant or schedule), else
    the default: the "lowest" schedule, a device of 4 SMs x 2 blocks, the real kernels.

    schedule: which runnable CUDA thread runs next, and the block order: "lowest" (warp 0 runs ahead as far as the
    barriers let it), "highest", or "random" (seeded by ``seed``). sms x blocks_per_sm: the emulated device's
    occupancy answer, the size of every persistent grid. variant: a test-only planted bug (CMakeLists.txt:
    fastgan_simt_mutant) whose engine replaces the real one in its family. watchdog_seconds: a launch that runs
    longer aborts the process with a message (an endless loop cannot be interrupted otherwise)."""
    if not available():
        raise RuntimeError("this build of fastgan has no SIMT emulator; build it with FASTGAN_SIMT=ON (make build)")
    if schedule is not None and schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    before = _C._simt_get()
    given = dict(schedule=schedule, seed=seed, sms=sms, blocks_per_sm=blocks_per_sm, variant=variant,
                 watchdog_seconds=None if watchdog_seconds is None else float(watchdog_seconds))
    _C._simt_set({**before, "on": True, **{key: value for key, value in given.items() if value is not None}})
    try:
        yield
    finally:
        _C._simt_set(before)


@contextlib.contextmanager
def off():
    """Ops on CPU tensors run the CPU kernels inside the block, also within emulated(): a test's reference side."""
    if not available():
        yield
        return
    before = _C._simt_get()
    _C._simt_set({**before, "on": False})
    try:
        yield
    finally:
        _C._simt_set(before)


_before_reset = collections.Counter()


def launches() -> dict:
    """Emulated launches per kernel (its name without namespace and template arguments) since reset_launches()."""
    return dict(_C._simt_launches())


def reset_launches() -> None:
    _before_reset.update(launches())
    _C._simt_reset_launches()


def process_launches() -> dict:
    """Emulated launches per kernel in this process, resets included (the test session's summary)."""
    return dict(_before_reset + collections.Counter(launches()))


def selftest(name: str, out) -> None:
    """Runs the emulator's own test kernel `name` (csrc/common/simt/selftest.cpp) on `out`, a CPU int32 tensor of
    at least 512 elements."""
    assert out.dtype.is_floating_point is False and out.element_size() == 4 and out.is_contiguous()
    _C._simt_selftest(name, out.data_ptr(), out.numel())
