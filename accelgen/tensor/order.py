"""Contraction orders of a TT-matrix layer and their multiply-accumulate counts (pure Python).

An order is a permutation of the cores ``0..d-1`` in which every prefix is a contiguous run
(see ``notes/tt_contract.md``): the first core is any, each next core extends the run on its
left or its right, so there are ``2^(d-1)`` orders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["choose_order", "contraction_macs", "is_legal_order", "legal_orders"]


def legal_orders(d: int) -> list[tuple[int, ...]]:
    """Every legal order of ``d`` cores, sorted lexicographically."""
    orders: list[tuple[int, ...]] = []

    def extend(order: tuple[int, ...], first: int, last: int) -> None:
        if len(order) == d:
            orders.append(order)
            return
        if first > 0:
            extend((*order, first - 1), first - 1, last)
        if last < d - 1:
            extend((*order, last + 1), first, last + 1)

    for start in range(d):
        extend((start,), start, start)
    return sorted(orders)


def is_legal_order(order: Sequence[int], d: int) -> bool:
    """Whether ``order`` is a permutation of ``0..d-1`` whose every prefix is contiguous."""
    if sorted(order) != list(range(d)):
        return False
    return all(max(order[: t + 1]) - min(order[: t + 1]) == t for t in range(d))


def contraction_macs(
    modes_in: Sequence[int], modes_out: Sequence[int], ranks: Sequence[int], order: Sequence[int], batch: int = 1
) -> tuple[int, ...]:
    """Multiply-accumulates of each contraction step, ``ranks = (r_0, ..., r_d)``.

    Step ``t`` joins core ``c`` to the run; every element of the new state
    ``S[b, i_rest, j_run, r_first, r_last+1]`` is a sum over ``m_c`` and over the rank shared
    by ``c`` and the old run (1 at the first step), so the step costs
    ``batch * prod(m outside the run) * prod(n inside) * r_first * r_last+1 * m_c * r_shared``.
    """
    d = len(modes_in)
    steps: list[int] = []
    first = last = order[0]
    for t, core in enumerate(order):
        if t == 0:
            shared = 1
        elif core == first - 1:
            first, shared = core, ranks[core + 1]
        else:
            last, shared = core, ranks[core]
        outside = math.prod(modes_in[k] for k in range(d) if not first <= k <= last)
        inside = math.prod(modes_out[first : last + 1])
        steps.append(batch * outside * inside * ranks[first] * ranks[last + 1] * modes_in[core] * shared)
    return tuple(steps)


def choose_order(
    modes_in: Sequence[int], modes_out: Sequence[int], ranks: Sequence[int], batch: int = 1
) -> tuple[int, ...]:
    """The legal order with the fewest total MACs at ``batch`` (the first such in lexicographic order)."""
    return min(legal_orders(len(modes_in)), key=lambda o: sum(contraction_macs(modes_in, modes_out, ranks, o, batch)))
