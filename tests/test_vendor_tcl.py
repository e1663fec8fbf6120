"""The generated Vivado / Vitis HLS tcl run under Debian's tclsh with recording stand-ins for
the vendor commands (tests/tcl/standins.tcl): what the scripts ask the tools to build is read
back as data (cells, properties, connections, automation, runs) and checked against the design,
for every board."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from accelgen.boards import get_board
from accelgen.codegen import generate
from accelgen.pipeline import compile_model

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "models" / "qdq_cnn_perchannel_residual.onnx"
STANDINS = ROOT / "tests" / "tcl" / "standins.tcl"
BOARDS = ["ultra96v2", "zcu104", "kv260", "pynq-z2", "zcu102"]
#: PG021: the AXI DMA's memory-map data widths and the widest buffer length register
DMA_MM_WIDTHS = {32, 64, 128, 256, 512, 1024}
DMA_MAX_LENGTH_WIDTH = 26

pytestmark = pytest.mark.skipif(shutil.which("tclsh") is None, reason="needs tclsh (apt-get install tcl)")

#: per PS family: the IP, its clock pin, its AXI master for control, its slave for DMA traffic,
#: and the property setting the PL clock
PS = {
    "zynqmp": ("xilinx.com:ip:zynq_ultra_ps_e", "/ps/pl_clk0", "/ps/M_AXI_HPM0_FPD", "/ps/S_AXI_HP0_FPD",
               "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"),
    "zynq7": ("xilinx.com:ip:processing_system7", "/ps/FCLK_CLK0", "/ps/M_AXI_GP0", "/ps/S_AXI_HP0",
              "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"),
}  # fmt: skip


def run_tcl(script: Path, tmp: Path, **env: str) -> dict:
    """Run ``script`` under the stand-ins (in its directory, as the flow does); the record."""
    out = tmp / f"record_{script.stem}_{len(list(tmp.glob('record_*')))}.json"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELGEN_", "STANDIN_"))}
    full.update(env)
    proc = subprocess.run(["tclsh", str(STANDINS), str(out), script.name], cwd=script.parent, env=full,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.is_file(), f"the stand-ins wrote no record: {proc.stdout}{proc.stderr}"
    record = json.loads(out.read_text())
    assert (proc.returncode == 0) == (record["exit"] != "error"), proc.stdout
    return record


def calls(record: dict, name: str) -> list[list[str]]:
    return [c[1:] for c in record["calls"] if c[0] == name]


def index(record: dict, name: str) -> int:
    return next(i for i, c in enumerate(record["calls"]) if c[0] == name)


@pytest.fixture(scope="module", params=BOARDS)
def project(request, tmp_path_factory):
    board = get_board(request.param)
    out = tmp_path_factory.mktemp(board.name)
    generate(compile_model(MODEL), None, out, board=board)
    repo = out / "board_repo"
    repo.mkdir()
    (repo / "boards.txt").write_text(board.board_part + "\n")
    return board, out, repo


def _fresh(out: Path) -> None:
    shutil.rmtree(out / "bitstream", ignore_errors=True)


def check_block_design(rec: dict, board, accel_vlnv: str, bus: int, ports_in: dict, ports_out: dict) -> None:
    """What every block design must ask Vivado for: the board's project, the PS and its clock,
    one DMA per stream port wide enough for the bus, the streams, the address map, then
    implementation and the timing check before the bitstream."""
    assert rec["exit"] == "exit", rec["error"]
    assert rec["project"]["part"] == board.part
    assert rec["properties"]["project"]["board_part"] == board.board_part

    ps_ip, clk, master, hp, freq_key = PS[board.processing_system]
    cells = rec["cells"]
    assert cells["ps"] == ps_ip
    assert cells["accel"] == accel_vlnv
    # the clock: the PS makes the design's clock, and every AXI connection is clocked by it
    assert float(rec["properties"]["ps"][freq_key]) == pytest.approx(board.default_clock_mhz, abs=0.5)
    axi = [a for a in rec["automation"] if a["rule"] == "xilinx.com:bd_rule:axi4"]
    assert axi and all(a["config"]["Clk_master"] == clk for a in axi)

    dmas = {name: vlnv for name, vlnv in cells.items() if vlnv.startswith("xilinx.com:ip:axi_dma")}
    assert set(dmas) == {f"dma_{n}" for n in [*ports_in, *ports_out]}
    for name in dmas:
        props = rec["properties"][name]
        port = name[len("dma_") :]
        if port in ports_in:
            assert props["CONFIG.c_include_s2mm"] == "0"
            stream, mm = int(props["CONFIG.c_m_axis_mm2s_tdata_width"]), int(props["CONFIG.c_m_axi_mm2s_data_width"])
            words = ports_in[port]["words_per_sample"]
        else:
            assert props["CONFIG.c_include_mm2s"] == "0"
            stream, mm = int(props["CONFIG.c_s_axis_s2mm_tdata_width"]), int(props["CONFIG.c_m_axi_s2mm_data_width"])
            words = ports_out[port]["words_per_sample"]
        assert stream == bus
        assert mm in DMA_MM_WIDTHS and mm >= stream  # PG021: the stream no wider than the memory map
        length = int(props["CONFIG.c_sg_length_width"])
        assert 8 <= length <= DMA_MAX_LENGTH_WIDTH
        assert 2**length - 1 >= words * bus // 8  # at least one sample per transfer
        assert props["CONFIG.c_include_sg"] == "0"

    # the streams: each DMA to the accelerator port of the same name
    nets = {tuple(n) for n in rec["nets"]}
    assert nets == {(f"dma_{p}/M_AXIS_MM2S", f"accel/{p}") for p in ports_in} | {
        (f"accel/{p}", f"dma_{p}/S_AXIS_S2MM") for p in ports_out
    }

    # the address map: every AXI-Lite slave on the PS's control master, every DMA memory
    # master on the PS's high-performance port, then every segment assigned
    slaves = {a["config"]["Slave"] for a in axi if a["config"]["Master"] == master}
    assert slaves == {"/accel/s_axi_control"} | {f"/{d}/S_AXI_LITE" for d in dmas}
    memory = {a["config"]["Master"] for a in axi if a["config"]["Slave"] == hp}
    assert memory == {f"/dma_{p}/M_AXI_MM2S" for p in ports_in} | {f"/dma_{p}/M_AXI_S2MM" for p in ports_out}
    last_automation = max(i for i, c in enumerate(rec["calls"]) if c[0] == "apply_bd_automation")
    assert last_automation < index(rec, "assign_bd_address") < index(rec, "validate_bd_design")

    # implementation, reports, timing check, then the bitstream
    assert calls(rec, "launch_runs") == [["impl_1", "-to_step", "write_bitstream", "-jobs", "4"]]
    assert index(rec, "report_timing_summary") < index(rec, "exit")


def test_block_design_for_every_board(project, tmp_path):
    board, out, repo = project
    _fresh(out)
    design = json.loads((out / "hls" / "design.json").read_text())
    rec = run_tcl(out / "scripts" / "bd.tcl", tmp_path, ACCELGEN_BOARD_REPO=str(repo))
    assert rec["params"]["board.repoPaths"] == str(repo)
    ports_in = {p["name"]: p for p in design["inputs"]}
    ports_out = {p["name"]: p for p in design["outputs"]}
    check_block_design(rec, board, f"accelgen.org:hls:{design['top']}:1.0", design["bus_bits"], ports_in, ports_out)
    # the accelerator's stream ports are the C++ top's
    cpp = (out / "hls" / "top.cpp").read_text()
    axis = set(re.findall(r"#pragma HLS INTERFACE mode = axis port = (\w+)", cpp))
    assert axis == set(ports_in) | set(ports_out)
    assert (out / "bitstream" / f"{design['model']}.bit").is_file()
    assert (out / "bitstream" / f"{design['model']}.hwh").is_file()


def test_board_files_missing_is_a_clear_error(project, tmp_path):
    board, out, repo = project
    _fresh(out)
    rec = run_tcl(out / "scripts" / "bd.tcl", tmp_path)  # no repository, nothing shipped
    assert rec["exit"] == "error"
    assert board.board_part in rec["error"] and "--board-repo" in rec["error"] and "ACCELGEN_BOARD_REPO" in rec["error"]
    assert not calls(rec, "create_bd_design") and "board_part" not in rec["properties"].get("project", {})

    empty = tmp_path / "empty_repo"
    empty.mkdir()
    rec = run_tcl(out / "scripts" / "bd.tcl", tmp_path, ACCELGEN_BOARD_REPO=str(empty))
    assert rec["exit"] == "error" and board.board_part in rec["error"] and str(empty) in rec["error"]

    rec = run_tcl(out / "scripts" / "bd.tcl", tmp_path, ACCELGEN_BOARD_REPO=str(tmp_path / "nowhere"))
    assert rec["exit"] == "error" and "nowhere" in rec["error"] and not calls(rec, "create_project")

    # board files Vivado itself ships (AMD's boards) need no repository
    rec = run_tcl(out / "scripts" / "bd.tcl", tmp_path, STANDIN_SHIPPED_BOARDS=f"other:part {board.board_part}")
    assert rec["exit"] == "exit", rec["error"]
    assert "board.repoPaths" not in rec["params"]


@pytest.mark.parametrize(("wns", "whs"), [("-0.214", "0.05"), ("0.3", "-0.01")])
def test_negative_slack_stops_before_the_bitstream(project, tmp_path, wns, whs):
    board, out, repo = project
    _fresh(out)
    bd = out / "scripts" / "bd.tcl"
    rec = run_tcl(bd, tmp_path, ACCELGEN_BOARD_REPO=str(repo), STANDIN_WNS=wns, STANDIN_WHS=whs)
    assert rec["exit"] == "error" and "timing not met" in rec["error"]
    assert (wns if wns.startswith("-") else whs) in rec["error"]
    assert (out / "bitstream" / "timing.rpt").is_file()  # the report is there to read
    assert not list((out / "bitstream").glob("*.bit"))

    _fresh(out)
    rec = run_tcl(bd, tmp_path, ACCELGEN_BOARD_REPO=str(repo), STANDIN_WNS=wns, STANDIN_WHS=whs,
                  ACCELGEN_ALLOW_TIMING_VIOLATION="1")  # fmt: skip
    assert rec["exit"] == "exit", rec["error"]
    assert list((out / "bitstream").glob("*.bit"))


def test_hls_script_for_every_board(project, tmp_path):
    board, out, _ = project
    design = json.loads((out / "hls" / "design.json").read_text())
    rec = run_tcl(out / "scripts" / "hls.tcl", tmp_path)
    assert rec["exit"] == "exit", rec["error"]
    assert calls(rec, "set_top") == [[design["top"]]]
    assert calls(rec, "set_part") == [[board.part]]
    ((_, period, *_),) = calls(rec, "create_clock")
    assert float(period) == pytest.approx(1000.0 / board.default_clock_mhz, abs=1e-3)
    added = [Path(c[1] if c[0] == "-tb" else c[0]) for c in calls(rec, "add_files")]
    assert {p.name for p in added} >= {"top.cpp", "tb.cpp", "emu.cpp", "vectors"}
    for source in added:
        assert source.exists(), f"hls.tcl adds {source}, which was not generated"
    assert not calls(rec, "cosim_design")  # co-simulation is opt-in
    assert index(rec, "csim_design") < index(rec, "csynth_design") < index(rec, "export_design")
    ((*_, output),) = [c for c in calls(rec, "export_design")]
    assert Path(output).name == f"{design['top']}.zip" and Path(output).parent.is_dir()

    rec = run_tcl(out / "scripts" / "hls.tcl", tmp_path, ACCELGEN_COSIM="1", ACCELGEN_SKIP_CSIM="1")
    assert not calls(rec, "csim_design")
    assert index(rec, "csynth_design") < index(rec, "cosim_design") < index(rec, "export_design")


# -- --arch rtl: the unrolled core's block design, through the same templates ---------------------

RTL_MODEL = ROOT / "tests" / "models" / "qonnx_mlp_w2a2.onnx"


@pytest.fixture(scope="module", params=BOARDS)
def rtl_project(request, tmp_path_factory):
    from accelgen import rtl
    from accelgen.rtl.board import render_scripts

    board = get_board(request.param)
    out = tmp_path_factory.mktemp(f"rtl_{board.name}")
    rtl.generate(compile_model(RTL_MODEL).graph, out / "rtl", clock_mhz=board.default_clock_mhz, part=board.part)
    design = rtl.load_design(out / "rtl")
    for rel, text in render_scripts(design, board, board.default_clock_mhz, RTL_MODEL.stem).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    repo = out / "board_repo"
    repo.mkdir()
    (repo / "boards.txt").write_text(board.board_part + "\n")
    return board, out, repo, design


def verilog_ports(path: Path, module: str) -> dict[str, int]:
    """Port name -> width of ``module`` in a Verilog file."""
    text = path.read_text()
    body = re.search(rf"module\s+{module}\s*\((.*?)\);", text, re.S).group(1)
    ports = {}
    for msb, name in re.findall(r"(?:input|output)\s+(?:wire|reg)\s*(?:\[(\d+):0\])?\s*(\w+)", body):
        ports[name] = int(msb) + 1 if msb else 1
    return ports


def test_rtl_block_design_for_every_board(rtl_project, tmp_path):
    board, out, repo, design = rtl_project
    _fresh(out)
    rec = run_tcl(out / "scripts" / "bd.tcl", tmp_path, ACCELGEN_BOARD_REPO=str(repo))
    ports = design["board"]
    bus = ports["bus_bits"]
    ports_in = {p["name"]: p for p in ports["inputs"]}
    ports_out = {p["name"]: p for p in ports["outputs"]}
    check_block_design(rec, board, f"module:{ports['top']}", bus, ports_in, ports_out)
    # every source of the board's module is added, from the build's rtl/ directory
    added = {Path(f).resolve() for c in calls(rec, "add_files") for a in c if not a.startswith("-") for f in a.split()}
    assert {(out / "rtl" / f).resolve() for f in ports["files"]} <= added
    accel_cell = next(i for i, c in enumerate(rec["calls"]) if c[0] == "create_bd_cell" and c[-1] == "accel")
    assert index(rec, "add_files") < index(rec, "update_compile_order") < accel_cell
    # the ports the block design connects are the wrapper's, at the widths the DMAs move
    verilog = verilog_ports(out / "rtl" / "rtl" / f"{ports['top']}.v", ports["top"])
    for name in [*ports_in, *ports_out]:
        assert verilog[f"{name}_tdata"] == bus
        assert {f"{name}_tvalid", f"{name}_tready", f"{name}_tlast"} <= set(verilog)
    lite = {n[len("s_axi_control_") :] for n in verilog if n.startswith("s_axi_control_")}
    assert lite == {"awaddr", "awvalid", "awready", "wdata", "wstrb", "wvalid", "wready", "bresp", "bvalid", "bready",
                    "araddr", "arvalid", "arready", "rdata", "rresp", "rvalid", "rready"}  # fmt: skip
    assert 2 ** verilog["s_axi_control_awaddr"] > ports["control"]["reps"]
    assert {"ap_clk", "ap_rst_n"} <= set(verilog)
    model = RTL_MODEL.stem
    assert (out / "bitstream" / f"{model}.bit").is_file() and (out / "bitstream" / f"{model}.hwh").is_file()


def test_rtl_block_design_checks_board_files_and_timing(rtl_project, tmp_path):
    board, out, repo, _ = rtl_project
    _fresh(out)
    bd = out / "scripts" / "bd.tcl"
    rec = run_tcl(bd, tmp_path)
    assert rec["exit"] == "error" and board.board_part in rec["error"] and "--board-repo" in rec["error"]
    rec = run_tcl(bd, tmp_path, ACCELGEN_BOARD_REPO=str(repo), STANDIN_WNS="-0.4")
    assert rec["exit"] == "error" and "timing not met" in rec["error"] and "-0.4" in rec["error"]
    assert (out / "bitstream" / "timing.rpt").is_file() and not list((out / "bitstream").glob("*.bit"))


def test_rtl_block_design_refuses_a_missing_source(rtl_project, tmp_path):
    """The stand-in's module-reference check can fail: without the wrapper's file there is no module."""
    board, out, repo, design = rtl_project
    _fresh(out)
    wrapper = out / "rtl" / "rtl" / f"{design['board']['top']}.v"
    saved = wrapper.read_text()
    try:
        wrapper.write_text("// emptied\n")
        rec = run_tcl(out / "scripts" / "bd.tcl", tmp_path, ACCELGEN_BOARD_REPO=str(repo))
    finally:
        wrapper.write_text(saved)
    assert rec["exit"] == "error" and design["board"]["top"] in rec["error"]
