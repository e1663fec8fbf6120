"""The standalone runtime: same results as the compiler's golden model, without the compiler."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from accelgen import golden
from accelgen.pipeline import compile_model
from accelgen.runtime import load_program, run, save_program
from tests.data import as_images, digits_split

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "models"
MANIFEST = json.loads((MODELS / "manifest.json").read_text())["models"]
RUNTIME = ROOT / "accelgen" / "runtime"


def _inputs(entry):
    _, _, x, _ = digits_split()
    return as_images(x[:100]) if entry["input_layout"] == "image" else x[:100]


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["file"])
def test_saved_program_runs_identically(entry, tmp_path):
    graph = compile_model(MODELS / entry["file"]).graph
    data, arrays = graph.to_program()
    save_program(data, arrays, tmp_path / "program.json")
    program = load_program(tmp_path / "program.json")
    x = _inputs(entry)
    want = golden.run(graph, x)
    got = run(program, x)
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == want[name].dtype
        assert np.array_equal(got[name], want[name])


def test_runtime_imports_nothing_from_the_compiler(tmp_path):
    """A copy of the runtime package runs a program in a process where onnx and the
    compiler cannot be imported (as on a board with only numpy)."""
    graph = compile_model(MODELS / "qop_cnn_perchannel_residual.onnx").graph
    data, arrays = graph.to_program()
    save_program(data, arrays, tmp_path / "program.json")
    x = as_images(digits_split()[2][:20])
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", next(iter(golden.run(graph, x).values())))
    driver = tmp_path / "driver"
    driver.mkdir()
    (driver / "accelgen_runtime").mkdir()
    for src in RUNTIME.glob("*.py"):
        (driver / "accelgen_runtime" / src.name).write_text(src.read_text())
    script = textwrap.dedent(
        f"""
        import sys
        class Forbid:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("onnx", "onnxruntime", "accelgen", "jinja2", "rich"):
                    raise ImportError("forbidden on the board: " + name)
        sys.meta_path.insert(0, Forbid())
        sys.path.insert(0, {str(driver)!r})
        import numpy as np
        import accelgen_runtime as rt
        program = rt.load_program({str(tmp_path / "program.json")!r})
        out = rt.run(program, np.load({str(tmp_path / "x.npy")!r}))
        assert np.array_equal(next(iter(out.values())), np.load({str(tmp_path / "want.npy")!r}))
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize("path", sorted(RUNTIME.glob("*.py")), ids=lambda p: p.name)
def test_runtime_is_python38_syntax_with_relative_imports(path):
    src = path.read_text()
    tree = ast.parse(src, feature_version=(3, 8))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            assert node.module.split(".")[0] in ("__future__", "numpy", "pynq", "json", "pathlib", "typing",
                                                 "ctypes", "time", "os", "hashlib", "dataclasses"), node.module  # fmt: skip
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in ("accelgen", "onnx", "onnxruntime"), alias.name
    assert "from __future__ import annotations" in src or "annotations" not in src


def test_program_version_is_checked(tmp_path):
    graph = compile_model(MODELS / "qdq_mlp_pertensor.onnx").graph
    data, arrays = graph.to_program()
    data["version"] = 999
    save_program(data, arrays, tmp_path / "program.json")
    with pytest.raises(ValueError, match="rebuild it"):
        load_program(tmp_path / "program.json")


@pytest.mark.parametrize("file", ["qonnx_cnn_w4a8.onnx", "qdq_mlp_pertensor.onnx", "qonnx_mlp_w2a2.onnx"])
def test_accelerator_golden_backend_splits_host_and_hardware(file, tmp_path):
    from accelgen.runtime.accelerator import Accelerator

    graph = compile_model(MODELS / file).graph
    data, arrays = graph.to_program()
    save_program(data, arrays, tmp_path / "program.json")
    entry = next(e for e in MANIFEST if e["file"] == file)
    x = _inputs(entry)
    with Accelerator(tmp_path, backend="golden") as acc:
        out = acc.run(x)
        part = acc.partition
        assert part.prologue[0].kind in ("Quantize", "Transpose") and part.hardware
        assert all(op.kind not in ("Quantize", "Softmax") for op in part.hardware)
        assert len(part.hw_inputs) == 1 and len(part.hw_outputs) == 1
        assert acc.stats.summary()["samples"] == len(x)
    assert np.array_equal(out, next(iter(golden.run(graph, x).values())))
    with pytest.raises(RuntimeError, match="closed"):
        acc.run(x)
