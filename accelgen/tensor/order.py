"""Contraction orders of a TT-matrix layer and their multiply-accumulate counts.

An order is a permutation of the cores ``0..d-1`` in which every prefix is a contiguous run
(see ``accelgen.ir.TTDense``): the first core is any, each next core extends the run on its
left or its right, so there are ``2^(d-1)`` orders.
"""

from __future__ import annotations

from collections.abc import Sequence

from accelgen.ir import is_contiguous_order as is_legal_order
from accelgen.ir import tt_step_sizes

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


def contraction_macs(
    modes_in: Sequence[int], modes_out: Sequence[int], ranks: Sequence[int], order: Sequence[int], batch: int = 1
) -> tuple[int, ...]:
    """Multiply-accumulates of each contraction step, ``ranks = (r_0, ..., r_d)``.

    Step ``t`` joins core ``c`` to the run; every element of the new state
    ``S[b, i_rest, j_run, r_first, r_last+1]`` is a sum over ``m_c`` and over the rank shared
    by ``c`` and the old run (1 at the first step): the compiler's definition,
    :func:`accelgen.ir.tt_step_sizes`, times the batch.
    """
    return tuple(batch * state * summed for state, summed in tt_step_sizes(modes_in, modes_out, ranks, order))


def choose_order(
    modes_in: Sequence[int], modes_out: Sequence[int], ranks: Sequence[int], batch: int = 1
) -> tuple[int, ...]:
    """The legal order with the fewest total MACs at ``batch`` (the first such in lexicographic order)."""
    return min(legal_orders(len(modes_in)), key=lambda o: sum(contraction_macs(modes_in, modes_out, ranks, o, batch)))
