"""Pure analyses of a lowered graph: the layer table behind `accelgen inspect`."""

from __future__ import annotations

from typing import Any

import numpy as np

from accelgen import ir


def _bits(q: ir.QType | None) -> int | None:
    return None if q is None else q.bits


def _fmt_shape(shape: tuple) -> list[int]:
    return [int(d) for d in shape[1:]]


def macs(op: ir.Op, graph: ir.Graph) -> int:
    """Multiply-accumulates per sample."""
    out = graph.tensors[op.outputs[0]]
    if isinstance(op, ir.Conv):
        oc, icg, kh, kw = op.weights.shape
        return int(out.shape[1] * out.shape[2] * oc * icg * kh * kw)
    if isinstance(op, ir.Dense):
        return int(op.weights.size)
    if isinstance(op, ir.TTDense):
        return sum(tt_step_macs(op))
    return 0


def tt_step_macs(op: ir.TTDense) -> list[int]:
    """Multiply-accumulates per sample of each contraction step of a TT layer, in ``order``."""
    return [state * summed for state, summed in op.step_sizes()]


def weight_bits(op: ir.Op) -> int:
    """Weight storage in bits at the weights' real bit width."""
    if isinstance(op, (ir.Conv, ir.Dense)):
        return int(op.weights.size) * op.w_qtype.bits
    if isinstance(op, ir.TTDense):
        return sum(int(c.size) * q.bits for c, q in zip(op.cores, op.core_qtypes))
    return 0


def tt_summary(op: ir.TTDense) -> dict[str, Any]:
    """The TT layer's factorisation beside the dense layer it replaces."""
    params = sum(int(c.size) for c in op.cores)
    dense = op.in_features * op.out_features
    return {
        "modes_in": list(op.modes_in),
        "modes_out": list(op.modes_out),
        "ranks": list(op.ranks),
        "order": list(op.order),
        "core_bits": [q.bits for q in op.core_qtypes],
        "state_bits": [q.bits for q in op.mid_qtypes],
        "step_macs": tt_step_macs(op),
        "params": params,
        "dense_params": dense,
        "compression": dense / params,
    }


def requant_summary(rq: ir.Requant | None) -> str:
    if rq is None:
        return "-"
    if isinstance(rq, ir.Thresholds):
        c, n = rq.thresholds.shape
        return f"thresholds {c}x{n}"
    if isinstance(rq, ir.MultiplyShift):
        return f"mul-shift {rq.multiplier_bits}b>>{rq.shift}"
    return "float"


def layer_table(graph: ir.Graph) -> list[dict[str, Any]]:
    """One row per integer layer: op, shapes, bits, MACs, weight bytes, requantizer."""
    rows = []
    for op in graph.integer_ops():
        x = graph.tensors[op.inputs[0]]
        out = graph.tensors[op.outputs[0]]
        rq = getattr(op, "requant", None)
        w_q = getattr(op, "w_qtype", None)
        if isinstance(op, ir.TTDense):
            w_q = max(op.core_qtypes, key=lambda q: q.bits)
        rows.append(
            {
                "name": op.name,
                "source": op.source,
                "op": op.kind,
                "in_shape": _fmt_shape(x.shape),
                "out_shape": _fmt_shape(out.shape),
                "w_bits": _bits(w_q),
                "w_type": w_q.describe() if w_q is not None else None,
                "a_bits": _bits(x.qtype),
                "a_type": x.qtype.describe() if x.qtype is not None else None,
                "out_bits": _bits(out.qtype) if out.kind == "codes" else None,
                "out_type": out.qtype.describe() if out.kind == "codes" else f"acc int{out.qtype.bits}",
                "macs": macs(op, graph),
                "weight_bytes": int(np.ceil(weight_bits(op) / 8)),
                "requant": requant_summary(rq),
                "requant_reason": getattr(rq, "reason", ""),
            }
        )
        if isinstance(op, ir.TTDense):
            rows[-1]["tt"] = tt_summary(op)
    return rows


def host_ops(graph: ir.Graph) -> dict[str, list[str]]:
    """Host-side work: quantizing the input (prologue) and the float tail (epilogue)."""
    prologue, epilogue = [], []
    seen_integer = False
    for op in graph.ops:
        if not ir.is_host_op(op, graph.tensors):
            seen_integer = True
            continue
        label = f"{op.kind} ({op.source})"
        (epilogue if seen_integer else prologue).append(label)
    return {"prologue": prologue, "epilogue": epilogue}


def summary(graph: ir.Graph, dialect: str) -> dict[str, Any]:
    rows = layer_table(graph)
    return {
        "model": graph.name,
        "dialect": dialect,
        "inputs": {n: {"shape": list(graph.tensors[n].shape), "dtype": graph.io_dtypes.get(n)} for n in graph.inputs},
        "outputs": {n: {"shape": list(graph.tensors[n].shape), "dtype": graph.io_dtypes.get(n)} for n in graph.outputs},
        "layers": rows,
        "totals": {
            "layers": len(rows),
            "macs": sum(r["macs"] for r in rows),
            "weight_bytes": sum(r["weight_bytes"] for r in rows),
        },
        "host": host_ops(graph),
    }
