"""The generated Vitis HLS and Vivado tcl, checked for what can be checked without the tools."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from accelgen.boards import get_board
from accelgen.codegen import generate
from accelgen.pipeline import compile_model

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "models" / "qdq_cnn_perchannel_residual.onnx"


@pytest.fixture(scope="module", params=["ultra96v2", "pynq-z2", "kv260"])
def project(request, tmp_path_factory):
    board = get_board(request.param)
    out = tmp_path_factory.mktemp(board.name)
    generate(compile_model(MODEL), None, out, board=board)
    return board, out


def _tcl_paths(text: str, variables: dict[str, Path]) -> list[Path]:
    """Files named as $var/relative in the tcl (the generated scripts' only path idiom)."""
    found = []
    for var, rel in re.findall(r"\$(\w+)/([\w./-]+)", text):
        if var in variables:
            found.append(variables[var] / rel)
    return found


def test_hls_tcl_references_existing_files_and_the_cxx_top(project):
    board, out = project
    tcl = (out / "scripts" / "hls.tcl").read_text()
    paths = _tcl_paths(tcl, {"hls_dir": out / "hls"})
    assert {p.name for p in paths} >= {"top.cpp", "tb.cpp", "emu.cpp", "vectors", "lib"}
    for p in paths:
        assert p.exists(), f"hls.tcl references {p}, which was not generated"
    (top,) = re.findall(r"^set_top (\S+)$", tcl, re.M)
    cpp = (out / "hls" / "top.cpp").read_text()
    assert re.search(rf"^void {re.escape(top)}\(", cpp, re.M), "set_top names no function of top.cpp"
    assert re.findall(r"^set_part (\S+)$", tcl, re.M) == [board.part]


def test_block_design_matches_board_and_ip_ports(project):
    board, out = project
    bd = (out / "scripts" / "bd.tcl").read_text()
    cpp = (out / "hls" / "top.cpp").read_text()
    assert f"-part {board.part}" in bd
    assert f"set board_part {board.board_part}\n" in bd and "set_property board_part $board_part [current_project]" in bd
    ps_ip = {"zynqmp": "zynq_ultra_ps_e", "zynq7": "processing_system7"}[board.processing_system]
    assert f"xilinx.com:ip:{ps_ip} ps" in bd
    (top,) = re.findall(r"^set_top (\S+)$", (out / "scripts" / "hls.tcl").read_text(), re.M)
    assert f"accelgen.org:hls:{top}:1.0 accel" in bd
    axis_ports = set(re.findall(r"#pragma HLS INTERFACE mode = axis port = (\w+)", cpp))
    bd_ports = set(re.findall(r"get_bd_intf_pins accel/(\w+)\]", bd)) - {"s_axi_control"}
    assert axis_ports and bd_ports == axis_ports
    assert "#pragma HLS INTERFACE mode = s_axilite port = return bundle = control" in cpp
    assert "accel/s_axi_control" in bd
    for port in axis_ports:
        assert f"dma_{port}" in bd, f"no DMA for stream port {port}"
    clock = re.search(r"FREQMHZ \{(\d+)\}|FCLK_CLK0_FREQ \{(\d+)\}|PL0_REF_CTRL__FREQMHZ \{(\d+)\}", bd)
    assert clock and int(next(g for g in clock.groups() if g)) == int(board.default_clock_mhz)
