"""Fold BatchNormalization into a per-channel affine step."""

from __future__ import annotations

import numpy as np

from accelgen import ir
from accelgen.config import CompileConfig


def fold_batchnorm(graph: ir.Graph, config: CompileConfig) -> tuple[ir.Graph, bool]:
    """BatchNorm(x) = x * gamma / sqrt(var + eps) + (beta - mean * gamma / sqrt(var + eps))."""
    ops = []
    changed = False
    for op in graph.ops:
        if isinstance(op, ir.BatchNorm):
            mul = op.gamma / np.sqrt(op.var + op.epsilon)
            add = op.beta - op.mean * mul
            rows = np.broadcast_arrays(op.gamma, op.beta, op.mean, op.var, np.full(1, op.epsilon))
            op = ir.Affine(name=op.name, inputs=op.inputs, outputs=op.outputs, source=op.source, mul=mul, add=add,
                           batchnorm=np.stack(rows).astype(np.float64))  # fmt: skip
            changed = True
        ops.append(op)
    return graph.copy(ops=ops), changed
