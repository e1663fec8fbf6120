"""Whole-model C simulation: every fixture model, the full digits test split, every layer.

Each fixture model is compiled, generated into an HLS project with the 450 test samples
as golden vectors, built with g++ (two builds at a time, cached by content hash) and run
through its C testbench, which compares every layer's output and the AXI-Stream outputs
with the golden model element by element. The hardware outputs then go through the host
epilogue and must give the golden model's float outputs exactly; the hardware-emulated
accuracy is printed beside the reference executor's.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from accelgen import golden
from accelgen.cli import main
from accelgen.codegen import generate
from accelgen.csim import Emulator, build, host_epilogue, read_design, run_csim
from accelgen.pipeline import compile_model
from tests.conftest import FIGURES
from tests.data import as_images, digits_split

pytestmark = pytest.mark.csim

MODELS = Path(__file__).parent / "models"
MANIFEST = {m["file"]: m for m in json.loads((MODELS / "manifest.json").read_text())["models"]}
BUILD_WORKERS = 2


def digits_inputs(file: str) -> tuple[np.ndarray, np.ndarray]:
    _, _, x, y = digits_split()
    return (as_images(x) if MANIFEST[file]["input_layout"] == "image" else x), y


BUILD_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="module")
def designs(tmp_path_factory) -> dict[str, tuple[Path, object]]:
    root = tmp_path_factory.mktemp("csim_models")
    out = {}
    for file in sorted(MANIFEST):
        compiled = compile_model(MODELS / file)
        x, _ = digits_inputs(file)
        out[file] = (generate(compiled, None, root / Path(file).stem, vectors=(x,)), compiled.graph)
    with ThreadPoolExecutor(BUILD_WORKERS) as pool:
        builds = list(pool.map(lambda d: build(d[0]), out.values()))
    BUILD_SECONDS.update({file: b.seconds for file, b in zip(out, builds)})
    return out


@pytest.mark.parametrize("file", sorted(MANIFEST))
def test_model_csim_matches_golden_on_the_test_split(designs, file):
    outdir, graph = designs[file]
    x, y = digits_inputs(file)
    result = run_csim(outdir, keep_outputs=True)
    assert result["passed"], result.get("first_mismatch") or result.get("error")
    assert result["vectors"] == len(x) == 450
    assert result["mismatches"] == 0 and result["stream_warnings"] == 0
    layers = [r for r in result["layers"] if r["kind"] == "layer"]
    assert len(layers) == len(read_design(outdir)["layers"]) and all(r["mismatches"] == 0 for r in layers)

    hw = host_epilogue(outdir, result["outputs"])
    ref = golden.run(graph, x)
    for name in ref:
        np.testing.assert_array_equal(hw[name], ref[name])  # identical codes -> identical floats
    scores = next(iter(hw.values()))
    accuracy = float((scores.argmax(axis=1) == y).mean())
    golden_accuracy = float((next(iter(ref.values())).argmax(axis=1) == y).mean())
    reference = MANIFEST[file]["reference_accuracy"]
    elements = sum(r["elements"] for r in layers)
    FIGURES.append(
        f"{file:36s} C-sim == golden on {result['vectors']} samples, {len(layers)} layers, {elements:,} layer "
        f"elements, 0 mismatches; accuracy hardware-emulated {accuracy:.4f} golden {golden_accuracy:.4f} "
        f"reference {reference:.4f} (g++ {BUILD_SECONDS.get(file, 0):.1f}s, testbench {result['run_s']:.2f}s)"
    )
    assert accuracy == golden_accuracy
    assert abs(accuracy - reference) < 1e-3


@pytest.mark.parametrize("file", ["qonnx_mlp_w1a1.onnx", "qonnx_cnn_w4a8.onnx", "qop_cnn_perchannel_residual.onnx"])
def test_emulator_float_path_equals_golden(designs, file):
    outdir, graph = designs[file]
    x, _ = digits_inputs(file)
    emu = Emulator(outdir)
    got = emu.run_float(x)
    np.testing.assert_array_equal(got, next(iter(golden.run(graph, x).values())))
    layers = emu.run_layers(emu_inputs(graph, x))
    env = golden.run(graph, x, keep=True)
    for layer in read_design(outdir)["layers"]:
        np.testing.assert_array_equal(layers[layer["name"]], env[layer["tensor"]], err_msg=layer["name"])


def emu_inputs(graph, x) -> dict[str, np.ndarray]:
    """The hardware's input codes: the golden model's value of each hardware input tensor."""
    from accelgen.runtime.accelerator import Partition

    env = golden.run(graph, x, keep=True)
    return {t: env[t] for t in Partition(graph).hw_inputs}


def test_testbench_names_the_first_mismatch(designs, tmp_path):
    """A deliberately corrupted expected vector: the testbench names layer, index, expected, got."""
    src, _ = designs["qdq_cnn_perchannel_residual.onnx"]
    outdir = tmp_path / "corrupted"
    shutil.copytree(src, outdir)
    meta = read_design(outdir)
    layer = meta["layers"][2]  # the second convolution
    path = outdir / "hls" / layer["vector"]
    values = np.fromfile(path, dtype=f"<i{layer['vector_bytes']}")
    sample, index = 3, 37  # (h, w, c) = (0, 2, 5) of a 4x4x16 map
    flat = sample * layer["elements"] + index
    original = int(values[flat])
    values[flat] = original + 1 if original < 255 else original - 1
    values.tofile(path)

    result = run_csim(outdir)
    first = result["first_mismatch"]
    assert not result["passed"] and result["mismatches"] == 1
    assert first["layer"] == layer["ident"] and first["name"] == layer["name"]
    assert (first["sample"], first["index"]) == (sample, index)
    assert first["position"] == "h=0, w=2, c=5"
    assert (first["expected"], first["got"]) == (int(values[flat]), original)
    FIGURES.append(f"corrupted expected vector -> testbench: {first['text']}")


def test_cli_run_on_a_design_directory(designs, tmp_path):
    outdir, graph = designs["qonnx_mlp_w2a2.onnx"]
    x, _ = digits_inputs("qonnx_mlp_w2a2.onnx")
    np.save(tmp_path / "x.npy", x[:40])
    assert main(["run", str(outdir), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    expected = next(iter(golden.run(graph, x[:40]).values()))
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)
