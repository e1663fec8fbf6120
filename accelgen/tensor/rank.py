r"""Rank adaptation of TT layers: a low-rank prior on the cores, its MAP update, pruning.

The model (after Hawkins & Zhang, "Bayesian tensorized neural networks with automatic rank
selection", arXiv 1905.10478). Internal rank ``k`` (1..d-1) carries one variance per slice,
``lambda_k[a] > 0``; the boundary ranks have ``lambda_0 = lambda_d = (1)``. Every element of
core ``k`` (0-based, shape ``(r_k, m_k, n_k, r_{k+1})``) is independently

    G_k[a, i, j, b] ~ N(0, lambda_k[a] * lambda_{k+1}[b]),

so a slice ``a`` of rank ``k`` whose variance goes to zero drives the slices
``G_{k-1}[..., a]`` and ``G_k[a, ...]`` to zero together, and the rank drops by one.
The hyperprior on each ``lambda`` is one of

* ``"log_uniform"``: ``p(lambda) ∝ 1 / lambda`` (improper, scale free);
* ``"half_cauchy"``: ``p(lambda) ∝ 1 / (eta^2 + lambda^2)`` on ``lambda >= 0``, scale ``eta``.

Negative log prior (constants dropped), what :func:`negative_log_prior` returns:

    sum_k sum_{a,b} [ (m_k n_k / 2) log(lambda_k[a] lambda_{k+1}[b])
                      + ||G_k[a,:,:,b]||^2 / (2 lambda_k[a] lambda_{k+1}[b]) ]
    + sum_{k=1}^{d-1} sum_a h(lambda_k[a]),   h = log(lambda)  or  log(eta^2 + lambda^2).

MAP update (:func:`map_variances`). Fix every other variance; ``lambda = lambda_k[a]``
appears in the ``c`` elements of ``G_{k-1}[:, :, :, a]`` and ``G_k[a, :, :, :]``,

    c = r_{k-1} m_{k-1} n_{k-1} + m_k n_k r_{k+1},
    S = sum_{p,i,j} G_{k-1}[p,i,j,a]^2 / lambda_{k-1}[p] + sum_{i,j,q} G_k[a,i,j,q]^2 / lambda_{k+1}[q],

and the terms in ``lambda`` are ``f(lambda) = (c/2) log(lambda) + S / (2 lambda) + h(lambda)``.

* log-uniform: ``f' = c/(2 lambda) - S/(2 lambda^2) + 1/lambda = 0`` gives
  ``lambda = S / (c + 2)``, the unique minimum (``f -> +inf`` at both ends).
* half-Cauchy: ``f' = c/(2 lambda) - S/(2 lambda^2) + 2 lambda/(eta^2 + lambda^2) = 0``; times
  ``2 lambda^2 (eta^2 + lambda^2)``: ``(c + 4) lambda^3 - S lambda^2 + c eta^2 lambda - S eta^2 = 0``.
  The cubic is negative at 0 and has one to three positive roots; the update takes the
  positive root with the smallest ``f``.

The ranks are updated one after another (``k = 1 .. d-1``, each with its neighbours' newest
values), a block coordinate descent step that never increases the negative log prior.
Variances are floored at ``MIN_VARIANCE`` so an all-zero slice stays finite until pruned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = [
    "MIN_VARIANCE",
    "PRIORS",
    "RankLog",
    "Shrink",
    "initial_variances",
    "map_variances",
    "negative_log_prior",
    "slices_to_keep",
    "train_rank_adaptive",
    "transfer_optimizer_",
    "tt_layers",
    "warmup_factor",
]

PRIORS = ("log_uniform", "half_cauchy")
MIN_VARIANCE = 1e-30


def initial_variances(ranks: Sequence[int]) -> list[torch.Tensor]:
    """Unit variances for the internal ranks ``r_1 .. r_{d-1}`` (``ranks`` includes r_0 and r_d)."""
    return [torch.ones(r, dtype=torch.float64) for r in ranks[1:-1]]


def _with_boundaries(variances: Sequence[torch.Tensor], like: torch.Tensor) -> list[torch.Tensor]:
    one = torch.ones(1, dtype=like.dtype, device=like.device)
    return [one, *(v.to(like.dtype) for v in variances), one]


def _hyperprior(variances: torch.Tensor, prior: str, eta: float) -> torch.Tensor:
    if prior == "log_uniform":
        return torch.log(variances).sum()
    return torch.log(eta**2 + variances**2).sum()


def negative_log_prior(
    cores: Sequence[torch.Tensor], variances: Sequence[torch.Tensor], prior: str, eta: float = 1.0
) -> torch.Tensor:
    """The negative log prior of the module docstring; differentiable in the cores."""
    lam = _with_boundaries(variances, cores[0])
    total = cores[0].new_zeros(())
    for k, core in enumerate(cores):
        variance = lam[k][:, None] * lam[k + 1][None, :]  # (r_k, r_{k+1})
        squares = (core**2).sum(dim=(1, 2))
        count = core.shape[1] * core.shape[2]
        total = total + (0.5 * count * torch.log(variance) + squares / (2 * variance)).sum()
    for v in variances:
        total = total + _hyperprior(v.to(total.dtype), prior, eta)
    return total


def _half_cauchy_root(count: int, s: float, eta: float) -> float:
    def objective(lam: float) -> float:
        return 0.5 * count * math.log(lam) + s / (2 * lam) + math.log(eta**2 + lam**2)

    roots = np.roots([count + 4.0, -s, count * eta**2, -s * eta**2])
    positive = [float(r.real) for r in roots if abs(r.imag) <= 1e-12 * max(1.0, abs(r)) and r.real > 0]
    return min(positive, key=objective) if positive else MIN_VARIANCE


def map_variances(
    cores: Sequence[torch.Tensor], variances: Sequence[torch.Tensor], prior: str, eta: float = 1.0
) -> list[torch.Tensor]:
    """New variances after one coordinate sweep ``k = 1 .. d-1`` of the closed-form MAP update."""
    lam = [v.detach().to(torch.float64).clone() for v in _with_boundaries(variances, cores[0].detach().double())]
    for k in range(1, len(cores)):
        left = cores[k - 1].detach().double()  # (r_{k-1}, m, n, r_k)
        right = cores[k].detach().double()  # (r_k, m, n, r_{k+1})
        s = ((left**2).sum(dim=(1, 2)) / lam[k - 1][:, None]).sum(dim=0)
        s = s + ((right**2).sum(dim=(1, 2)) / lam[k + 1][None, :]).sum(dim=1)
        count = left.shape[0] * left.shape[1] * left.shape[2] + right.shape[1] * right.shape[2] * right.shape[3]
        if prior == "log_uniform":
            lam[k] = s / (count + 2)
        else:
            lam[k] = torch.tensor([_half_cauchy_root(count, float(x), eta) for x in s], dtype=torch.float64)
        lam[k] = lam[k].clamp_min(MIN_VARIANCE)
    return lam[1:-1]


def slices_to_keep(variances: torch.Tensor, threshold: float, relative: bool = True) -> torch.Tensor:
    """Indices of the slices to keep (ascending); the largest variance always stays."""
    bound = threshold * float(variances.max()) if relative else threshold
    keep = torch.nonzero(variances >= bound).flatten()
    return keep if keep.numel() else variances.argmax().reshape(1)


@dataclass(frozen=True)
class Shrink:
    """Parameter ``old`` was replaced by ``new = old.index_select(axis, keep)``."""

    old: nn.Parameter
    new: nn.Parameter
    axis: int
    keep: torch.Tensor


def transfer_optimizer_(optimizer: torch.optim.Optimizer, shrinks: Iterable[Shrink]) -> None:
    """Point ``optimizer`` at the shrunk parameters and shrink their state the same way.

    State tensors shaped like the old parameter (Adam's ``exp_avg``, ``exp_avg_sq``, SGD's
    momentum) keep the surviving slices; other state (Adam's ``step``) is kept as is.
    Apply in the order :meth:`TTLinear.prune_` returned (a core may be shrunk twice).
    """
    for shrink in shrinks:
        for group in optimizer.param_groups:
            group["params"] = [shrink.new if p is shrink.old else p for p in group["params"]]
        state = optimizer.state.pop(shrink.old, None)
        if state is not None:
            optimizer.state[shrink.new] = {
                key: value.index_select(shrink.axis, shrink.keep).clone()
                if torch.is_tensor(value) and value.shape == shrink.old.shape
                else value
                for key, value in state.items()
            }


def warmup_factor(epoch: int, warmup_epochs: int) -> float:
    """Weight of the prior term at ``epoch`` (0-based): ramps linearly from 0 to 1, then stays 1."""
    return 1.0 if warmup_epochs <= 0 else min(1.0, epoch / warmup_epochs)


def tt_layers(model: nn.Module) -> list[nn.Module]:
    """The rank-adaptive TT layers of ``model`` (every submodule with a rank prior)."""
    return [m for m in model.modules() if getattr(m, "rank_prior", None) is not None and hasattr(m, "prune_")]


@dataclass
class RankLog:
    """Per epoch: the ranks of every TT layer (by name) after that epoch's pruning, and the loss."""

    ranks: list[dict[str, tuple[int, ...]]] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)


def train_rank_adaptive(
    model: nn.Module,
    batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    dataset_size: int,
    warmup_epochs: int = 0,
    prune_threshold: float = 1e-2,
    prune_from_epoch: int = 0,
    prior_weight: float = 1.0,
) -> RankLog:
    """Train with the rank prior: loss + warm-up * prior / dataset_size, MAP variance update
    after every step, pruning after every epoch from ``prune_from_epoch`` on (threshold relative
    to each rank's largest variance; the optimizer's state follows the shrunk cores).

    ``batches()`` yields one epoch of ``(x, target)``. ``loss_fn`` should be the mean over the
    batch of each sample's negative log-likelihood (e.g. the squared error summed over the
    outputs, or cross-entropy), so that ``prior / dataset_size`` weighs the prior correctly.
    ``prior_weight`` < 1 tempers the prior (the MAP point estimate tends to shrink ranks harder
    than the posterior would on small data sets).
    """
    log = RankLog()
    layers = tt_layers(model)
    for epoch in range(epochs):
        weight = prior_weight * warmup_factor(epoch, warmup_epochs) / dataset_size
        model.train()
        total, count = 0.0, 0
        for x, target in batches():
            optimizer.zero_grad()
            data_loss = loss_fn(model(x), target)
            loss = data_loss + weight * sum(layer.prior_loss() for layer in layers)
            loss.backward()
            optimizer.step()
            for layer in layers:
                layer.update_ranks_()
            total, count = total + float(data_loss.detach()) * len(x), count + len(x)
        if epoch >= prune_from_epoch:
            for layer in layers:
                transfer_optimizer_(optimizer, layer.prune_(prune_threshold))
        log.ranks.append({layer.name: layer.ranks for layer in layers})
        log.loss.append(total / max(count, 1))
    return log
