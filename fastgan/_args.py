"""The argument conversions and checks the Python wrappers share, in one place.

Validation policy: every op checks its arguments in C++ (the raw ops under torch.ops.fastgan are public, and their
errors name the argument): types, shapes, devices, and every scalar's domain. Tensor *contents* (a CDF's
monotonicity, NaN logits) are checked by the wrappers, where it costs a device synchronisation that ``validate=False``
can skip; a kernel never reads or writes outside its tensors whatever they hold. A wrapper checks in Python what it
needs before the op runs: Python types (a list or a string where a tensor belongs is a TypeError naming the
argument, not a schema error), the conversions here, options that do not apply to the call, and values that decide
work done before the op (an output's size, a user callback such as metropolis_hastings' log_prob, which should not
run on arguments the op will reject).
"""

from __future__ import annotations

import math
import numbers

import torch

# A stream's indices are 0 .. 2**63 - 1 (csrc/common/philox.h): every draw lies inside or is refused.
STREAM_LENGTH = 2**63
FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def nonnegative_int(value, name: str) -> int:
    """A non-negative Python int (any integral number, numpy's included; a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def positive_int(value, name: str) -> int:
    """An int >= 1."""
    if nonnegative_int(value, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def offset(value, name: str = "offset") -> int:
    """An index into a stream: an int in [0, 2**63)."""
    value = nonnegative_int(value, name)
    if value >= STREAM_LENGTH:
        raise ValueError(f"{name} must lie in [0, 2**63) (a stream's indices), got {value}")
    return value


def draw_range(first: int, count: int, what: str, name: str = "offset") -> None:
    """A draw of `count` stream indices from `first` must lie inside the stream: first + count <= 2**63, and
    first < 2**63 even for an empty draw (an index the op's int64 could not hold). `name`: the argument to blame."""
    if first + max(count, 1) > STREAM_LENGTH:
        raise ValueError(f"{what}: {name} takes the draw past the end of the stream: indices {first} .. "
                         f"{first + count - 1}, where a stream's are 0 .. 2**63 - 1")


def word64(value, name: str) -> int:
    """A 64-bit seed or stream id, passed to the op as the int64 with the same bits."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must lie in [0, 2**64), got {value}")
    return int(value) - 2**64 if value >= 2**63 else int(value)


def next_stream(stream: int, k: int = 1) -> int:
    """Stream id `stream + k`, wrapping modulo 2**64 like every 64-bit stream id (a sampler that uses several
    streams from `stream` on accepts any stream id)."""
    return (stream + k) % 2**64


def seed(value) -> int:
    """A seed as the op takes it; None draws one from torch's default CPU generator (seeded by
    torch.manual_seed), with no device synchronisation. Under torch.compile that draw is a host read that cannot be
    traced: there, give the seed."""
    if value is None:
        if torch.compiler.is_compiling():
            raise RuntimeError("fastgan: seed=None draws a seed from torch's generator on the host, which "
                               "torch.compile cannot trace; pass seed= (an int) in compiled code")
        return int(torch.randint(0, 2**62, (), dtype=torch.int64).item())
    return word64(value, "seed")


def real(value, name: str) -> float:
    """A real number (any numbers.Real, numpy's included; a bool is not one), as a float. Its domain is the op's
    to check."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def finite(value, name: str) -> float:
    value = real(value, name)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def tensor(value, name: str, *, dtypes=None, what: str = "") -> torch.Tensor:
    """A plain (strided, dense, not quantized, not nested) tensor, optionally of one of `dtypes`: a TypeError naming
    the argument otherwise, before the dispatcher's schema or backend errors could."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor{what}, got {type(value).__name__}")
    if value.layout != torch.strided or value.is_quantized or value.is_nested:
        kind = "quantized" if value.is_quantized else "nested" if value.is_nested else str(value.layout)
        raise TypeError(f"{name} must be a dense (strided) tensor, got a {kind} tensor")
    if dtypes is not None and value.dtype not in dtypes:
        raise TypeError(f"{name} must be {_dtype_names(dtypes)}, got {value.dtype}")
    return value


def explain(error: Exception, op: str, optional=(), **tensors) -> None:
    """On the failure of a hot-path op call (whose wrapper skips Python checks to stay thin): re-raise a schema or
    backend error as the TypeError naming the argument that was not a plain tensor, if one was not. Returns when
    every argument is fine (the caller re-raises the original error). None is fine for the `optional` names."""
    for name, value in tensors.items():
        if value is not None or name not in optional:
            try:
                tensor(value, f"{op}: {name}")
            except TypeError as reason:
                raise reason from error


def _dtype_names(dtypes) -> str:
    names = [str(d).replace("torch.", "") for d in dtypes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels accumulate in: float64 for float64, float32 for the narrower ones (csrc/common/dtype.h
    holds the C++ rule; tests/test_tables.py checks that this one agrees with the ops)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def float_dtype(dtype, name: str = "dtype", allowed=FLOAT_DTYPES) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or dtype not in allowed:
        raise TypeError(f"{name} must be {_dtype_names(allowed)}, got {dtype!r}")
    return dtype


def check_finite(name: str, t: torch.Tensor) -> None:
    """A ValueError when t holds NaN or inf (a device synchronisation on CUDA: the callers' validate=False skips it)."""
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} has non-finite entries")


def logits_of(discriminator, x: torch.Tensor) -> torch.Tensor:
    """The discriminator's logits of the batch x as a float64 vector [len(x)] (DRS and MH-GAN compute in float64)."""
    return discriminator(x).reshape(len(x)).double()
