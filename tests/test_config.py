"""Build options resolved once (accelgen.config): clock, budget, plan, architecture, vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelgen.boards import DEFAULT_MAX_UTIL, get_board
from accelgen.cli import main
from accelgen.config import AUTO_ARCH_RULE, DEFAULT_VECTORS, BuildOptions, resolve_build
from accelgen.errors import InputError
from accelgen.plan import FoldingPlan

MLP = Path(__file__).parent / "models" / "qonnx_mlp_w4a4.onnx"


def test_clock_comes_from_clock_then_the_plan_then_the_board(tmp_path):
    board = get_board("zcu104")
    assert resolve_build(BuildOptions(board="zcu104")).clock_mhz == board.default_clock_mhz
    plan = tmp_path / "plan.json"
    FoldingPlan(layers={}, board="zcu104", clock_mhz=187.5).save(plan)
    given = resolve_build(BuildOptions(board="zcu104", folding=str(plan)))
    assert (given.clock_mhz, given.clock_source) == (187.5, "the --folding plan")
    assert resolve_build(BuildOptions(board="zcu104", folding=str(plan), clock_mhz=120)).clock_mhz == 120.0
    with pytest.raises(InputError, match="--clock must be positive"):
        resolve_build(BuildOptions(clock_mhz=-5))


def test_budget_default_is_the_boards_module_constant():
    assert resolve_build(BuildOptions()).max_util == DEFAULT_MAX_UTIL
    assert resolve_build(BuildOptions(max_util=0.5)).max_util == 0.5
    with pytest.raises(InputError, match="--max-util"):
        resolve_build(BuildOptions(max_util=1.5))


def test_arch_auto_is_resolved_and_explained():
    auto = resolve_build(BuildOptions(arch="auto"))
    assert (auto.arch, auto.arch_reason) == ("dataflow", AUTO_ARCH_RULE)
    assert resolve_build(BuildOptions(arch="rtl")).arch == "rtl"
    with pytest.raises(InputError, match="--arch must be one of auto, dataflow, rtl"):
        resolve_build(BuildOptions(arch="systolic"))


def test_build_folding_keeps_the_plans_clock(tmp_path, capsys):
    """`dse --clock 200 -o` then `build --folding`: the plan's clock is the build's clock."""
    planned = tmp_path / "planned"
    assert main(["dse", str(MLP), "--board", "ultra96", "--clock", "200", "-o", str(planned), "--json"]) == 0
    assert json.loads((planned / "folding.json").read_text())["clock_mhz"] == 200
    out = tmp_path / "built"
    args = ["build", str(MLP), "--board", "ultra96", "--folding", str(planned / "folding.json"), "-o", str(out)]
    assert main([*args, "--no-csim", "--synth", "off", "--json"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["clock_mhz"] == 200
    assert json.loads((out / "hls" / "design.json").read_text())["clock_mhz"] == 200
    assert report["arch"] == "dataflow" and report["arch_reason"] == AUTO_ARCH_RULE
    assert report["max_util"] == DEFAULT_MAX_UTIL


@pytest.mark.csim
def test_build_without_vectors_simulates_the_default_count(tmp_path, capsys):
    out = tmp_path / "built"
    assert main(["build", str(MLP), "--board", "ultra96", "-o", str(out), "--synth", "off"]) == 0
    printed = capsys.readouterr().out
    assert "architecture" in printed and "dataflow" in printed
    assert json.loads((out / "report.json").read_text())["csim"]["vectors"] == DEFAULT_VECTORS
