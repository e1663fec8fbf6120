"""The integer core of a lowered graph: the chain of layers the RTL path turns into logic.

The core starts at the first integer codes tensor (what the host's input quantizer
produces) and ends at the last integer tensor before the host tail. This module finds it,
checks that the fully unrolled architecture can build it (:func:`check_fits`), and
serialises it to JSON and back so that a generated design directory can recompute its
expected outputs with the golden interpreter long after the model is gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelgen import ir
from accelgen.errors import InputError, InternalError

#: widest weights and hidden activations the unrolled path accepts (issue: "<= 4 bits")
MAX_WEIGHT_BITS = 4
MAX_HIDDEN_BITS = 4
#: the core's input codes come from the host quantizer and may be wider
MAX_INPUT_BITS = 8
MAX_OUTPUT_BITS = 8
#: ops that may appear in the core; Reshape only renames a vector
CORE_OPS = (ir.Dense, ir.Reshape)
#: without a board, a design larger than the largest supported part is refused
DEFAULT_MAX_LUTS = 274_080

OTHER_ARCH = "use --arch dataflow (layer-pipelined HLS, weights in on-chip memory) instead"


@dataclass(frozen=True)
class Core:
    """The integer layers between the host's input quantizer and the host tail."""

    input: ir.Tensor
    output: ir.Tensor
    layers: tuple[ir.Op, ...]
    tensors: dict[str, ir.Tensor]

    @property
    def dense(self) -> list[ir.Dense]:
        return [op for op in self.layers if isinstance(op, ir.Dense)]


def extract_core(graph: ir.Graph) -> Core:
    """The chain of integer ops; raises InputError when the integer part is not one chain."""
    ops = list(graph.integer_ops())
    if not ops:
        raise InputError(f"model '{graph.name}' has no integer layer to build in hardware")
    problems = []
    for prev, op in zip(ops, ops[1:]):
        if len(op.inputs) != 1 or op.inputs[0] != prev.outputs[0]:
            problems.append(f"{op.kind} '{op.source or op.name}' does not read the previous layer's output alone")
    first = graph.tensors[ops[0].inputs[0]]
    if first.kind != "codes":
        problems.append(f"{ops[0].kind} '{ops[0].source or ops[0].name}' does not start from integer codes")
    if problems:
        raise InputError(
            "the fully unrolled RTL path builds a single chain of layers (an MLP):\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\n{OTHER_ARCH}"
        )
    return Core(first, graph.tensors[ops[-1].outputs[0]], tuple(ops), graph.tensors)


def fit_problems(core: Core) -> list[str]:
    """Every reason the unrolled architecture cannot build ``core`` (empty when it can)."""
    problems = []
    if not core.dense:
        problems.append("no fully connected layer (Gemm/MatMul) to unroll")
    for op in core.layers:
        where = f"{op.kind} '{op.source or op.name}'"
        if not isinstance(op, CORE_OPS):
            problems.append(f"{where}: only fully connected layers (Gemm/MatMul) are unrolled into logic")
            continue
        if not isinstance(op, ir.Dense):
            continue
        x = core.tensors[op.inputs[0]]
        out = core.tensors[op.outputs[0]]
        wq = op.w_qtype
        if not wq.bipolar and wq.bits > MAX_WEIGHT_BITS:
            problems.append(
                f"{where}: {wq.bits}-bit weights; constant-weight logic takes at most {MAX_WEIGHT_BITS} bits"
            )
        limit = MAX_INPUT_BITS if x.name == core.input.name else MAX_HIDDEN_BITS
        if x.qtype is not None and not x.qtype.bipolar and x.qtype.bits > limit:
            which = "input" if limit == MAX_INPUT_BITS else "hidden activation"
            problems.append(f"{where}: {x.qtype.bits}-bit {which}s; the unrolled path takes at most {limit} bits")
        if isinstance(op.requant, ir.FloatRequant):
            raise InternalError(f"{where} reached the RTL generator with a float requantizer")
        if op.requant is None and out.name != core.output.name:
            problems.append(f"{where}: a raw accumulator feeds another layer")
        if out.kind == "codes" and out.qtype.bits > MAX_OUTPUT_BITS:
            problems.append(f"{where}: {out.qtype.bits}-bit output codes; at most {MAX_OUTPUT_BITS} bits")
    return problems


# -- JSON round trip (the golden model of a generated design) ---------------------------------


def _qtype_json(q: ir.QType) -> dict[str, Any]:
    return {
        "bits": q.bits,
        "signed": q.signed,
        "scale": [float(s) for s in q.scale],
        "zero_point": [int(z) for z in q.zero_point],
        "axis": q.axis,
        "narrow": q.narrow,
        "bipolar": q.bipolar,
    }


def _qtype_from(d: dict[str, Any]) -> ir.QType:
    return ir.QType(
        bits=d["bits"],
        signed=d["signed"],
        scale=tuple(d["scale"]),
        zero_point=tuple(d["zero_point"]),
        axis=d["axis"],
        narrow=d["narrow"],
        bipolar=d["bipolar"],
    )


def _requant_json(rq) -> dict[str, Any] | None:
    if rq is None:
        return None
    if isinstance(rq, ir.Thresholds):
        return {
            "kind": "thresholds",
            "thresholds": rq.thresholds.tolist(),
            "base": rq.base.tolist(),
            "direction": rq.direction.tolist(),
            "step": int(rq.step),
        }
    if isinstance(rq, ir.MultiplyShift):
        return {
            "kind": "multiply_shift",
            "multiplier": rq.multiplier.tolist(),
            "offset": rq.offset.tolist(),
            "shift": int(rq.shift),
            "lo": rq.lo.tolist(),
            "hi": rq.hi.tolist(),
            "direction": rq.direction.tolist(),
        }
    raise InternalError(f"requantizer {type(rq).__name__} cannot be serialised")


def _requant_from(d: dict[str, Any] | None):
    if d is None:
        return None

    def arr(key: str) -> np.ndarray:
        return np.asarray(d[key], dtype=np.int64)

    if d["kind"] == "thresholds":
        T = np.asarray(d["thresholds"], dtype=np.int64).reshape(len(d["thresholds"]), -1)
        return ir.Thresholds(thresholds=T, base=arr("base"), direction=arr("direction"), step=d["step"])
    return ir.MultiplyShift(multiplier=arr("multiplier"), offset=arr("offset"), shift=d["shift"],
                            lo=arr("lo"), hi=arr("hi"), direction=arr("direction"))  # fmt: skip


def _tensor_json(t: ir.Tensor, name: str) -> dict[str, Any]:
    return {"name": name, "shape": list(t.shape[1:]), "kind": t.kind, "qtype": _qtype_json(t.qtype)}


def core_to_json(core: Core) -> dict[str, Any]:
    """The core as plain JSON; tensors are renamed t0, t1, ... (no model names)."""
    names = {core.input.name: "t0"}
    layers = []
    tensors = [_tensor_json(core.input, "t0")]
    for i, op in enumerate(core.layers):
        out = core.tensors[op.outputs[0]]
        names[out.name] = f"t{i + 1}"
        tensors.append(_tensor_json(out, names[out.name]))
        entry: dict[str, Any] = {"op": op.kind, "input": names[op.inputs[0]], "output": names[out.name]}
        if isinstance(op, ir.Dense):
            entry.update(
                weights=op.weights.tolist(), w_qtype=_qtype_json(op.w_qtype), requant=_requant_json(op.requant)
            )
        else:
            entry.update(shape=list(op.shape))
        layers.append(entry)
    return {"tensors": tensors, "layers": layers}


def graph_from_json(data: dict[str, Any]) -> ir.Graph:
    """Rebuild the core as a graph the golden interpreter runs (input and output: codes)."""
    tensors = {}
    for t in data["tensors"]:
        tensors[t["name"]] = ir.Tensor(t["name"], (None, *t["shape"]), t["kind"], _qtype_from(t["qtype"]))
    ops: list[ir.Op] = []
    for i, d in enumerate(data["layers"]):
        common = dict(name=f"layer{i}", inputs=(d["input"],), outputs=(d["output"],))
        if d["op"] == "Dense":
            w = np.asarray(d["weights"], dtype=np.int64)
            ops.append(
                ir.Dense(**common, weights=w, w_qtype=_qtype_from(d["w_qtype"]), requant=_requant_from(d["requant"]))
            )
        elif d["op"] == "Reshape":
            ops.append(ir.Reshape(**common, shape=tuple(d["shape"])))
        else:
            raise InternalError(f"unknown core op {d['op']} in design.json")
    first, last = data["tensors"][0]["name"], data["tensors"][-1]["name"]
    graph = ir.Graph("core", tensors, ops, [first], [last], io_dtypes={last: "int64"})
    ir.verify(graph, lowered=True)
    return graph
