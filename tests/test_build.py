"""`accelgen build` end to end: the README's main job, reuse, interruption, vendor options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accelgen.cli import main
from tests.data import as_images, digits_split
from tests.reference import run_reference

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits_cnn_w4a8.onnx"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    d = tmp_path_factory.mktemp("digits")
    _, _, x, y = digits_split()
    np.save(d / "x.npy", as_images(x))
    np.save(d / "y.npy", y)
    return d


@pytest.fixture(scope="module")
def built(tmp_path_factory, digits):
    out = tmp_path_factory.mktemp("build") / "digits_ultra96"
    code = main(["build", str(EXAMPLE), "--board", "ultra96", "-o", str(out), "--vectors", str(digits / "x.npy"),
                 "--labels", str(digits / "y.npy"), "--json"])  # fmt: skip
    assert code == 0
    return out


def test_build_writes_the_documented_outdir(built):
    for rel in ("report.json", "report.md", "report.png", "folding.json", "hls/top.cpp", "scripts",
                "driver/accel.json", "driver/notebook.ipynb", "driver/program.json", "logs/csim.log"):  # fmt: skip
        assert (built / rel).exists(), rel
    report = json.loads((built / "report.json").read_text())
    assert report["board"] == "ultra96v2" and report["clock_mhz"] == 150
    assert report["csim"]["passed"] is True and report["csim"]["mismatches"] == 0
    assert report["csim"]["vectors"] == 450
    assert report["synth"] is None and "not on PATH" in report["synth_status"]
    for key in ("ii_cycles", "latency_cycles", "fps", "latency_us", "dsp", "bram18", "lut", "ff"):
        assert key in report["totals"]
    stages = json.loads((built / "logs" / "stages.json").read_text())
    assert set(stages) >= {"frontend", "dse", "codegen", "csim", "synth", "package"}
    assert "stages" not in report and "build_s" not in report["csim"]  # timings stay out of the report
    layer = report["layers"][0]
    for key in ("name", "op", "in_shape", "out_shape", "w_bits", "a_bits", "pe", "simd", "cycles", "dsp", "bram18", "lut"):
        assert key in layer


def test_run_outdir_csim_reproduces_reference_accuracy(built, digits, tmp_path, capsys):
    y_path = tmp_path / "y.npy"
    assert main(["run", str(built), "--input", str(digits / "x.npy"), "--output", str(y_path)]) == 0  # csim default
    out = np.load(y_path)
    labels = np.load(digits / "y.npy")
    ref = run_reference(EXAMPLE, np.load(digits / "x.npy"))
    acc, ref_acc = (out.argmax(1) == labels).mean(), (ref.argmax(1) == labels).mean()
    print(f"emulated hardware accuracy {acc:.4f}, reference {ref_acc:.4f}")
    assert acc == ref_acc
    assert np.array_equal(out.argmax(1), ref.argmax(1))


def test_rebuild_reuses_csim(built, digits, capsys):
    before = (built / "report.json").read_bytes()
    code = main(["build", str(EXAMPLE), "--board", "ultra96", "-o", str(built), "--vectors", str(digits / "x.npy"),
                 "--labels", str(digits / "y.npy"), "--json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert json.loads((built / "logs" / "stages.json").read_text())["csim"]["status"] == "reused"
    assert (built / "report.json").read_bytes() == before, "report.json is not byte-reproducible"
    assert report["csim"]["passed"] is True


def test_synth_on_without_tools_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    code = main(["build", str(EXAMPLE), "--board", "ultra96", "-o", str(tmp_path / "o"), "--synth", "on", "--no-csim"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--synth on needs vitis_hls and vivado" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_no_fit_exits_3(tmp_path, capsys):
    code = main(["build", str(EXAMPLE), "--board", "pynq-z2", "-o", str(tmp_path / "o"), "--max-util", "0.001"])
    assert code == 3
    assert "does not fit" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


#: a build whose C-simulation stage receives a real SIGINT at a fixed point (no race with the build)
_INTERRUPTED_BUILD = """
import os, signal, sys
import accelgen.csim
def interrupted(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)  # delivered before the next bytecode: inside the stage
    raise AssertionError("SIGINT was not delivered")
accelgen.csim.run_csim = interrupted
from accelgen.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigint_during_csim_leaves_no_outdir_and_rerun_succeeds(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "ACCELGEN_CACHE_DIR": str(tmp_path / "cache")}
    args = ["build", str(EXAMPLE), "--board", "ultra96", "-o", str(out)]
    proc = subprocess.run([sys.executable, "-c", _INTERRUPTED_BUILD, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".out.partial-*"))
    rerun = subprocess.run([sys.executable, "-m", "accelgen", *args], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((out / "report.json").read_text())["csim"]["passed"] is True


def test_build_arch_rtl_simulates_bit_exact(tmp_path, capsys):
    _, _, x, _ = digits_split()
    np.save(tmp_path / "x.npy", x[:60])
    model = ROOT / "tests" / "models" / "qonnx_mlp_w2a2.onnx"
    code = main(["build", str(model), "--board", "ultra96", "--arch", "rtl", "-o", str(tmp_path / "o"),
                 "--vectors", str(tmp_path / "x.npy"), "--synth", "off", "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["arch"] == "rtl" and report["csim"]["passed"] is True and report["csim"]["vectors"] == 60
    assert report["csim"]["ii_cycles"] == 1
    assert (tmp_path / "o" / "rtl").is_dir()


def test_build_arch_rtl_refuses_a_cnn_and_says_what_to_use(tmp_path, capsys):
    code = main(["build", str(EXAMPLE), "--board", "ultra96", "--arch", "rtl", "-o", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "use --arch dataflow" in err and "Conv" in err
    assert not (tmp_path / "o").exists()


def test_the_build_summary_prints_the_whole_designs_utilisation(built):
    """The summary's resources are the whole design's (kernels, stream plumbing and shell),
    the figures and percentages `accelgen dse` and report.md give, not the kernels' alone."""
    from types import SimpleNamespace  # noqa: PLC0415

    from rich.console import Console  # noqa: PLC0415

    from accelgen import render  # noqa: PLC0415

    report = json.loads((built / "report.json").read_text())
    console = Console(record=True, width=300)
    render.print_build_summary(console, SimpleNamespace(report=report, outdir=built))
    text = console.export_text()
    t = report["totals"]
    assert t["whole_design"]["lut"] > t["lut"]  # the shell and plumbing add LUTs
    for key in ("lut", "dsp", "bram18"):
        share = t["whole_design"][key] / t["available"][key]
        assert share == pytest.approx(t["utilisation"][key], abs=1e-4)
        assert f"{key} {t['whole_design'][key]:,} ({100 * share:.1f}%)" in text
    assert "whole design" in text
