"""IR invariants: verify names what is broken; JSON dump; pass driver."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from accelgen import ir
from accelgen.errors import InternalError
from accelgen.frontend import import_model, load_model
from accelgen.passes import PASSES, run_passes

MODELS = Path(__file__).parent / "models"


def tiny_graph() -> ir.Graph:
    q8 = ir.QType(8, False, (0.1,), (0,))
    tensors = {
        "x": ir.Tensor("x", (None, 4), "codes", q8),
        "y": ir.Tensor("y", (None, 2), "acc", ir.QType(32, True, (0.01,))),
    }
    op = ir.Dense(name="fc", inputs=("x",), outputs=("y",), weights=np.ones((2, 4), np.int64), w_qtype=q8)
    return ir.Graph("tiny", tensors, [op], ["x"], ["y"])


def test_verify_accepts_valid_graph():
    ir.verify(tiny_graph())


def test_verify_names_use_before_definition():
    g = tiny_graph()
    g.ops[0] = g.ops[0].replace(inputs=("nowhere",))
    with pytest.raises(InternalError, match="'fc' reads 'nowhere'"):
        ir.verify(g)


def test_verify_names_weight_shape_mismatch():
    g = tiny_graph()
    g.ops[0] = g.ops[0].replace(weights=np.ones((2, 5), np.int64))
    with pytest.raises(InternalError, match="Dense 'fc' weights"):
        ir.verify(g)


def test_verify_rejects_float_weights_and_missing_qtype():
    g = tiny_graph()
    g.ops[0] = g.ops[0].replace(weights=np.ones((2, 4)))
    with pytest.raises(InternalError, match="not integers"):
        ir.verify(g)
    g = tiny_graph()
    g.tensors["y"] = ir.Tensor("y", (None, 2), "acc", None)
    with pytest.raises(InternalError, match="no QType"):
        ir.verify(g)


def test_lowered_graph_has_no_float_requant():
    g = tiny_graph()
    fr = ir.FloatRequant((), ir.QType(4, False, (0.5,), (0,)))
    g.tensors["y"] = ir.Tensor("y", (None, 2), "codes", fr.out_qtype)
    g.ops[0] = g.ops[0].replace(requant=fr)
    ir.verify(g)
    with pytest.raises(InternalError, match="still has a float requantizer"):
        ir.verify(g, lowered=True)


def test_ops_are_frozen():
    op = tiny_graph().ops[0]
    with pytest.raises(AttributeError):
        op.name = "other"


def test_qtype_ranges():
    assert (ir.QType(4, True).qmin, ir.QType(4, True).qmax) == (-8, 7)
    assert (ir.QType(4, True, narrow=True).qmin, ir.QType(4, False, narrow=True).qmax) == (-7, 14)
    assert (ir.QType(1, True, bipolar=True).qmin, ir.QType(1, True, bipolar=True).qmax) == (-1, 1)
    assert (ir.QType(2, False).qmin, ir.QType(2, False).qmax) == (0, 3)


def test_pass_list_is_explicit_and_ordered():
    names = [p.__name__ for p in PASSES]
    assert names.index("fold_batchnorm") < names.index("fuse_requant") < names.index("integer_requant")
    assert names[-1] == "channels_last"


def test_json_dump_of_lowered_cnn_roundtrips():
    g = run_passes(import_model(load_model(MODELS / "qonnx_cnn_w4a8.onnx")))
    data = json.loads(g.dumps())
    assert data["inputs"] == g.inputs and data["outputs"] == g.outputs
    assert len(data["ops"]) == len(g.ops)
    assert all(t["layout"] != "NCHW" for n, t in data["tensors"].items() if n not in g.inputs + g.outputs)


def test_every_pass_keeps_the_graph_valid():
    """run_passes verifies after each pass; a BatchNorm model exercises folding too."""
    imported = import_model(load_model(MODELS / "qonnx_mlp_w1a1.onnx"))
    assert any(isinstance(op, ir.BatchNorm) for op in imported.ops)
    lowered = run_passes(imported)
    assert not any(isinstance(op, ir.BatchNorm) for op in lowered.ops)
    assert all(not isinstance(getattr(op, "requant", None), ir.FloatRequant) for op in lowered.ops)
