"""``TTLinear``: a fully connected layer whose weight is a tensor-train matrix, never rebuilt.

Layout and semantics follow ``accelgen.ir.TTDense``: core ``k`` has shape
``(r_k, m_k, n_k, r_{k+1})`` with ``r_0 = r_d = 1``; ``W[(i_1..i_d), (j_1..j_d)]`` is the
product of the cores' slices, indices row-major; ``y = x @ W + bias``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from accelgen.tensor import rank as rank_math
from accelgen.tensor.factor import FactorizationError, check_modes, factorize
from accelgen.tensor.order import choose_order, contraction_macs, is_legal_order
from accelgen.tensor.quant import FakeQuant, QuantSpec

__all__ = ["TTLinear"]


def _internal_ranks(rank: int | Sequence[int], d: int, name: str) -> tuple[int, ...]:
    ranks = [int(rank)] * (d - 1) if isinstance(rank, int) else [int(r) for r in rank]
    if len(ranks) == d + 1:
        if ranks[0] != 1 or ranks[-1] != 1:
            raise ValueError(f"layer {name!r}: boundary ranks r_0 and r_d must be 1, got {tuple(ranks)}")
        ranks = ranks[1:-1]
    if len(ranks) != d - 1:
        raise ValueError(
            f"layer {name!r}: {d} cores need {d - 1} internal ranks (or {d + 1} with r_0 = r_d = 1), got {len(ranks)}"
        )
    if any(r < 1 for r in ranks):
        raise ValueError(f"layer {name!r}: ranks {tuple(ranks)} must all be >= 1 (a rank of 0 removes the layer)")
    return tuple(ranks)


def _resolve_modes(
    in_features: int,
    out_features: int,
    modes_in: Sequence[int] | None,
    modes_out: Sequence[int] | None,
    d: int | None,
    name: str,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Given or factorized modes, checked; ``d`` defaults to the given modes' length, else 4."""
    if d is None:
        d = len(modes_in) if modes_in is not None else len(modes_out) if modes_out is not None else 4
    try:
        given_in = modes_in if modes_in is not None else factorize(in_features, d)
        given_out = modes_out if modes_out is not None else factorize(out_features, d)
    except FactorizationError as error:
        raise FactorizationError(f"layer {name!r}: {error}; or pass modes_in / modes_out") from error
    checked_in = check_modes(given_in, in_features, name=name, what="modes_in")
    checked_out = check_modes(given_out, out_features, name=name, what="modes_out")
    if len(checked_in) != len(checked_out):
        raise ValueError(
            f"layer {name!r}: modes_in {checked_in} and modes_out {checked_out} must have the same "
            "number of modes (one input and one output mode per core)"
        )
    return checked_in, checked_out


def _optional_quant(bits: int | None, name: str, stochastic: bool, signed: bool = True) -> FakeQuant | None:
    return None if bits is None else FakeQuant(bits, signed=signed, stochastic=stochastic, name=name)


class TTLinear(nn.Module):
    """Linear layer ``in_features -> out_features`` in TT-matrix format.

    ``modes_in`` / ``modes_out`` default to :func:`factorize` with ``d`` modes (``d`` is taken
    from whichever modes are given, else 4). ``rank`` is one internal rank for all bonds or
    the ``d - 1`` internal ranks. The forward contracts the input with one core at a time in
    ``order`` (default: the legal order with the fewest MACs at batch 1, chosen again after
    pruning). ``core_bits``, ``mid_bits`` and ``act_bits`` (2..8 or None) fake-quantize every
    core, every state between contraction steps and the input (signed unless ``act_signed``
    is False, e.g. for non-negative pixels); ``stochastic`` rounds those quantizers
    stochastically while training. :meth:`quant_specs` gives what an exporter writes.

    Rank adaptation (Hawkins & Zhang, arXiv 1905.10478): ``rank_prior`` is ``"log_uniform"``,
    ``"half_cauchy"`` (scale ``cauchy_scale``) or None; see :mod:`accelgen.tensor.rank`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        modes_in: Sequence[int] | None = None,
        modes_out: Sequence[int] | None = None,
        rank: int | Sequence[int] = 16,
        bias: bool = True,
        *,
        name: str = "tt_linear",
        d: int | None = None,
        order: Sequence[int] | None = None,
        core_bits: int | None = None,
        mid_bits: int | None = None,
        act_bits: int | None = None,
        act_signed: bool = True,
        stochastic: bool = False,
        rank_prior: str | None = "log_uniform",
        cauchy_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.name = name
        self.modes_in, self.modes_out = _resolve_modes(in_features, out_features, modes_in, modes_out, d, name)
        self.in_features, self.out_features = in_features, out_features
        self.d = len(self.modes_in)
        internal = _internal_ranks(rank, self.d, name)
        if rank_prior not in (None, *rank_math.PRIORS):
            raise ValueError(
                f"layer {name!r}: rank_prior must be one of {rank_math.PRIORS} or None, got {rank_prior!r}"
            )
        self.rank_prior, self.cauchy_scale = rank_prior, float(cauchy_scale)

        self.cores = nn.ParameterList(nn.Parameter(core) for core in self._initial_cores((1, *internal, 1)))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.core_quant = nn.ModuleList(
            q for k in range(self.d) if (q := _optional_quant(core_bits, f"{name}.core{k}", stochastic))
        )
        self.mid_quant = nn.ModuleList(
            q for t in range(self.d - 1) if (q := _optional_quant(mid_bits, f"{name}.mid{t}", stochastic))
        )
        self.act_quant = _optional_quant(act_bits, f"{name}.act", stochastic, act_signed)
        for k, core in enumerate(self.cores if core_bits is not None else ()):
            self.core_quant[k].init_scale_(core)

        self._fixed_order = order is not None
        self.order = tuple(order) if order is not None else choose_order(self.modes_in, self.modes_out, self.ranks)
        if not is_legal_order(self.order, self.d):
            raise ValueError(
                f"layer {name!r}: order {self.order} is not a permutation of 0..{self.d - 1} whose every prefix "
                "is a contiguous run of cores"
            )
        for k, variances in enumerate(rank_math.initial_variances(self.ranks), start=1):
            self.register_buffer(f"rank_variance_{k}", variances)
        if self.rank_prior is not None:
            self.update_ranks_()

    # ---- structure ------------------------------------------------------------------------

    def _initial_cores(self, ranks: tuple[int, ...]) -> list[torch.Tensor]:
        # var(W) = prod_k var(core k) * prod(internal ranks); equal core variances give 1 / in_features
        core_std = (1.0 / (self.in_features * math.prod(ranks))) ** (1.0 / (2 * self.d))
        return [
            torch.randn(ranks[k], self.modes_in[k], self.modes_out[k], ranks[k + 1]) * core_std for k in range(self.d)
        ]

    @property
    def ranks(self) -> tuple[int, ...]:
        """``(r_0, ..., r_d)``, boundary ranks 1 included; shrinks as :meth:`prune_` removes slices."""
        return (1, *(int(core.shape[3]) for core in self.cores[:-1]), 1)

    @property
    def rank_variances(self) -> list[torch.Tensor]:
        """``lambda_1 .. lambda_{d-1}``, one variance per slice of each internal rank."""
        return [getattr(self, f"rank_variance_{k}") for k in range(1, self.d)]

    def num_parameters(self, include_bias: bool = True) -> int:
        """Trainable numbers of the cores (and the bias), not counting quantizer scales."""
        count = sum(core.numel() for core in self.cores)
        return count + (self.bias.numel() if include_bias and self.bias is not None else 0)

    def macs(self, batch: int = 1) -> tuple[tuple[int, ...], int]:
        """Per-step multiply-accumulates of :attr:`order` at ``batch``, and their total."""
        steps = contraction_macs(self.modes_in, self.modes_out, self.ranks, self.order, batch)
        return steps, sum(steps)

    # ---- forward --------------------------------------------------------------------------

    def quantized_cores(self) -> list[torch.Tensor]:
        """The cores as the forward uses them (fake-quantized when ``core_bits`` is set)."""
        if not self.core_quant:
            return list(self.cores)
        return [quant(core) for quant, core in zip(self.core_quant, self.cores)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"layer {self.name!r}: expected input (batch, {self.in_features}), got {tuple(x.shape)}")
        if self.act_quant is not None:
            x = self.act_quant(x)
        cores = self.quantized_cores()
        state = self._first_step(x, cores[self.order[0]], self.order[0])
        last = self.order[0]  # the order is legal: a core not right of the run is left of it
        for t, core in enumerate(self.order[1:], start=1):
            if self.mid_quant:
                state = self.mid_quant[t - 1](state)
            if core == last + 1:
                state, last = self._extend_right(state, cores[core], core), core
            else:
                state = self._extend_left(state, cores[core], core)
        y = state.reshape(x.shape[0], self.out_features)
        return y if self.bias is None else y + self.bias

    # The state is S[b, L, R, N, r_first, r_last+1]: L and R the input modes left and right of
    # the run (row-major, still to be summed), N the run's output modes (row-major, kept).

    def _first_step(self, x: torch.Tensor, core: torch.Tensor, k: int) -> torch.Tensor:
        left, right = math.prod(self.modes_in[:k]), math.prod(self.modes_in[k + 1 :])
        x = x.reshape(x.shape[0], left, self.modes_in[k], right)
        return torch.einsum("blmr,amnc->blrnac", x, core)

    def _extend_right(self, state: torch.Tensor, core: torch.Tensor, k: int) -> torch.Tensor:
        batch, left, right, run, r_first, _ = state.shape
        state = state.reshape(batch, left, self.modes_in[k], right // self.modes_in[k], run, r_first, -1)
        state = torch.einsum("blmsNac,cmnq->blsNnaq", state, core)
        return state.reshape(batch, left, right // self.modes_in[k], run * self.modes_out[k], r_first, -1)

    def _extend_left(self, state: torch.Tensor, core: torch.Tensor, k: int) -> torch.Tensor:
        batch, left, right, run, _, r_last = state.shape
        state = state.reshape(batch, left // self.modes_in[k], self.modes_in[k], right, run, -1, r_last)
        state = torch.einsum("blmsNac,pmna->blsnNpc", state, core)
        return state.reshape(batch, left // self.modes_in[k], right, self.modes_out[k] * run, -1, r_last)

    def full_weight(self) -> torch.Tensor:
        """The dense ``(in_features, out_features)`` weight from :meth:`quantized_cores` (tests and
        inspection only: the forward never builds it)."""
        weight = self.quantized_cores()[0]  # (1, I, J, r): I, J the row-major indices so far
        for core in self.quantized_cores()[1:]:
            i, j = weight.shape[1] * core.shape[1], weight.shape[2] * core.shape[2]
            weight = torch.einsum("aijr,rmns->aimjns", weight, core).reshape(1, i, j, core.shape[3])
        return weight.reshape(self.in_features, self.out_features)

    # ---- rank adaptation (math in accelgen.tensor.rank) --------------------------------------

    def prior_loss(self) -> torch.Tensor:
        """Negative log prior of the cores given the rank variances, plus the variances' prior."""
        if self.rank_prior is None:
            return self.cores[0].new_zeros(())
        return rank_math.negative_log_prior(list(self.cores), self.rank_variances, self.rank_prior, self.cauchy_scale)

    @torch.no_grad()
    def update_ranks_(self) -> None:
        """Closed-form MAP update of every rank variance given the current cores."""
        if self.rank_prior is None:
            raise ValueError(f"layer {self.name!r}: update_ranks_ needs a rank_prior")
        new = rank_math.map_variances(list(self.cores), self.rank_variances, self.rank_prior, self.cauchy_scale)
        for k, variances in enumerate(new, start=1):
            setattr(self, f"rank_variance_{k}", variances)

    @torch.no_grad()
    def prune_(self, threshold: float, *, relative: bool = True) -> list[rank_math.Shrink]:
        """Remove the rank slices whose variance is below ``threshold`` by shrinking the cores.

        ``relative`` compares ``lambda_k[a]`` with ``threshold * max(lambda_k)``, which is
        independent of how the cores share the weight's scale; otherwise the threshold is
        absolute. At least one slice per rank stays. Returns one :class:`Shrink` per replaced
        parameter (empty when nothing changed); pass them to
        :func:`accelgen.tensor.rank.transfer_optimizer_` so the optimizer follows.
        """
        shrinks: list[rank_math.Shrink] = []
        for k, variances in enumerate(self.rank_variances, start=1):
            keep = rank_math.slices_to_keep(variances, threshold, relative)
            if keep.numel() == variances.numel():
                continue
            for core_index, axis in ((k - 1, 3), (k, 0)):
                old = self.cores[core_index]
                self.cores[core_index] = nn.Parameter(old.detach().index_select(axis, keep).clone())
                shrinks.append(rank_math.Shrink(old, self.cores[core_index], axis, keep))
            setattr(self, f"rank_variance_{k}", variances.index_select(0, keep).clone())
        if shrinks and not self._fixed_order:
            self.order = choose_order(self.modes_in, self.modes_out, self.ranks)
        return shrinks

    def quant_specs(self) -> dict[str, QuantSpec | list[QuantSpec] | None]:
        """The quantizers' (scale, bits, signed, narrow): ``act``, ``cores`` (by core index) and
        ``mids`` (by step: ``mids[t]`` quantizes the state after step ``t`` of :attr:`order`)."""
        return {
            "act": None if self.act_quant is None else self.act_quant.spec(),
            "cores": [q.spec() for q in self.core_quant],
            "mids": [q.spec() for q in self.mid_quant],
        }

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # a checkpoint of a pruned layer has smaller cores and variances: take its shapes
        with torch.no_grad():
            for k in range(self.d):
                saved = state_dict.get(f"{prefix}cores.{k}")
                if saved is not None and saved.shape != self.cores[k].shape:
                    self.cores[k] = nn.Parameter(torch.empty_like(saved, dtype=self.cores[k].dtype))
            for k in range(1, self.d):
                saved = state_dict.get(f"{prefix}rank_variance_{k}")
                if saved is not None and saved.shape != getattr(self, f"rank_variance_{k}").shape:
                    setattr(self, f"rank_variance_{k}", torch.empty_like(saved))
        if not self._fixed_order:
            self.order = choose_order(self.modes_in, self.modes_out, self.ranks)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, modes_in={self.modes_in}, modes_out={self.modes_out}, ranks={self.ranks}, "
            f"order={self.order}, bias={self.bias is not None}"
        )
