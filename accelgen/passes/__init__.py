"""The compile passes, in order. Each pass is ``pass(graph, config) -> (graph, changed)``.

The driver applies each pass until it reports no change, then runs :func:`ir.verify`, so
a pass that breaks an invariant is named at once.
"""

from __future__ import annotations

from collections.abc import Callable

from accelgen import ir
from accelgen.config import CompileConfig
from accelgen.errors import InternalError
from accelgen.passes.bipolar import widen_padded_bipolar
from accelgen.passes.fold import fold_batchnorm
from accelgen.passes.fuse import check_host_tail, fuse_requant, sink_reshape
from accelgen.passes.layout import channels_last
from accelgen.passes.requant import integer_requant, remove_identity_requant

Pass = Callable[[ir.Graph, CompileConfig], tuple[ir.Graph, bool]]

#: the passes in the order they run
PASSES: list[Pass] = [
    fold_batchnorm,
    sink_reshape,
    fuse_requant,
    check_host_tail,
    integer_requant,
    remove_identity_requant,
    widen_padded_bipolar,
    channels_last,
]

#: a pass may rewrite one op per round; more rounds than this means it does not converge
EXTRA_ROUNDS = 50


def run_passes(graph: ir.Graph, config: CompileConfig | None = None, passes: list[Pass] | None = None) -> ir.Graph:
    """Apply every pass to a fixed point, verifying the graph after each."""
    config = config or CompileConfig()
    ir.verify(graph)
    for p in passes if passes is not None else PASSES:
        for _ in range(len(graph.ops) + EXTRA_ROUNDS):
            graph, changed = p(graph, config)
            ir.verify(graph)
            if not changed:
                break
        else:
            raise InternalError(f"pass {p.__name__} did not reach a fixed point")
    ir.verify(graph, lowered=True)
    return graph
