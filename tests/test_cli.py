"""`accelgen inspect` and `accelgen run` on the fixture models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from accelgen import golden
from accelgen.cli import main
from accelgen.pipeline import compile_model
from tests.data import as_images, digits_split
from tests.reference import run_reference

MODELS = Path(__file__).parent / "models"


def inspect_json(capsys, file: str) -> dict:
    assert main(["inspect", str(MODELS / file), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_inspect_mlp_counts(capsys):
    info = inspect_json(capsys, "qonnx_mlp_w4a4.onnx")
    assert info["dialect"] == "qonnx"
    dense = [r for r in info["layers"] if r["op"] == "Dense"]
    # 64-64-32-10 with 4-bit weights, written out by hand
    assert [r["macs"] for r in dense] == [64 * 64, 64 * 32, 32 * 10]
    assert [r["weight_bytes"] for r in dense] == [64 * 64 // 2, 64 * 32 // 2, 32 * 10 // 2]
    assert all(r["w_bits"] == 4 for r in dense)
    assert [r["a_bits"] for r in dense] == [8, 4, 4]  # 8-bit input QuantIdentity, 4-bit QuantReLU
    assert info["totals"]["macs"] == 64 * 64 + 64 * 32 + 32 * 10
    assert any("Quantize" in h for h in info["host"]["prologue"])
    assert info["host"]["epilogue"], "the float bias of the last layer runs on the host"


def test_inspect_cnn_macs_from_onnx_shapes(capsys):
    """MACs of every conv/dense layer against ONNX's own shape inference of the QDQ model."""
    file = "qdq_cnn_perchannel_residual.onnx"
    model = shape_inference.infer_shapes(onnx.load(str(MODELS / file)))
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.value_info}
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    expected = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        w_name = producers[node.input[1]].input[0]  # DequantizeLinear(int8 weights)
        w = inits[w_name]
        out = shapes[node.output[0]]
        expected.append(int(np.prod(out[2:])) * w.size if node.op_type == "Conv" else w.size)
    info = inspect_json(capsys, file)
    got = [r["macs"] for r in info["layers"] if r["op"] in ("Conv", "Dense")]
    assert got == expected
    assert {r["op"] for r in info["layers"]} >= {"Conv", "Add", "AvgPool", "MaxPool", "Dense"}


def test_inspect_table_names_dialect_and_host_tail(capsys):
    assert main(["inspect", str(MODELS / "qdq_mlp_pertensor.onnx")]) == 0
    out = capsys.readouterr().out
    assert "qdq dialect" in out
    assert "Softmax" in out.split("host epilogue:")[1]
    assert "total" in out


def test_inspect_writes_ir_json(capsys, tmp_path):
    path = tmp_path / "ir.json"
    assert main(["inspect", str(MODELS / "qonnx_cnn_w4a8.onnx"), "--ir", str(path)]) == 0
    data = json.loads(path.read_text())
    kinds = [op["type"] for op in data["ops"]]
    assert "Conv" in kinds and "Dense" in kinds
    conv = next(op for op in data["ops"] if op["type"] == "Conv")
    assert conv["requant"]["kind"] in ("thresholds", "multiply_shift")
    assert np.asarray(conv["weights"]).dtype.kind == "i"


def test_run_golden_float_in_float_out(capsys, tmp_path):
    file = MODELS / "qop_cnn_perchannel_residual.onnx"
    _, _, x, y = digits_split()
    x = as_images(x)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(file), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    out = np.load(tmp_path / "y.npy")
    assert out.shape == (len(x), 10) and out.dtype == np.float32
    ref = run_reference(file, x)
    assert np.array_equal(out.argmax(1), ref.argmax(1))
    assert (out.argmax(1) == y).mean() > 0.95
    # the CLI and the Python API agree
    api = golden.run(compile_model(file).graph, x)
    assert np.array_equal(next(iter(api.values())), out)


def test_run_rejects_other_backends_for_model_files(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 64), np.float32))
    code = main(["run", str(MODELS / "qdq_mlp_pertensor.onnx"), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy"), "--backend", "csim"])  # fmt: skip
    assert code == 2
    assert "--backend csim" in capsys.readouterr().err


def test_a_budget_too_small_is_named_as_the_problem(capsys):
    """--max-util 0.001: the board has room, the budget has not; the suggested budget works."""
    model = str(Path(__file__).parent.parent / "examples" / "digits_cnn_w4a8.onnx")
    assert main(["dse", model, "--board", "ultra96", "--max-util", "0.001"]) == 3
    err = capsys.readouterr().err
    assert "does not fit the budget of --max-util 0.001 on Ultra96-V2" in err
    assert "none of the known ones" not in err and "a larger board" not in err
    suggested = re.search(r"it fits at --max-util ([\d.]+) \(now 0\.001\)", err)
    assert suggested, err
    assert main(["dse", model, "--board", "ultra96", "--max-util", suggested.group(1), "--json"]) == 0
    capsys.readouterr()


def test_a_text_file_as_input_is_called_what_it_is_not(capsys, tmp_path):
    (tmp_path / "x.txt").write_text("0.1 0.2 0.3\n")
    code = main(["run", str(MODELS / "qdq_mlp_pertensor.onnx"), "--input", str(tmp_path / "x.txt"),
                 "--output", str(tmp_path / "y.npy")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "pickle" not in err
    assert "x.txt' is not a .npy array of floats" in err and "numpy.save" in err
