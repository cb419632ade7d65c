"""Markov chains whose uniforms come from fastgan's counter-based streams: random-walk Metropolis-Hastings over
parallel chains, and MH-GAN's independent chain over a generator's proposals (Turner et al., ICML 2019), which uses
the discriminator as a density ratio. A run is reproducible from its seed on any device.

With D = sigmoid(logit) a discriminator trained to optimality, p_data(x) / p_g(x) = exp(logit(x)): the logits
are the log density ratio that MH-GAN corrects the generator with (rejection.py's DRS uses them too).
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Optional, Tuple

import torch

from . import _args
from . import _ext  # loads the ops
from ._args import nonnegative_int as _count, seed as _seed, word64 as _word64
from .sampling import latent

_ops = torch.ops.fastgan
_mh_select = _ops.mh_select.default
_mh_step = _ops.mh_step_.default

_LOGIT_DTYPES = (torch.float32, torch.float64)


def mh_gan_select(
    logits: torch.Tensor,
    *,
    seed: Optional[int] = None,
    init_logit: Optional[torch.Tensor] = None,
    offset: int = 0,
    stream: int = 0,
    validate: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """MH-GAN's selection: for C chains of K proposals (logits [C, K], float32/float64), the independent
    Metropolis-Hastings chain that accepts proposal k with probability min(1, exp(l_k - l_current)), scanned in one
    kernel. Starts at the initial state given by ``init_logit`` [C] (MH-GAN starts at a real sample) or at
    proposal 0. Returns (index [C] of each chain's final state, -1 for the initial state; moved [C], whether any
    proposal was accepted). Proposal k of chain c uses word offset + c K + k of stream (seed, stream)."""
    _args.tensor(logits, "logits", dtypes=_LOGIT_DTYPES)
    if init_logit is not None:
        _args.tensor(init_logit, "init_logit", dtypes=_LOGIT_DTYPES)
    offset = _args.offset(offset)
    _args.draw_range(offset, logits.numel(), "mh_gan_select")
    if validate:
        _args.check_finite("logits", logits)
        if init_logit is not None:
            _args.check_finite("init_logit", init_logit)
    return _mh_select(logits, init_logit, _seed(seed), offset, _word64(stream, "stream"))


def metropolis_hastings(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    steps: int,
    *,
    step_size: float,
    seed: Optional[int] = None,
    burn_in: int = 0,
    thin: int = 1,
    stream: int = 0,
    cuda_graph: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random-walk Metropolis-Hastings on C parallel chains: x0 [C, d], ``log_prob`` a vectorised callable
    [C, d] -> [C] (the unnormalised log target; -inf outside its support). Each step proposes
    x' = x + step_size N(0, I) (stream ``stream``, rows t C ..: what ``latent`` draws there) and accepts with
    probability min(1, exp(log_prob(x') - log_prob(x))) (uniforms from stream ``stream + 1``). A step is one
    fused kernel besides ``log_prob``: the accept/reject update, the kept sample's copy and the next proposal's
    draw.

    ``cuda_graph=True`` (CUDA tensors only) captures one step, ``log_prob`` included, in a CUDA graph and replays it
    ``steps`` times, the step number counted on the device: the same chains as without it, with no per-step launch
    cost. ``log_prob`` must then be capturable (no host synchronisation such as ``.item()``, no CPU tensors).

    Returns (samples [C, kept, d]: the states after steps burn_in, burn_in + thin, ...; acceptance rate [C])."""
    if not callable(log_prob):
        raise TypeError(f"log_prob must be a callable [chains, d] -> [chains], got {type(log_prob).__name__}")
    steps, burn_in, thin = _count(steps, "steps"), _count(burn_in, "burn_in"), _args.positive_int(thin, "thin")
    step_size = _args.real(step_size, "step_size")
    if not (step_size > 0 and math.isfinite(step_size)):
        raise ValueError(f"step_size must be finite and > 0, got {step_size}")
    _args.tensor(x0, "x0", dtypes=_LOGIT_DTYPES)
    if x0.dim() != 2:
        raise ValueError(f"x0 must be a [chains, d] tensor, got shape {tuple(x0.shape)}")
    if cuda_graph and x0.device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs x0 on a CUDA device, got {x0.device}")
    seed, stream = _seed(seed), _word64(stream, "stream")
    chains, d = x0.shape
    # step t reads words t C .. of the acceptance stream and the normals (t + 1) C d .. (t + 2) C d - 1 (mcmc_ops.h)
    _args.draw_range(0, (steps + 1) * chains * max(d, 1), f"metropolis_hastings({steps} steps of {chains} chains)",
                     "steps")
    x = x0.clone().contiguous()

    def evaluate(points: torch.Tensor) -> torch.Tensor:
        values = log_prob(points)
        if not isinstance(values, torch.Tensor) or values.shape != (chains,):
            shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"log_prob must return a [chains] = [{chains}] tensor, got {shape}")
        values = values.to(x.dtype).contiguous()
        if values.untyped_storage().data_ptr() == points.untyped_storage().data_ptr():
            values = values.clone()  # a view of the points (log_prob = x[:, 0]): the step overwrites them
        return values

    # The chains' own copy: log_prob may return the same buffer on every call (torch.sum(..., out=buf)), and the
    # proposals' values would then overwrite the current ones (every move accepted).
    lp = evaluate(x).clone()
    if torch.isnan(lp).any():  # one synchronisation per run: a NaN state rejects every move and never leaves
        warnings.warn("metropolis_hastings: log_prob(x0) is NaN for some chains; a NaN log-density rejects every "
                      "proposal, so those chains never move", RuntimeWarning, stacklevel=2)
    accepted = torch.zeros(chains, dtype=torch.int64, device=x.device)
    samples = x.new_empty((chains, len(range(burn_in, steps, thin)), d))
    proposal = torch.empty_like(x)

    def step(t: int, counter: Optional[torch.Tensor] = None) -> None:
        # step -1 only proposes: its proposal log-densities are not read (but must not alias lp, which is written)
        proposal_lp = evaluate(proposal) if t >= 0 else torch.empty_like(lp)
        _mh_step(x, lp, proposal, proposal_lp, accepted, samples, t, counter, burn_in, thin, step_size, seed, stream)

    step(-1)  # step 0's proposal
    if cuda_graph and steps > 0:
        _replay_in_cuda_graph(step, evaluate, proposal, steps)
    else:
        for t in range(steps):
            step(t)
    return samples, accepted.to(x.dtype) / max(steps, 1)


def _replay_in_cuda_graph(step, evaluate, proposal: torch.Tensor, steps: int) -> None:
    """Runs step(0, counter) `steps` times as a CUDA graph whose last node adds one to the device counter."""
    # torch.cuda.graph wants the captured work to have run before (lazy initialisation in log_prob, cuBLAS
    # workspaces...), on a side stream; evaluate() only reads the points, so this does not move the chains.
    # Everything happens under the chains' device and on a stream made there: torch.cuda.graph captures on the
    # *current* device's side stream by default, and with x0 on another device the graph would come out empty
    # (PyTorch only warns) and the replays would do nothing.
    device = proposal.device
    with torch.cuda.device(device):
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            evaluate(proposal)
        torch.cuda.current_stream(device).wait_stream(side)
        counter = torch.zeros((), dtype=torch.int64, device=device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=torch.cuda.Stream(device)):
            step(0, counter)
            counter.add_(1)
        for _ in range(steps):
            graph.replay()


@torch.no_grad()
def mh_gan(
    generator: Callable[[torch.Tensor], torch.Tensor],
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    latent_dim: int,
    *,
    k: int = 640,
    real: Optional[torch.Tensor] = None,
    seed: Optional[int] = None,
    chains_per_batch: int = 256,
    device=None,
) -> torch.Tensor:
    """MH-GAN (Turner et al. 2019) with the paper's defaults: n independent chains of k = 640 proposals G(z),
    each chain starting at a real sample when ``real`` [n, ...] is given (the paper's choice), else at its first
    proposal; a chain that accepts nothing is run again from its first proposal. The discriminator is used as
    is (the paper also calibrates it). Streams of ``seed``: 0 for z, 1 for the chains' uniforms, 2 for restarts.
    Returns the n chains' final states (n = 0: G's output for no latents)."""
    n, k, latent_dim, seed = _count(n, "n"), _args.positive_int(k, "k"), _count(latent_dim, "latent_dim"), _seed(seed)
    chains_per_batch = _args.positive_int(chains_per_batch, "chains_per_batch")
    if real is not None:
        _args.tensor(real, "real")
        if len(real) < n:
            raise ValueError(f"real must hold at least n = {n} samples, got {len(real)}")
    if n == 0:
        return generator(latent(0, latent_dim, seed=seed, device=device))
    out = []
    for start in range(0, n, chains_per_batch):
        chains = min(chains_per_batch, n - start)
        z = latent(chains * k, latent_dim, seed=seed, offset=start * k, device=device)
        x = generator(z)
        logits = _args.logits_of(discriminator, x).view(chains, k)
        proposals = x.view(chains, k, *x.shape[1:])
        init = _args.logits_of(discriminator, real[start:start + chains]) if real is not None else None
        # the acceptance uniforms need streams of their own: drawn from the noise's stream, uniform j of chain c
        # would be the very word that made proposal j, and acceptance would depend on the proposal
        index, moved = mh_gan_select(logits, seed=seed, init_logit=init, offset=start * k, stream=1)
        if real is not None:
            rerun, _ = mh_gan_select(logits, seed=seed, offset=start * k, stream=2)
            index = torch.where(moved, index, rerun)
        out.append(proposals[torch.arange(chains, device=x.device), index])
    return torch.cat(out)


@torch.library.register_fake("fastgan::mh_select")
def _(logits, init_logit, seed, offset, stream):
    _ext.check_same_device("fastgan.mh_gan_select", logits=logits, init_logit=init_logit)
    chains = logits.shape[0]
    return logits.new_empty((chains,), dtype=torch.int64), logits.new_empty((chains,), dtype=torch.bool)
