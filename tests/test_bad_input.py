"""Bad input: exit code 2, one clear message naming what is wrong, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from accelgen.cli import main
from accelgen.errors import InputError
from accelgen.pipeline import compile_model
from tests.builders import float_input, init, make_model, qdq_mlp, qonnx_quant_mlp, save
from tests.mutants import CASES, load

MODELS = Path(__file__).parent / "models"


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def assert_clean_error(code: int, err: str, *needles: str, exit_code: int = 2) -> None:
    assert code == exit_code, err
    assert "Traceback" not in err
    assert err.startswith("accelgen: error: ")
    for needle in needles:
        assert needle in err, f"{needle!r} not in: {err}"


def test_missing_file(capsys, tmp_path):
    code, err = run_cli(capsys, "inspect", str(tmp_path / "nope.onnx"))
    assert_clean_error(code, err, "nope.onnx", "no such file")


def test_directory_is_not_a_model(capsys, tmp_path):
    code, err = run_cli(capsys, "inspect", str(tmp_path))
    assert_clean_error(code, err, "is not a file")


def test_not_onnx(capsys, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("this is not a protobuf\n" * 10)
    code, err = run_cli(capsys, "inspect", str(path))
    assert_clean_error(code, err, "not a valid ONNX model")


def test_empty_file(capsys, tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    code, err = run_cli(capsys, "inspect", str(path))
    assert_clean_error(code, err, "empty")


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_protobuf(capsys, tmp_path, fraction):
    data = (MODELS / "qdq_mlp_pertensor.onnx").read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    code, err = run_cli(capsys, "inspect", str(path))
    assert_clean_error(code, err, "truncated.onnx")


def test_float_model_points_to_exporters(capsys, tmp_path):
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)]
    model = make_model(nodes, [float_input("x", ("batch", 4))], [float_input("y", ("batch", 3))],
                       [init("w", rng.normal(size=(3, 4)).astype(np.float32))])  # fmt: skip
    code, err = run_cli(capsys, "inspect", save(model, tmp_path / "float.onnx"))
    assert_clean_error(code, err, "no quantization", "Brevitas", "quantize_static")


def test_every_unsupported_node_listed_at_once(capsys, tmp_path):
    model = qdq_mlp()
    g = model.graph
    g.node.append(helper.make_node("Erf", ["y"], ["e"], name="my_erf"))
    g.node.append(helper.make_node("LRN", ["e"], ["l"], name="my_lrn", size=3))
    g.node.append(helper.make_node("TopK", ["l", "k"], ["v", "i"], name="my_topk"))
    g.initializer.append(init("k", np.array([1], dtype=np.int64)))
    code, err = run_cli(capsys, "inspect", save(model, tmp_path / "unsupported.onnx"))
    assert_clean_error(code, err, "3 unsupported node(s)", "'my_erf': op Erf", "'my_lrn': op LRN", "'my_topk': op TopK")


def test_dynamic_non_batch_dimension(capsys, tmp_path):
    model = qdq_mlp(x_dims=("batch", "features"))
    code, err = run_cli(capsys, "inspect", save(model, tmp_path / "dyn.onnx"))
    assert_clean_error(code, err, "graph input 'x'", "dynamic dimension 1", "features")


def test_symbolic_batch_is_fine(capsys, tmp_path):
    code = main(["inspect", save(qdq_mlp(x_dims=("N", 16)), tmp_path / "ok.onnx")])
    assert code == 0


def test_missing_input_shape(capsys, tmp_path):
    model = qdq_mlp()
    model.graph.input[0].type.tensor_type.ClearField("shape")
    code, err = run_cli(capsys, "inspect", save(model, tmp_path / "noshape.onnx"))
    assert_clean_error(code, err, "graph input 'x' has no shape")


@pytest.mark.parametrize("which,bits", [("activation", 12.0), ("weight", 9.0)])
def test_bit_width_over_8(capsys, tmp_path, which, bits):
    model = qonnx_quant_mlp(act_bits=bits) if which == "activation" else qonnx_quant_mlp(w_bits=bits)
    code, err = run_cli(capsys, "inspect", save(model, tmp_path / "wide.onnx"))
    assert_clean_error(code, err, f"bit width {int(bits)} exceeds 8")


def test_int16_qdq_activation(capsys, tmp_path):
    model = qdq_mlp(bits_dtype=np.int16)
    code, err = run_cli(capsys, "inspect", save(model, tmp_path / "i16.onnx"))
    assert_clean_error(code, err, "q_in", "tensor(int16)")  # int16 codes are valid ONNX from opset 21 on
    model.opset_import[0].version = 21
    code, err = run_cli(capsys, "inspect", save(model, tmp_path / "i16.onnx"))
    assert_clean_error(code, err, "'q_in'", "exceeds 8")


@pytest.mark.parametrize("scale", [0.0, -0.5, float("nan"), float("inf")])
def test_bad_scales(capsys, tmp_path, scale):
    code, err = run_cli(capsys, "inspect", save(qdq_mlp(scale=scale), tmp_path / "scale.onnx"))
    assert_clean_error(code, err, "'q_in'", "'s'", "must be finite")


@pytest.mark.parametrize("scale", [0.0, float("nan")])
def test_bad_scales_qonnx(capsys, tmp_path, scale):
    code, err = run_cli(capsys, "inspect", save(qonnx_quant_mlp(scale=scale), tmp_path / "scale.onnx"))
    assert_clean_error(code, err, "quant_in", "'s'", "must be finite")


def test_run_rejects_wrong_input_shape_and_nan(capsys, tmp_path):
    model = save(qdq_mlp(), tmp_path / "m.onnx")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 15), np.float32))
    code, err = run_cli(capsys, "run", model, "--input", str(bad), "--output", str(tmp_path / "y.npy"))
    assert_clean_error(code, err, "input 'x' has shape (2, 15)", "(batch, 16)")
    nan = np.zeros((2, 16), np.float32)
    nan[1, 3] = np.nan
    np.save(bad, nan)
    code, err = run_cli(capsys, "run", model, "--input", str(bad), "--output", str(tmp_path / "y.npy"))
    assert_clean_error(code, err, "NaN")
    assert not (tmp_path / "y.npy").exists()


def test_run_rejects_non_npy_input(capsys, tmp_path):
    model = save(qdq_mlp(), tmp_path / "m.onnx")
    bad = tmp_path / "x.npy"
    bad.write_text("not numpy")
    code, err = run_cli(capsys, "run", model, "--input", str(bad), "--output", str(tmp_path / "y.npy"))
    assert_clean_error(code, err, "is not a .npy array")


def test_console_entry_point_exit_code_and_no_traceback(tmp_path):
    """The real process: exit status 2 and a single error line on stderr."""
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\x08\x07\x12\xff\xff")
    proc = subprocess.run([sys.executable, "-m", "accelgen", "inspect", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("accelgen: error:") == 1


# -- issue 10: every class of invalid or malformed model, from `inspect` and from `build` ----------


@pytest.mark.parametrize("name", sorted(CASES))
def test_invalid_model_is_rejected_naming_the_culprit(capsys, tmp_path, name):
    """inspect and build agree: exit 2, one message naming the tensor or node, no OUTDIR."""
    case = CASES[name]
    model = load(case.fixture)
    culprit = case.mutate(model)
    path = save(model, tmp_path / f"{name}.onnx")
    out = tmp_path / "out"
    for argv in (["inspect", path], ["build", path, "-b", "ultra96", "--no-csim", "--synth", "off", "-o", str(out)]):
        code, err = run_cli(capsys, *argv)
        assert_clean_error(code, err, case.named or culprit)
    assert not out.exists()


@pytest.mark.parametrize("fixture", sorted({c.fixture for c in CASES.values()}))
def test_unmutated_fixtures_pass_the_checker(capsys, fixture):
    """The control of the cases above: each fixture they start from is accepted."""
    assert main(["inspect", str(MODELS / fixture), "--json"]) == 0


def test_checker_runs_on_models_held_in_memory():
    model = load("qonnx_mlp_w4a4.onnx")
    CASES["nan_weight"].mutate(model)
    with pytest.raises(InputError, match="'fc1.weight' .*non-finite"):
        compile_model(model)


def test_external_data_next_to_the_model_is_read(capsys, tmp_path):
    import onnx

    model = load("qonnx_mlp_w4a4.onnx")
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.weights", size_threshold=0)  # fmt: skip
    assert (tmp_path / "ext.weights").stat().st_size > 10_000
    assert main(["inspect", str(path), "--json"]) == 0
    external = capsys.readouterr().out
    assert main(["inspect", str(MODELS / "qonnx_mlp_w4a4.onnx"), "--json"]) == 0
    assert external.replace("ext", "qonnx_mlp_w4a4") == capsys.readouterr().out
    # the same data file, but truncated: the declared length runs past its end
    (tmp_path / "ext.weights").write_bytes((tmp_path / "ext.weights").read_bytes()[:100])
    code, err = run_cli(capsys, "inspect", str(path))
    assert_clean_error(code, err, "ext.weights", "outside the file")
