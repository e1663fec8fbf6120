"""OUTDIR/driver: standalone runtime copy, metadata, vectors, and a notebook that runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accelgen.package import interface, package_driver, percent_to_ipynb
from accelgen.pipeline import compile_model
from accelgen.runtime.accelerator import CallStats
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


def _driver_script(driver, tmp_path, *args, pythonpath=None):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "run_accelerator.py", *args], cwd=driver, env=env, capture_output=True,
                          text=True)  # fmt: skip


def test_driver_without_pynq_says_so_without_a_traceback(driver, tmp_path):
    blocked = tmp_path / "site"  # a pynq that cannot be imported, whatever this machine has
    (blocked / "pynq").mkdir(parents=True)
    (blocked / "pynq" / "__init__.py").write_text("raise ImportError('no PYNQ here')\n")
    proc = _driver_script(driver, tmp_path, "--input", "vectors/x.npy", "--output", str(tmp_path / "y.npy"),
                          "--backend", "pynq", pythonpath=blocked)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "pynq is not installed" in proc.stderr and "--backend golden" in proc.stderr
    assert not (tmp_path / "y.npy").exists()


def test_driver_bad_input_file_is_a_message(driver, tmp_path):
    (tmp_path / "x.txt").write_text("1 2 3\n")
    proc = _driver_script(driver, tmp_path, "--input", str(tmp_path / "x.txt"), "--output", str(tmp_path / "y.npy"),
                          "--backend", "golden")  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot read it as a .npy array" in proc.stderr


def test_driver_prints_its_statistics_readably(driver, tmp_path):
    proc = _driver_script(driver, tmp_path, "--input", "vectors/x.npy", "--output", str(tmp_path / "y.npy"),
                          "--backend", "golden")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "{" not in proc.stdout
    assert re.search(r"on golden: 1 call, 60 samples: [\d.]+ (ms|us) per call \(p50 .*\), [\d,]+ samples/s$",
                     proc.stdout, re.M), proc.stdout  # fmt: skip


def test_call_stats_described_for_people():
    stats = CallStats()
    assert stats.describe() == "no calls yet"
    stats.add(10, 0.001, 0.002, 0.001)  # 4 ms for 10 samples: 2,500 samples/s
    assert stats.describe() == (
        "1 call, 10 samples: 4.00 ms per call (p50 4.00 ms, p99 4.00 ms; hardware 2.00 ms), 2,500 samples/s"
    )
    stats.add(30, 0.0, 0.0004, 0.0)  # 0.4 ms: 40 samples in 4.4 ms
    assert stats.describe().startswith("2 calls, 40 samples: 2.20 ms per call")
    assert stats.describe().endswith(f"{40 / 0.0044:,.0f} samples/s")
