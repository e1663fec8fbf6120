"""OUTDIR/driver: standalone runtime copy, metadata, vectors, and a notebook that runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accelgen.package import interface, package_driver, percent_to_ipynb
from accelgen.pipeline import compile_model
from tests.data import as_images, digits_split

MODELS = Path(__file__).parent / "models"
CONTEXT = dict(model_file="m.onnx", board="ultra96v2", board_title="Ultra96-V2", clock_mhz=150.0, title="digits",
               dialect="qonnx", ii_cycles=100, fps=1.5e6, latency_us=3.2, reference_accuracy=0.9889)  # fmt: skip


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    graph = compile_model(MODELS / "qonnx_cnn_w4a8.onnx").graph
    _, _, x, y = digits_split()
    package_driver(graph, out, context=CONTEXT, hardware={"ip": "top"}, vectors=as_images(x[:60]), labels=y[:60],
                   backend="golden")  # fmt: skip
    return out / "driver"


def test_interface_names_hardware_tensors():
    graph = compile_model(MODELS / "qonnx_cnn_w4a8.onnx").graph
    io = interface(graph)
    assert [i["shape"] for i in io["inputs"]] == [[8, 8, 1]]  # NHWC codes, 8-bit signed
    assert io["inputs"][0]["bits"] == 8 and io["inputs"][0]["signed"]
    assert io["outputs"][0]["kind"] == "acc" and io["outputs"][0]["shape"] == [10]
    assert io["host_prologue"] == ["Transpose", "Quantize"] and io["host_epilogue"] == ["Affine"]


def test_driver_runs_standalone(driver, tmp_path):
    meta = json.loads((driver / "accel.json").read_text())
    assert meta["board"] == "ultra96v2" and meta["hardware"] == {"ip": "top"}
    proc = subprocess.run([sys.executable, "run_accelerator.py", "--input", "vectors/x.npy", "--output",
                           str(tmp_path / "y.npy"), "--backend", "golden"], cwd=driver, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), np.load(driver / "vectors" / "expected.npy"))


def test_notebook_executes_and_reports(driver):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(driver / "notebook.ipynb", as_version=4)
    nbformat.validate(nb)
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(driver)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "identical to the golden model on every element: True" in text
    want = (np.load(driver / "vectors" / "expected.npy").argmax(1) == np.load(driver / "vectors" / "labels.npy")).mean()
    assert f"accuracy {want:.4f}" in text
    assert "median" in text and "us per call" in text
    assert any(o.get("output_type") == "display_data" for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_percent_format_cells():
    nb = percent_to_ipynb("# %% [markdown]\n# # Title\n# text\n\n# %%\nx = 1\nprint(x)\n")
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown", "code"]
    assert nb["cells"][0]["source"] == ["# Title\n", "text"]
    assert nb["cells"][1]["source"] == ["x = 1\n", "print(x)"]
