"""`accelgen run` on an --arch rtl build: the Verilog core in Verilator or Icarus, no cocotb.

A fixture is built with `accelgen build --arch rtl`, a few digits go through `accelgen run`
(the ``rtl`` backend, chosen automatically) and the outputs must equal the golden
interpreter's bit for bit, and the reference executor's (qonnx) to float rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelgen import cli
from accelgen.runtime import rtl_backend
from accelgen.runtime.rtl_backend import available_simulators, pack_lanes, unpack_lanes
from tests.data import digits_split
from tests.reference import run_reference

MODELS = Path(__file__).parent / "models"


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            out = tmp_path_factory.mktemp("rtlrun") / name
            argv = ["build", str(MODELS / f"{name}.onnx"), "-b", "pynq-z2", "-o", str(out), "--arch", "rtl",
                    "--synth", "off", "--no-csim"]  # fmt: skip
            assert cli.main(argv) == 0
            cache[name] = out
        return cache[name]

    return get


def _run(tmp_path: Path, build: Path, x: np.ndarray, *extra: str) -> np.ndarray:
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["run", str(build), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"), *extra]) == 0
    return np.load(tmp_path / "y.npy")


def _golden(tmp_path: Path, build: Path, x: np.ndarray) -> np.ndarray:
    return _run(tmp_path, build, x, "--backend", "golden")


@pytest.mark.cocotb
@pytest.mark.parametrize(
    "name,simulator",
    [("qonnx_mlp_w2a2", "icarus"), ("qonnx_mlp_w1a1", "icarus"), ("qonnx_mlp_w4a4", "icarus"),
     pytest.param("qonnx_mlp_w2a2", "verilator", marks=pytest.mark.slow)],
)  # fmt: skip
def test_run_rtl_build_bit_exact(builds, tmp_path, name, simulator):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    build = builds(name)
    x = digits_split()[2][:24]
    got = _run(tmp_path, build, x, "--simulator", simulator)
    want = _golden(tmp_path, build, x)
    assert got.shape == want.shape == (24, 10)
    np.testing.assert_array_equal(got, want)
    ref = run_reference(MODELS / f"{name}.onnx", x)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert len(np.unique(np.argmax(got, axis=1))) > 3  # not a constant output


@pytest.mark.cocotb
def test_rtl_backend_is_the_default_and_the_batch_may_be_one(builds, tmp_path):
    if not available_simulators():
        pytest.skip("no RTL simulator installed")
    build = builds("qonnx_mlp_w2a2")
    x = digits_split()[2][5:6]
    np.testing.assert_array_equal(_run(tmp_path, build, x), _golden(tmp_path, build, x))


def test_missing_simulator_is_a_clear_error(builds, tmp_path, monkeypatch, capsys):
    build = builds("qonnx_mlp_w2a2")
    np.save(tmp_path / "x.npy", digits_split()[2][:3])
    monkeypatch.setattr(rtl_backend, "available_simulators", lambda: [])
    argv = ["run", str(build), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Verilator" in err and "Icarus" in err and "Traceback" not in err
    assert cli.main([*argv, "--simulator", "verilator"]) == 2
    assert "verilator is not installed" in capsys.readouterr().err
    assert not (tmp_path / "y.npy").exists()


def test_csim_backend_on_an_rtl_build_is_refused(builds, tmp_path, capsys):
    build = builds("qonnx_mlp_w2a2")
    np.save(tmp_path / "x.npy", digits_split()[2][:3])
    argv = ["run", str(build), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]
    assert cli.main([*argv, "--backend", "csim"]) == 2
    assert "--arch rtl build" in capsys.readouterr().err
    assert cli.main([*argv, "--backend", "golden", "--simulator", "icarus"]) == 2


def test_lanes_round_trip_signed_and_unsigned():
    rng = np.random.default_rng(0)
    for lane_bits, signed in ((1, False), (4, True), (8, True), (8, False), (32, True)):
        lo, hi = (-(1 << (lane_bits - 1)), 1 << (lane_bits - 1)) if signed else (0, 1 << lane_bits)
        codes = rng.integers(lo, hi, (7, 13))
        words = pack_lanes(codes, lane_bits)
        # element 0 sits in the least significant lane
        assert int(words[0], 16) & ((1 << lane_bits) - 1) == codes[0, 0] % (1 << lane_bits)
        np.testing.assert_array_equal(unpack_lanes(words, 13, lane_bits, signed), codes)
    with pytest.raises(RuntimeError, match="undefined"):
        unpack_lanes(["1x"], 1, 8, False)


# -- report.md / report.png and Yosys progress ----------------------------------------------------


def test_rtl_build_has_a_report(builds):
    import json

    build = builds("qonnx_mlp_w2a2")
    report = json.loads((build / "report.json").read_text())
    md = (build / "report.md").read_text()
    assert (build / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    layers = report["rtl"]["layers"]
    assert [la["label"] for la in layers] == ["fc1_gemm", "fc2_gemm", "fc3_gemm"]
    rows = [line for line in md.splitlines() if line.startswith("| ") and "_gemm |" in line]
    assert len(rows) == len(layers)
    for row, la in zip(rows, layers):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == la["label"] and int(cells[2]) == la["in_size"] and int(cells[3]) == la["out_size"]
        assert int(cells[6]) == la["registers"] and int(cells[8].replace(",", "")) == la["estimate"]["lut"]
    # the per-layer LUT shares add up to about the whole-design estimate (a linear model)
    total = report["rtl"]["estimate"]["lut"]
    assert abs(sum(la["estimate"]["lut"] for la in layers) - total) <= len(layers)
    assert f"| latency | {report['rtl']['latency_cycles']} cycle(s)" in md
    assert "Yosys: not run (--synth off)" in md


def test_current_pass_reads_the_last_pass_header():
    from accelgen.rtl.yosys import current_pass

    log = "\n".join(["1. Executing Verilog-2005 frontend: rtl/a.v", "Parsing Verilog input", "",
                     "2.3. Executing PROC pass (convert processes to netlists).", "  some detail",
                     "2.14.1. Executing ABC pass (technology mapping using ABC).", "ABC: + strash"])  # fmt: skip
    assert current_pass(log) == "ABC pass (technology mapping using ABC)"
    assert current_pass("nothing here\n") is None


@pytest.mark.yosys
@pytest.mark.slowest  # a whole Yosys run (make test-all)
def test_yosys_reports_progress_while_it_runs(tmp_path):
    from accelgen.rtl import generate, random_mlp, synth_yosys
    from accelgen.rtl.yosys import yosys_available

    if not yosys_available():
        pytest.skip("yosys is not installed")
    out = generate(random_mlp((12, 16, 4), seed=1), tmp_path / "d")
    lines: list[str] = []
    r = synth_yosys(out, progress=lines.append, heartbeat=0.5)
    assert r["lut"] > 0
    assert lines and all(line.startswith("yosys running ") for line in lines)
    assert any(", in " in line and "pass" in line for line in lines)
    seconds = [float(line.split()[2]) for line in lines]
    assert seconds == sorted(seconds)


@pytest.mark.cocotb
def test_run_rtl_build_with_clock_chosen_stages(tmp_path):
    """A 250 MHz build gets more register stages; `accelgen run` stays bit-exact with the added latency."""
    import json

    if "icarus" not in available_simulators():
        pytest.skip("icarus is not installed")
    out = tmp_path / "b"
    argv = ["build", str(MODELS / "qonnx_mlp_w2a2.onnx"), "-b", "ultra96", "--clock", "250", "-o", str(out),
            "--arch", "rtl", "--synth", "off"]  # fmt: skip
    assert cli.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    rtl = report["rtl"]
    assert rtl["timing"]["clock_mhz"] == 250 and rtl["latency_cycles"] > 3
    assert report["csim"]["passed"] and report["csim"]["latency_cycles"] == rtl["latency_cycles"]
    x = digits_split()[2][:16]
    np.testing.assert_array_equal(_run(tmp_path, out, x, "--simulator", "icarus"), _golden(tmp_path, out, x))
    assert "slowest stage per layer (estimate)" in (out / "report.md").read_text()
