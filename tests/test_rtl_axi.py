"""The unrolled core behind the board interface (<top>_axi.v): packed AXI-Stream words in and
out, AXI-Lite control, checked bit for bit against the golden model under back-pressure.

The testbench (tests/rtl_axi_tb.py) packs with the driver's own packing code, so a pass
means the PYNQ driver of the dataflow path drives the RTL core unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from accelgen import golden, ir
from accelgen.pipeline import compile_model
from accelgen.rtl import generate, load_design, random_mlp, simulator_available
from accelgen.rtl.core import core_to_json, extract_core, graph_from_json

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"

pytestmark = pytest.mark.cocotb


def _graph(case: str):
    if case == "w1a1_fixture":
        return compile_model(MODELS / "qonnx_mlp_w1a1.onnx").graph
    if case == "bipolar_codes_out":  # bipolar hidden layer, 2-bit codes out, signed 4-bit input
        return random_mlp((12, 20, 7), w_bits=2, act_bits=1, in_bits=4, seed=3)
    return random_mlp((16, 24, 10), w_bits=2, act_bits=2, in_bits=8, seed=1)  # raw accumulators out


def _golden(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    """The golden interpreter on the integer core alone (its input: the core's codes)."""
    core = graph_from_json(core_to_json(extract_core(graph)))
    return golden.run(core, {core.inputs[0]: x})[core.outputs[0]]


def _inputs(graph, n: int, seed: int) -> np.ndarray:
    core = extract_core(graph)
    q = core.input.qtype
    rng = np.random.default_rng(seed)
    shape = (n, *core.input.shape[1:])
    if q.bipolar:
        return rng.choice([-1, 1], shape)
    return rng.integers(q.qmin, q.qmax + 1, shape)


def _run(outdir: Path, x: np.ndarray, y: np.ndarray, simulator: str, backpressure: float) -> dict:
    from cocotb_tools.runner import get_results, get_runner

    design = load_design(outdir)
    board = design["board"]
    np.save(outdir / "x.npy", x.reshape(len(x), -1))
    np.save(outdir / "y.npy", y.reshape(len(y), -1))
    case = {"x": str(outdir / "x.npy"), "y": str(outdir / "y.npy"), "bus_bits": board["bus_bits"],
            "in": board["inputs"][0], "out": board["outputs"][0], "seed": 5, "backpressure": backpressure,
            "split": len(x) // 2 + 1, "results": str(outdir / "axi_results.json")}  # fmt: skip
    (outdir / "case.json").write_text(json.dumps(case))
    build_args: list[str] = []
    runner = get_runner(simulator)
    build_dir = outdir / "sim_axi" / simulator
    runner.build(sources=[outdir / f for f in board["files"]], hdl_toplevel=board["top"], build_dir=build_dir,
                 build_args=build_args, timescale=("1ns", "1ps"), always=True)  # fmt: skip
    env = {"ACCELGEN_AXI_CASE": str(outdir / "case.json"), "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    xml = build_dir / "results.xml"
    try:
        runner.test(test_module="rtl_axi_tb", hdl_toplevel=board["top"], build_dir=build_dir, test_dir=HERE,
                    extra_env=env, results_xml=str(xml))  # fmt: skip
    except SystemExit:  # the runner exits when a test failed; its results file says which
        pass
    tests, failed = get_results(xml)
    result = json.loads((outdir / "axi_results.json").read_text()) if (outdir / "axi_results.json").is_file() else {}
    return {"tests": tests, "failed": failed, **result}


@pytest.mark.parametrize(
    ("case", "simulator", "levels"),
    [("acc_out", "icarus", 2), ("bipolar_codes_out", "icarus", 0), ("w1a1_fixture", "icarus", 1)],
)  # fmt: skip
def test_board_wrapper_bit_exact_under_backpressure(tmp_path, case, simulator, levels):
    if not simulator_available(simulator):
        pytest.skip(f"{simulator} is not installed")
    graph = _graph(case)
    out = generate(graph, tmp_path / "d", pipeline_levels=levels)
    design = load_design(out)
    x = _inputs(graph, 40, seed=11)
    want = _golden(graph, x)
    r = _run(out, x, np.asarray(want), simulator, backpressure=0.4)
    assert r["tests"] == 1 and r["failed"] == 0, r
    assert r["mismatched_elements"] == 0
    ports = design["board"]
    w_in, w_out = ports["inputs"][0]["words_per_sample"], ports["outputs"][0]["words_per_sample"]
    # the unstalled call moves one sample per max(words in, words out) cycles (plus the fill)
    rest = len(x) - (len(x) // 2 + 1)
    assert r["cycles_per_sample"] <= max(w_in, w_out) + (design["latency_cycles"] + 2) / (rest - 1)


def test_board_wrapper_catches_a_wrong_packing(tmp_path):
    """The same run with the output codes read one bit narrower than the wrapper packs them fails."""
    if not simulator_available("icarus"):
        pytest.skip("icarus is not installed")
    graph = _graph("acc_out")
    out = generate(graph, tmp_path / "d", pipeline_levels=1)
    path = out / "design.json"
    design = json.loads(path.read_text())
    design["board"]["outputs"][0]["code"]["bits"] -= 1
    path.write_text(json.dumps(design))
    x = _inputs(graph, 12, seed=2)
    want = _golden(graph, x)
    r = _run(out, x, np.asarray(want), "icarus", backpressure=0.0)
    assert r["failed"] == 1


@pytest.fixture(autouse=True)
def _no_stray_build(tmp_path):
    yield
    shutil.rmtree(tmp_path / "d" / "sim_axi", ignore_errors=True)
