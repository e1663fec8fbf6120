"""Stream plumbing between kernels, from the graph's structure alone (no op types).

* Bypass FIFOs: where a stream forks and the branches join again (a residual Add, a
  Concat), the shorter branch must buffer what arrives while the longer one fills its
  windows. Each tensor gets an arrival offset in fractions of a frame (a kernel delays
  its output by ``lag / input elements``); a join's input i needs
  ``(latest offset - offset_i) * elements_i`` extra FIFO entries. This assumes every
  stream advances at the same frame rate, as in the steady state of a dataflow pipeline.
  The FIFO sits in front of the join's input; its depth in words is
  :func:`accelgen.kernels.hw.bypass_fifo_depth`, which the join's cost prices and code
  generation instantiates (accelgen.codegen.connect).
* Frame latency: first and last element times of every stream, from each layer's
  cycles, pipeline depth and lag.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from accelgen import ir
from accelgen.kernels.base import Cost, LayerSpec


def layer_specs(graph: ir.Graph) -> dict[str, LayerSpec]:
    """Every integer op's kernel spec with its bypass FIFOs sized: what the explorer prices
    and what code generation instantiates (one call, one answer for both)."""
    from accelgen.kernels import kernel_for

    ops = list(graph.integer_ops())
    kernels = {op.name: kernel_for(op) for op in ops}
    specs = {op.name: kernels[op.name].describe(op, graph) for op in ops}
    bypass = bypass_depths(graph, specs, lambda s: kernels[s.name].lag(s))
    return {name: spec.with_bypass(bypass[name]) if name in bypass else spec for name, spec in specs.items()}


def bypass_depths(graph: ir.Graph, specs: Mapping[str, LayerSpec], lag: Callable[[LayerSpec], int]) -> dict[str, tuple[int, ...]]:  # fmt: skip
    """Extra FIFO entries per input of every layer with more than one input."""
    offset: dict[str, float] = {t: 0.0 for t in graph.inputs}
    depths: dict[str, tuple[int, ...]] = {}
    for op in graph.ops:
        arrivals = [offset.get(t, 0.0) for t in op.inputs]
        latest = max(arrivals, default=0.0)
        spec = specs.get(op.name)
        if spec is None:  # host op: no delay of its own
            for t in op.outputs:
                offset[t] = latest
            continue
        if len(op.inputs) > 1:
            depths[op.name] = tuple(math.ceil((latest - a) * n - 1e-9) for a, n in zip(arrivals, spec.in_elems))
        delay = lag(spec) / spec.in_elems[0] if spec.in_elems[0] else 0.0
        for t in op.outputs:
            offset[t] = latest + delay
    return depths


def frame_latency(graph: ir.Graph, specs: Mapping[str, LayerSpec], costs: Mapping[str, Cost],
                  lag: Callable[[LayerSpec], int]) -> int:  # fmt: skip
    """Cycles from the first input element to the last output element of one frame.

    A layer's first output comes ``max(depth, lag fraction of its input's arrival span)``
    after its first input; its last output no sooner than ``cycles`` after its first
    output nor ``depth`` after its last input.
    """
    first: dict[str, float] = {t: 0.0 for t in graph.inputs}
    last: dict[str, float] = {t: 0.0 for t in graph.inputs}
    end = 0.0
    for op in graph.ops:
        s_in = max((first.get(t, 0.0) for t in op.inputs), default=0.0)
        e_in = max((last.get(t, 0.0) for t in op.inputs), default=0.0)
        spec = specs.get(op.name)
        if spec is None:
            s_out, e_out = s_in, e_in
        else:
            cost = costs[op.name]
            frac = lag(spec) / spec.in_elems[0] if spec.in_elems[0] else 0.0
            s_out = s_in + max(cost.depth, frac * (e_in - s_in))
            e_out = max(s_out + cost.cycles, e_in + cost.depth)
            end = max(end, e_out)
        for t in op.outputs:
            first[t], last[t] = s_out, e_out
    return math.ceil(end)
