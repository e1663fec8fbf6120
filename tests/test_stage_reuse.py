"""Reused build stages restore every file they wrote: the C-simulation library, the
synthesis projects and bitstream; a stage writing outside its declared outputs is a bug."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from accelgen.config import DEFAULT_VECTORS
from accelgen.errors import InternalError
from accelgen.pipeline import BUILD_STAGES, RTL_STAGES, build
from accelgen.stages import BuildContext, Stage, run_stages
from accelgen.workspace import Workspace
from tests.data import digits_split
from tests.reference import run_reference

MODELS = Path(__file__).parent / "models"
MLP = MODELS / "qonnx_mlp_w4a4.onnx"


def _stages(outdir: Path) -> dict:
    return json.loads((outdir / "logs" / "stages.json").read_text())


@pytest.mark.csim
def test_rebuild_with_unchanged_inputs_keeps_the_csim_library(tmp_path):
    _, _, x, y = digits_split()
    x = x[:40]
    out = tmp_path / "mlp"
    first = build(MLP, out, board="ultra96", synth="off").run(x)
    lib = (out / "csim" / "libaccel.so").read_bytes()
    assert f"C-simulation: {DEFAULT_VECTORS} vectors, 0 mismatching elements" in (out / "logs" / "csim.log").read_text()
    design = build(MLP, out, board="ultra96", synth="off")
    assert _stages(out)["csim"]["status"] == "reused"
    assert "reused from the previous build" in (out / "logs" / "csim.log").read_text()
    assert (out / "csim" / "libaccel.so").read_bytes() == lib
    again = design.run(x)  # the runtime's csim backend on the rebuilt directory
    assert np.array_equal(again, first)
    ref = run_reference(MLP, x)
    assert np.array_equal(again.argmax(1), ref.argmax(1))


_FAKE_TOOL = """#!/bin/sh
echo "$0 $*" >> {calls}
case "$(basename "$0")" in
  vitis_hls) mkdir -p accel_prj/solution1/impl && echo ip > accel_prj/solution1/impl/ip.zip ;;
  vivado) mkdir -p accel_bd ../bitstream && echo bitstream > accel_bd/accel.bit && echo hwh > accel_bd/accel.hwh
          cp accel_bd/accel.bit accel_bd/accel.hwh ../bitstream/ && cat > ../bitstream/timing.rpt <<'EOF'
{timing}EOF
          ;;
esac
"""
#: bd.tcl's report_timing_summary, met (the overlay goes to the driver only then)
_TIMING = """| Design Timing Summary
| ---------------------

    WNS(ns)      TNS(ns)  TNS Failing Endpoints      WHS(ns)      THS(ns)
    -------      -------  ---------------------      -------      -------
      0.250        0.000                      0        0.031        0.000

All user specified timing constraints are met.
"""


@pytest.fixture
def fake_vendor_tools(tmp_path, monkeypatch):
    """vitis_hls and vivado stand-ins that create a project and a bitstream in scripts/."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    for tool in ("vitis_hls", "vivado"):
        path = bin_dir / tool
        path.write_text(_FAKE_TOOL.format(calls=calls, timing=_TIMING))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_reused_synthesis_keeps_its_bitstream(tmp_path, fake_vendor_tools):
    out = tmp_path / "mlp"
    build(MLP, out, board="ultra96", csim=False, synth="on")
    assert (out / "scripts" / "accel_bd" / "accel.bit").read_text() == "bitstream\n"
    assert (out / "driver" / "design.bit").is_file()
    assert len(fake_vendor_tools.read_text().splitlines()) == 2
    build(MLP, out, board="ultra96", csim=False, synth="on")
    assert _stages(out)["synth"]["status"] == "reused"
    assert len(fake_vendor_tools.read_text().splitlines()) == 2  # the tools did not run again
    assert (out / "scripts" / "accel_bd" / "accel.bit").read_text() == "bitstream\n"
    assert (out / "scripts" / "accel_prj" / "solution1" / "impl" / "ip.zip").is_file()
    assert (out / "driver" / "design.bit").read_text() == "bitstream\n"
    assert (out / "driver" / "design.hwh").is_file()


def test_a_stage_writing_an_undeclared_file_is_an_internal_error(tmp_path):
    def sloppy(ctx):
        (ctx.path / "hls").mkdir()
        (ctx.path / "hls" / "top.cpp").write_text("//")
        (ctx.path / "stray.txt").write_text("not declared")

    ctx = BuildContext(model_path=tmp_path / "m.onnx", options=None, ws=Workspace(tmp_path / "out"))
    with pytest.raises(InternalError, match=r"'codegen' wrote stray\.txt outside its declared outputs \(hls\)"):
        run_stages(ctx, [Stage("codegen", sloppy, outputs=("hls",))])
    ctx.ws.discard()


def test_every_keyed_stage_declares_outputs():
    """A keyed (reusable) stage with no outputs could restore nothing; the runner's check
    (above) covers what each stage writes in every build the tests run."""
    for stage in [*BUILD_STAGES, *RTL_STAGES]:
        assert stage.key is None or stage.outputs, stage.name
