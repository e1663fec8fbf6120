"""Tensor-train layers from QONNX: structural recognition, IR checks, golden against independent references.

References are written here (numpy, from the QONNX Quant definition) or are the qonnx
executor; nothing in this file computes expected values with accelgen code.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from accelgen import golden, ir
from accelgen.cli import main
from accelgen.errors import InternalError
from accelgen.passes.requant import tt_step_ranges
from accelgen.pipeline import compile_model
from accelgen.runtime import interpreter
from accelgen.runtime.program import load_program, save_program
from tests.reference import run_reference
from tests.tt_models import codes_of, contiguous_orders, fake_quant, full_weight, tt_model

#: (modes_in, modes_out, ranks) for d = 2, 3, 4
SHAPES = {
    2: ((4, 6), (3, 4), (1, 3, 1)),
    3: ((2, 3, 4), (2, 2, 3), (1, 2, 3, 1)),
    4: ((2, 3, 2, 2), (3, 2, 2, 1), (1, 2, 3, 2, 1)),
}
CASES = [(d, order) for d in SHAPES for order in contiguous_orders(d)]


def f32(v) -> float:
    """What an ONNX float32 initializer holds."""
    return float(np.float32(v))


def save(model: onnx.ModelProto, tmp_path, name: str = "tt.onnx") -> str:
    path = tmp_path / name
    onnx.save(model, str(path))
    return str(path)


def inputs(spec, batch: int, seed: int = 1) -> np.ndarray:
    n = math.prod(spec.modes_in)
    hi = spec.x_scale * ((1 << spec.x_bits) - 1 if not spec.x_signed else (1 << (spec.x_bits - 1)) - 1)
    lo = -hi if spec.x_signed else 0.0
    return np.random.default_rng(seed).uniform(lo - 0.1, hi + 0.1, (batch, n)).astype(np.float32)


def tt_op(graph: ir.Graph) -> ir.TTDense:
    (op,) = [op for op in graph.ops if isinstance(op, ir.TTDense)]
    return op


# -- an independent numpy reference of the quantized TT layer ----------------------------------


def quant_codes(value: np.ndarray, scale: float, bits: int, signed: bool, narrow: bool = False) -> np.ndarray:
    """QONNX Quant with zero point 0: clip(round_half_even(value / scale)) as integer codes."""
    lo = (-(1 << (bits - 1)) + int(narrow)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    return np.clip(np.round(value / scale), lo, hi).astype(np.int64)


def input_codes(spec, x: np.ndarray) -> np.ndarray:
    """The input Quant's codes, computed in float32 as the qonnx executor does."""
    xs = np.float32(spec.x_scale)
    lo, hi = (-(1 << (spec.x_bits - 1)), (1 << (spec.x_bits - 1)) - 1) if spec.x_signed else (0, (1 << spec.x_bits) - 1)
    return np.clip(np.round(x.astype(np.float32) / xs), lo, hi).astype(np.int64)


def reference_codes(spec, x: np.ndarray, sums: list | None = None) -> np.ndarray:
    """The TT layer's output codes: integer contraction step by step in ``spec.order``.

    The state is an einsum operand whose axes are named by letters; step t sums core
    ``order[t]`` over the axes it shares with the state, then the sums are requantized
    as the Quant after that step defines (value = sum * s_state * s_core).
    """
    d = len(spec.modes_in)
    x_codes = input_codes(spec, x)
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    m_ax = [next(letters) for _ in range(d)]
    n_ax = [next(letters) for _ in range(d)]
    r_ax = [next(letters) for _ in range(d + 1)]
    state, axes = x_codes.reshape(-1, *spec.modes_in), ["Z", *m_ax]
    s_state = f32(spec.x_scale)
    for t, k in enumerate(spec.order):
        core = codes_of(spec.cores_float[k], f32(spec.core_scales[k]), spec.core_bits, True, narrow=spec.core_narrow)
        core_axes = [r_ax[k], m_ax[k], n_ax[k], r_ax[k + 1]]
        out_axes = [a for a in axes if a not in core_axes] + [a for a in core_axes if a not in axes]
        expr = f"{''.join(axes)},{''.join(core_axes)}->{''.join(out_axes)}"
        state, axes = np.einsum(expr, state, core), out_axes
        if sums is not None:
            sums.append(state.copy())
        unit = s_state * f32(spec.core_scales[k])
        if t < d - 1:
            s_mid = f32(spec.mid_scales[t])
            state = quant_codes(state * unit, s_mid, spec.mid_bits, True)
            s_state = s_mid
    final = ["Z", r_ax[0], *n_ax, r_ax[d]]
    acc = np.transpose(state, [axes.index(a) for a in final]).reshape(state.shape[0], -1)
    value = acc * unit
    if spec.bias is not None:
        value = value + np.float32(spec.bias).astype(np.float64)
    if spec.relu:
        value = np.maximum(value, 0.0)
    return quant_codes(value, f32(spec.out_scale), spec.out_bits, not spec.relu)


def output_codes(y: np.ndarray, scale: float) -> np.ndarray:
    steps = y.astype(np.float64) / f32(scale)
    assert np.all(np.abs(steps - np.round(steps)) < 1e-3)
    return np.round(steps).astype(np.int64)


# -- the builder writes the TT contraction (checked with the qonnx executor) -------------------


@pytest.mark.parametrize("d,order", CASES)
def test_builder_chain_is_the_tt_contraction(tmp_path, d, order):
    modes_in, modes_out, ranks = SHAPES[d]
    model, spec = tt_model(modes_in, modes_out, ranks, order, mid_quant=False, tail=False)
    x = inputs(spec, 16)
    got = run_reference(save(model, tmp_path), x)
    xq = input_codes(spec, x) * f32(spec.x_scale)
    cores = [fake_quant(c, f32(s), spec.core_bits, True, True) for c, s in zip(spec.cores_float, spec.core_scales)]
    want = xq @ full_weight(cores)
    assert got.shape == want.shape == (16, math.prod(modes_out))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_full_weight_matches_the_contract_elementwise():
    rng = np.random.default_rng(3)
    cores = [rng.normal(size=s) for s in ((1, 2, 3, 2), (2, 3, 2, 4), (4, 2, 2, 1))]
    w = full_weight(cores)
    for i in ((0, 1, 1), (1, 2, 0)):
        for j in ((2, 1, 0), (0, 0, 1)):
            v = cores[0][:, i[0], j[0], :] @ cores[1][:, i[1], j[1], :] @ cores[2][:, i[2], j[2], :]
            assert np.isclose(w[np.ravel_multi_index(i, (2, 3, 2)), np.ravel_multi_index(j, (3, 2, 2))], v[0, 0])


# -- recognition --------------------------------------------------------------------------------


@pytest.mark.parametrize("d,order", CASES)
def test_recognises_modes_ranks_order_and_cores(d, order):
    modes_in, modes_out, ranks = SHAPES[d]
    model, spec = tt_model(modes_in, modes_out, ranks, order, seed=d)
    graph = compile_model(model).graph
    assert [op.kind for op in graph.ops] == ["Quantize", "TTDense", "Dequantize"]
    op = tt_op(graph)
    assert op.modes_in == modes_in and op.modes_out == modes_out
    assert op.ranks == ranks and op.order == order
    for k, core in enumerate(op.cores):
        want = codes_of(spec.cores_float[k], f32(spec.core_scales[k]), spec.core_bits, True, narrow=True)
        np.testing.assert_array_equal(core, want)
        assert op.core_qtypes[k].scale == (f32(spec.core_scales[k]),)
    assert [q.scale[0] for q in op.mid_qtypes] == [f32(s) for s in spec.mid_scales]
    assert all(isinstance(rq, (ir.Thresholds, ir.MultiplyShift)) for rq in op.mid_requant)
    assert op.source == spec.node_names["matmul_0"]


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
def test_recognises_every_bit_width(bits):
    model, spec = tt_model(*SHAPES[3], (1, 0, 2), core_bits=bits, x_bits=bits, mid_bits=bits, out_bits=bits,
                           seed=bits)  # fmt: skip
    op = tt_op(compile_model(model).graph)
    assert [q.bits for q in op.core_qtypes] == [bits] * 3
    assert [q.bits for q in op.mid_qtypes] == [bits] * 2
    lim = (1 << (bits - 1)) - 1
    assert all(np.abs(c).max() <= lim for c in op.cores)
    x = inputs(spec, 64, seed=bits)
    got = output_codes(golden.run(compile_model(model).graph, x)["y"], spec.out_scale)
    np.testing.assert_array_equal(got, reference_codes(spec, x))


def test_matrices_laid_out_differently_give_the_same_layer():
    a, _ = tt_model(*SHAPES[3], (1, 2, 0), row_variants=True)
    b, _ = tt_model(*SHAPES[3], (1, 2, 0), row_variants=False)
    oa, ob = tt_op(compile_model(a).graph), tt_op(compile_model(b).graph)
    for ca, cb in zip(oa.cores, ob.cores):
        np.testing.assert_array_equal(ca, cb)


@pytest.mark.parametrize("order", contiguous_orders(4))
def test_recognises_a_chain_that_never_restores_the_axis_order(order):
    model, spec = tt_model(*SHAPES[4], order, transpose_back=False, seed=3)
    transposes = sum(1 for n in model.graph.node if n.op_type == "Transpose")
    graph = compile_model(model).graph
    op = tt_op(graph)
    assert op.order == order and op.ranks == SHAPES[4][2] and transposes >= 1
    x = inputs(spec, 128)
    np.testing.assert_array_equal(output_codes(golden.run(graph, x)["y"], spec.out_scale), reference_codes(spec, x))


@pytest.mark.parametrize("d,order", [(2, (1, 0)), (3, (1, 2, 0)), (4, (2, 1, 3, 0)), (4, (0, 1, 2, 3))])
def test_recognises_a_chain_that_folds_the_batch_into_the_rows(tmp_path, d, order):
    model, spec = tt_model(*SHAPES[d], order, fold_batch=True, transpose_back=False, seed=6)
    folded = [t for t in model.graph.initializer if t.name.startswith("reshape_rows")]
    assert folded and all(numpy_helper.to_array(t).size == 2 for t in folded)  # (-1, K): batch folded in
    path = save(model, tmp_path)
    graph = compile_model(path).graph
    op = tt_op(graph)
    assert op.order == order and op.modes_in == SHAPES[d][0] and op.ranks == SHAPES[d][2]
    x = inputs(spec, 128)
    ours = golden.run(graph, x)["y"]
    np.testing.assert_array_equal(output_codes(ours, spec.out_scale), reference_codes(spec, x))
    assert np.abs(ours - run_qonnx_uncleaned(path, x)).max() / f32(spec.out_scale) < 1.5


def run_qonnx_uncleaned(path: str, x: np.ndarray) -> np.ndarray:
    """The qonnx executor after shape inference only: its cleanup_model turns a Reshape's leading -1
    into the batch size, which is wrong for a Reshape that folds the batch into another axis."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    from tests.reference import _patch_qonnx_ir_version

    _patch_qonnx_ir_version()
    wrapper = ModelWrapper(path)
    wrapper.set_tensor_shape("x", list(x.shape))
    wrapper.set_tensor_shape("y", [x.shape[0], wrapper.get_tensor_shape("y")[1]])
    wrapper = wrapper.transform(InferShapes())
    return np.asarray(execute_onnx(wrapper, {"x": x})["y"])


@pytest.mark.parametrize("d,order", [(2, (0, 1)), (3, (1, 0, 2)), (4, (2, 3, 1, 0))])
def test_recognises_a_qdq_chain(tmp_path, d, order):
    """The same chain with QuantizeLinear -> DequantizeLinear quantizers (8 bits), against onnxruntime."""
    model, spec = tt_model(*SHAPES[d], order, dialect="qdq", core_bits=8, x_bits=8, mid_bits=8, out_bits=8, seed=d)
    assert not any(n.domain for n in model.graph.node)
    path = save(model, tmp_path)
    graph = compile_model(path).graph
    assert [op.kind for op in graph.ops] == ["Quantize", "TTDense", "Dequantize"]
    op = tt_op(graph)
    assert op.order == order and op.ranks == SHAPES[d][2]
    x = inputs(spec, 500)
    ours = golden.run(graph, x)["y"]
    np.testing.assert_array_equal(output_codes(ours, spec.out_scale), reference_codes(spec, x))
    steps = np.abs(ours - run_reference(path, x, ort_optimize=False)) / f32(spec.out_scale)
    assert round(float(steps.max())) <= 1 and (steps < 0.5).mean() >= 0.999


def test_runtime_interpreter_parses_as_python_3_8():
    import ast
    from pathlib import Path

    ast.parse(Path(interpreter.__file__).read_text(), feature_version=(3, 8))


def test_plain_mlp_is_not_a_tt_layer():
    from tests.builders import qonnx_quant_mlp

    graph = compile_model(qonnx_quant_mlp()).graph
    assert not any(isinstance(op, ir.TTDense) for op in graph.ops)


# -- golden against the numpy integer reference (every element) and the qonnx executor ----------


@pytest.mark.parametrize("d,order", CASES)
def test_golden_equals_numpy_integer_reference(d, order):
    model, spec = tt_model(*SHAPES[d], order, seed=10 + d)
    x = inputs(spec, 256)
    got = output_codes(golden.run(compile_model(model).graph, x)["y"], spec.out_scale)
    want = reference_codes(spec, x)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(want)) > 3  # the comparison is not between constant outputs


@pytest.mark.parametrize("policy", ["thresholds", "multiply_shift"])
def test_every_requantization_policy_is_exact(policy):
    from accelgen.config import CompileConfig

    model, spec = tt_model(*SHAPES[3], (1, 0, 2), mid_bits=6, out_bits=6, seed=8)
    graph = compile_model(model, CompileConfig(requant=policy)).graph
    op = tt_op(graph)
    kind = ir.Thresholds if policy == "thresholds" else ir.MultiplyShift
    assert all(isinstance(rq, kind) for rq in (*op.mid_requant, op.requant))
    x = inputs(spec, 256)
    np.testing.assert_array_equal(output_codes(golden.run(graph, x)["y"], spec.out_scale), reference_codes(spec, x))


def test_golden_reference_signed_input_no_relu():
    model, spec = tt_model(*SHAPES[4], (2, 1, 3, 0), x_signed=True, relu=False, bias=False, core_bits=3, seed=5)
    x = inputs(spec, 256)
    got = output_codes(golden.run(compile_model(model).graph, x)["y"], spec.out_scale)
    np.testing.assert_array_equal(got, reference_codes(spec, x))


def test_output_quant_before_the_final_reshape():
    model, spec = tt_model(*SHAPES[3], (1, 2, 0), quant_before_reshape=True, seed=4)
    graph = compile_model(model).graph
    assert [op.kind for op in graph.ops] == ["Quantize", "TTDense", "Dequantize"]
    x = inputs(spec, 256)
    got = output_codes(golden.run(graph, x)["y"], spec.out_scale)
    np.testing.assert_array_equal(got, reference_codes(spec, x))


@pytest.mark.parametrize("x_signed", [False, True])
def test_extreme_inputs_stay_inside_the_derived_ranges(x_signed):
    """Inputs at the ends of the code range drive every step's sums to their extremes; the
    integer requantizers, solved on interval-arithmetic ranges, must still be exact there."""
    model, spec = tt_model(*SHAPES[3], (2, 1, 0), x_signed=x_signed, core_bits=8, x_bits=8, mid_bits=4, seed=9)
    graph = compile_model(model).graph
    n = math.prod(spec.modes_in)
    qmax = (1 << (spec.x_bits - 1)) - 1 if x_signed else (1 << spec.x_bits) - 1
    lo = -qmax - 1 if x_signed else 0
    signs = np.random.default_rng(0).integers(0, 2, (512, n))
    x = (np.where(signs, qmax, lo) * f32(spec.x_scale)).astype(np.float32)
    got = output_codes(golden.run(graph, x)["y"], spec.out_scale)
    sums: list[np.ndarray] = []
    np.testing.assert_array_equal(got, reference_codes(spec, x, sums))
    op = tt_op(graph)
    ranges = tt_step_ranges(op, graph.tensors[op.inputs[0]].qtype)
    for t, (s, (lo_t, hi_t, _)) in enumerate(zip(sums, ranges)):
        assert lo_t <= s.min() and s.max() <= hi_t, (t, s.min(), s.max(), lo_t, hi_t)


FIDELITY: list[str] = []


@pytest.mark.parametrize("d,order", CASES)
def test_golden_vs_qonnx_executor(tmp_path, d, order):
    model, spec = tt_model(*SHAPES[d], order, seed=20 + d)
    path = save(model, tmp_path)
    x = inputs(spec, 1000, seed=d)
    ours = golden.run(compile_model(path).graph, x)["y"]
    ref = run_reference(path, x)
    steps = np.abs(ours.astype(np.float64) - ref) / f32(spec.out_scale)
    identical = float((steps < 0.5).mean())
    FIDELITY.append(f"d={d} order={order}: identical {identical:.4%}, max {steps.max():.3f} steps")
    assert round(float(steps.max())) <= 1
    assert identical >= 0.999
    # every difference is the qonnx executor's float32 arithmetic: the float64 reference agrees with golden
    differ = steps >= 0.5
    if differ.any():
        np.testing.assert_array_equal(output_codes(ours, spec.out_scale)[differ], reference_codes(spec, x)[differ])


def test_tt_layer_inside_a_graph_with_a_dense_layer(tmp_path):
    model, spec = tt_model(*SHAPES[3], (1, 2, 0), dense_out=5, seed=7)
    path = save(model, tmp_path)
    graph = compile_model(path).graph
    assert [op.kind for op in graph.ops] == ["Quantize", "TTDense", "Dense", "Dequantize"]
    x = inputs(spec, 500)
    ours = golden.run(graph, x)["y"]
    # numpy reference of the whole graph: TT codes, then the dense layer's integer sum and its Quant
    tt_codes = reference_codes(spec, x)
    dq = spec.dense
    w_codes = codes_of(dq["w"], f32(dq["w_scale"]), dq["w_bits"], True, narrow=True)
    acc = tt_codes @ w_codes
    want = quant_codes(acc * (f32(spec.out_scale) * f32(dq["w_scale"])) / f32(dq["out_scale"]), 1.0, 8, True)
    np.testing.assert_array_equal(output_codes(ours, dq["out_scale"]), want)
    ref = run_reference(path, x)
    steps = np.abs(ours - ref) / f32(dq["out_scale"])
    assert round(float(steps.max())) <= 1 and (steps < 0.5).mean() >= 0.99


# -- bad chains: a clear error naming the node, exit 2 ------------------------------------------


def inspect_error(capsys, path: str) -> tuple[int, str]:
    code = main(["inspect", path])
    return code, capsys.readouterr().err


def assert_names_node(err: str, model: onnx.ModelProto) -> str:
    names = [n.name for n in model.graph.node]
    named = [n for n in names if f"node '{n}'" in err]
    assert named, err
    return named[0]


BAD_SHAPES = {3: ((2, 2, 2), (2, 2, 2), (1, 2, 2, 1)), 4: ((2, 2, 2, 2), (2, 2, 2, 2), (1, 2, 2, 2, 1))}


@pytest.mark.parametrize(
    "d,order,step",
    [(3, (0, 1, 2), 2), (3, (2, 1, 0), 2), (4, (0, 1, 2, 3), 2), (4, (1, 2, 0, 3), 3), (4, (3, 2, 1, 0), 3)],
)
def test_wrong_transpose_is_refused_naming_the_node(capsys, tmp_path, d, order, step):
    model, spec = tt_model(*BAD_SHAPES[d], order, break_step=step)
    code, err = inspect_error(capsys, save(model, tmp_path))
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("accelgen: error: ")
    assert "tensor-train" in err and "is not one" in err
    # the broken MatMul, or the final Reshape when the input index it left unsummed reaches the end
    assert f"node '{spec.node_names[f'matmul_{step}']}'" in err or (
        f"node '{spec.node_names['tail']}'" in err and "never summed" in err
    )


@pytest.mark.parametrize("d", [2, 3])
def test_output_modes_out_of_order_are_refused(capsys, tmp_path, d):
    model, spec = tt_model(*SHAPES[d], break_output=True)
    code, err = inspect_error(capsys, save(model, tmp_path))
    assert code == 2, err
    assert f"node '{spec.node_names['tail']}'" in err and "output indices" in err


def test_swapping_equal_sized_bond_and_mode_is_still_a_tt_layer(tmp_path):
    """Summing a same-sized output index of a neighbour instead of the bond is a TT layer with that
    core's axes relabelled: accepted, and the import computes exactly what the chain computes."""
    model, spec = tt_model(*SHAPES[3], (2, 1, 0), break_step=1, tail=False, mid_quant=False)
    model_q, _ = tt_model(*SHAPES[3], (2, 1, 0), break_step=1)
    path = save(model_q, tmp_path)
    graph = compile_model(path).graph
    assert any(isinstance(op, ir.TTDense) for op in graph.ops)
    x = inputs(spec, 300)
    steps = np.abs(golden.run(graph, x)["y"] - run_reference(path, x)) / f32(spec.out_scale)
    assert round(float(steps.max())) <= 1 and (steps < 0.5).mean() >= 0.99


def _init(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def test_modes_that_do_not_multiply_to_the_dimension(capsys, tmp_path):
    model, spec = tt_model(*SHAPES[3], (2, 1, 0))
    head = next(n for n in model.graph.node if n.name == spec.node_names["head"])
    _init(model, head.input[1]).CopyFrom(numpy_helper.from_array(np.array([-1, 2, 3, 5], np.int64), head.input[1]))
    code, err = inspect_error(capsys, save(model, tmp_path))
    assert code == 2, err
    assert f"node '{spec.node_names['head']}'" in err and "24" in err


def test_rank_zero_core_is_refused(capsys, tmp_path):
    model, spec = tt_model(*SHAPES[2], (1, 0))
    mm = next(n for n in model.graph.node if n.name == spec.node_names["matmul_0"])
    quant = next(n for n in model.graph.node if n.output[0] == mm.input[1])
    core = _init(model, quant.input[0])
    k = numpy_helper.to_array(core).shape[0]
    core.CopyFrom(numpy_helper.from_array(np.zeros((k, 0), np.float32), core.name))
    code, err = inspect_error(capsys, save(model, tmp_path))
    assert code == 2, err
    assert f"node '{spec.node_names['matmul_0']}'" in err and "empty" in err and "rank or mode of 0" in err


def test_unquantized_state_between_steps_is_refused(capsys, tmp_path):
    model, spec = tt_model(*SHAPES[3], (0, 1, 2))
    g = model.graph
    q = next(n for n in g.node if n.name == spec.node_names["quant_mid0"])
    for n in g.node:  # bypass the intermediate quantizer
        for i, name in enumerate(n.input):
            if name == q.output[0]:
                n.input[i] = q.input[0]
    g.node.remove(q)
    code, err = inspect_error(capsys, save(model, tmp_path))
    assert code == 2, err
    assert f"node '{spec.node_names['matmul_0']}'" in err and "not quantized" in err


def _core_quant(model: onnx.ModelProto, spec, step: int) -> onnx.NodeProto:
    mm = next(n for n in model.graph.node if n.name == spec.node_names[f"matmul_{step}"])
    return next(n for n in model.graph.node if n.output[0] == mm.input[1])


def test_per_channel_core_is_refused(capsys, tmp_path):
    model, spec = tt_model(*SHAPES[2], (1, 0))
    q = _core_quant(model, spec, 0)
    cols = numpy_helper.to_array(_init(model, q.input[0])).shape[1]
    scale = np.linspace(0.1, 0.2, cols).astype(np.float32).reshape(1, cols)
    _init(model, q.input[1]).CopyFrom(numpy_helper.from_array(scale, q.input[1]))
    code, err = inspect_error(capsys, save(model, tmp_path))
    assert code == 2, err
    assert f"node '{spec.node_names['matmul_0']}'" in err and "per channel" in err


def test_unquantized_core_is_refused(capsys, tmp_path):
    model, spec = tt_model(*SHAPES[3], (0, 1, 2))
    q = _core_quant(model, spec, 1)
    for n in model.graph.node:
        n.input[:] = [q.input[0] if i == q.output[0] else i for i in n.input]
    model.graph.node.remove(q)
    code, err = inspect_error(capsys, save(model, tmp_path))
    assert code == 2, err
    assert f"node '{spec.node_names['matmul_1']}'" in err and "not quantized" in err


def test_intermediate_zero_point_is_refused(capsys, tmp_path):
    model, spec = tt_model(*SHAPES[3], (2, 1, 0))
    q = next(n for n in model.graph.node if n.name == spec.node_names["quant_mid1"])
    _init(model, q.input[2]).CopyFrom(numpy_helper.from_array(np.float32(3), q.input[2]))
    code, err = inspect_error(capsys, save(model, tmp_path))
    assert code == 2, err
    assert f"node '{spec.node_names['quant_mid1']}'" in err and "zero point 0" in err


# -- IR verification ------------------------------------------------------------------------------


def _graph_with(graph: ir.Graph, **changes) -> ir.Graph:
    op = tt_op(graph)
    return graph.copy(ops=[op.replace(**changes) if o is op else o for o in graph.ops])


@pytest.fixture(scope="module")
def tt_graph() -> ir.Graph:
    return compile_model(tt_model(*SHAPES[3], (1, 0, 2))[0]).graph


def test_verify_accepts_the_imported_layer(tt_graph):
    ir.verify(tt_graph, lowered=True)


@pytest.mark.parametrize(
    "change,needle",
    [
        (lambda op: {"order": (0, 2, 1)}, "order"),
        (lambda op: {"order": (0, 1, 1)}, "order"),
        (lambda op: {"ranks": (2, *op.ranks[1:])}, "start and end with 1"),
        (lambda op: {"ranks": (*op.ranks[:2], 0, 1)}, "< 1"),
        (lambda op: {"modes_in": (2, 3, 5)}, "features"),
        (lambda op: {"cores": (op.cores[0][:, :, :1], *op.cores[1:])}, "core 0 has shape"),
        (lambda op: {"cores": (op.cores[0].astype(np.float64), *op.cores[1:])}, "not integer"),
        (lambda op: {"cores": (op.cores[0] * 100, *op.cores[1:])}, "outside"),
        (lambda op: {"mid_qtypes": op.mid_qtypes[:1]}, "intermediate QTypes"),
        (lambda op: {"mid_requant": op.mid_requant[:1]}, "requantizers"),
        (lambda op: {"mid_qtypes": (dataclasses.replace(op.mid_qtypes[0], zero_point=(3,)), op.mid_qtypes[1])},
         "zero point 0"),
    ],
)  # fmt: skip
def test_verify_rejects_inconsistent_ttdense(tt_graph, change, needle):
    bad = _graph_with(tt_graph, **change(tt_op(tt_graph)))
    with pytest.raises(InternalError, match=needle):
        ir.verify(bad)


def test_verify_lowered_rejects_float_intermediate_requant(tt_graph):
    op = tt_op(tt_graph)
    q = op.mid_qtypes[0]
    bad = _graph_with(tt_graph, mid_requant=(ir.FloatRequant((), q), op.mid_requant[1]))
    ir.verify(bad)
    with pytest.raises(InternalError, match="float"):
        ir.verify(bad, lowered=True)


# -- program serialisation and inspect --------------------------------------------------------------


def test_program_round_trip(tmp_path, tt_graph):
    data, arrays = tt_graph.to_program()
    save_program(data, arrays, tmp_path / "program.json")
    json.loads((tmp_path / "program.json").read_text())
    program = load_program(tmp_path / "program.json")
    (loaded,) = [op for op in program.ops if op.kind == "TTDense"]
    op = tt_op(tt_graph)
    assert list(loaded.order) == list(op.order) and list(loaded.ranks) == list(op.ranks)
    for a, b in zip(loaded.cores, op.cores):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(2).uniform(0, 1, (64, 24)).astype(np.float32)
    want = golden.run(tt_graph, x)
    got = interpreter.run(program, x)
    np.testing.assert_array_equal(got["y"], want["y"])


def test_inspect_shows_the_tt_layer(capsys, tmp_path):
    model, spec = tt_model(*SHAPES[4], (1, 2, 0, 3), dense_out=4)
    assert main(["inspect", save(model, tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    (row,) = [r for r in info["layers"] if r["op"] == "TTDense"]
    tt = row["tt"]
    assert tt["modes_in"] == [2, 3, 2, 2] and tt["modes_out"] == [3, 2, 2, 1]
    assert tt["ranks"] == [1, 2, 3, 2, 1] and tt["order"] == [1, 2, 0, 3]
    params = sum(spec.ranks[k] * spec.modes_in[k] * spec.modes_out[k] * spec.ranks[k + 1] for k in range(4))
    assert tt["params"] == params and tt["dense_params"] == 24 * 12
    assert row["weight_bytes"] == math.ceil(params * spec.core_bits / 8)
    # MACs per step, counted by hand for order (1, 2, 0, 3): state size after the step times the summed size
    # core 1: state m0 m2 m3 r1 n1 r2 = 2*2*2*2*2*3, sums m1 = 3; core 2: m0 m3 r1 n1 n2 r3 = 2*2*2*2*2*2, sums
    # r2 m2 = 3*2; core 0: m3 r0 n0 n1 n2 r3 = 2*1*3*2*2*2, sums m0 r1 = 2*2; core 3: n0..n3 = 12, sums r3 m3 = 2*2
    assert tt["step_macs"] == [96 * 3, 64 * 6, 48 * 4, 12 * 4]
    assert main(["inspect", save(model, tmp_path, "b.onnx")]) == 0
    out = capsys.readouterr().out
    assert "tensor-train layer" in out and "ranks 1-2-3-2-1" in out and "order (1, 2, 0, 3)" in out


def test_fidelity_figures():
    """Print the figures of the qonnx comparison (pytest -s)."""
    for line in FIDELITY:
        print(line)
