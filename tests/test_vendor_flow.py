"""The vendor flow around the tools: Vivado's timing summary parsed, the timing verdict, the DMA
settings, the board repository option, the generated Makefile's dependencies, and `accelgen
build --synth on` end to end with stand-in vitis_hls / vivado executables (tclsh running the
generated scripts under tests/tcl/standins.tcl)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from accelgen import vendor
from accelgen.cli import main
from accelgen.errors import InputError
from accelgen.vendor_reports import parse_vivado_timing

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "models" / "qdq_cnn_perchannel_residual.onnx"
STANDINS = ROOT / "tests" / "tcl" / "standins.tcl"

_COLUMNS = ["WNS(ns)", "TNS(ns)", "TNS Failing Endpoints", "TNS Total Endpoints", "WHS(ns)", "THS(ns)",
            "THS Failing Endpoints", "THS Total Endpoints", "WPWS(ns)", "TPWS(ns)", "TPWS Failing Endpoints",
            "TPWS Total Endpoints"]  # fmt: skip


def _table(values: list[str], columns: list[str] = _COLUMNS, lead: str = "") -> str:
    """A table as report_timing_summary lays one out: names, dashes under them, values right-aligned."""
    widths = [max(len(c), len(v)) for c, v in zip(columns, values)]
    head = lead + "".join(f"  {c:>{w}}" for c, w in zip(columns, widths))
    dash = " " * len(lead) + "".join(f"  {'-' * len(c):>{w}}" for c, w in zip(columns, widths))
    row = " " * len(lead) + "".join(f"  {v:>{w}}" for v, w in zip(values, widths))
    return f"{head}\n{dash}\n{row}\n"


def timing_report(values: list[str], verdict: str) -> str:
    banner = "-" * 96
    return (
        f"Copyright 1986-2023 Xilinx, Inc. All Rights Reserved.\n{banner}\n| Tool Version : Vivado v.2023.2\n"
        f"| Command      : report_timing_summary -file timing.rpt\n{banner}\n\nTiming Summary Report\n\n{banner}\n"
        "| Timer Settings\n| --------------\n" + banner + "\n\n  Enable Multi Corner Analysis    :  Yes\n\n"
        "check_timing report\n\nTable of Contents\n-----------------\n1. checking no_clock (0)\n\n\n"
        f"{banner}\n| Design Timing Summary\n| ---------------------\n{banner}\n\n"
        + _table(values)
        + f"\n\n{verdict}\n\n\n{banner}\n| Clock Summary\n| -------------\n{banner}\n\n"
        "Clock       Waveform(ns)         Period(ns)      Frequency(MHz)\n-----       ------------         ----------      --------------\n"
        "clk_pl_0    {0.000 2.000}        4.000           250.000\n\n\n"
        f"{banner}\n| Intra Clock Table\n| -----------------\n{banner}\n\n"
        # a later table with the same column names must not be read instead
        + _table(["9.999", "0.000", "0", "10"], _COLUMNS[:4], lead="Clock   ").replace("        9.999", "clk_pl_0 9.999")
    )


def test_timing_summary_of_a_failing_design():
    text = timing_report(
        ["-0.214", "-12.345", "87", "40211", "0.011", "0.000", "0", "40195", "1.020", "0.000", "0", "16833"],
        "Timing constraints are not met.",
    )
    t = parse_vivado_timing(text, "timing.rpt")
    assert t["wns_ns"] == pytest.approx(-0.214) and t["tns_ns"] == pytest.approx(-12.345)
    assert t["tns_failing_endpoints"] == 87 and t["tns_total_endpoints"] == 40211
    assert t["whs_ns"] == pytest.approx(0.011) and t["ths_ns"] == 0 and t["wpws_ns"] == pytest.approx(1.02)
    assert t["met"] is False


def test_timing_summary_of_a_met_and_of_an_unconstrained_design():
    met = parse_vivado_timing(
        timing_report(["0.152", "0.000", "0", "9000", "0.020", "0.000", "0", "9000", "1.500", "0.000", "0", "4000"],
                      "All user specified timing constraints are met."), "t.rpt")  # fmt: skip
    assert met["wns_ns"] == pytest.approx(0.152) and met["met"] is True
    free = parse_vivado_timing(
        timing_report(["inf", "0.000", "0", "0", "inf", "0.000", "0", "0", "NA", "NA", "NA", "NA"], ""), "t.rpt"
    )
    assert free["wns_ns"] == float("inf") and free["wpws_ns"] is None and free["met"] is None


def test_timing_summary_errors_name_the_file():
    with pytest.raises(InputError, match="bad.rpt.*Design Timing Summary"):
        parse_vivado_timing("Utilization Design Information\n", "bad.rpt")
    cut = timing_report(["0.1"] * 12, "").replace("  0.1\n", "\n", 1)
    with pytest.raises(InputError, match="bad.rpt: .*12 columns but 11 values"):
        parse_vivado_timing(cut, "bad.rpt")


def test_timing_verdict():
    ok = {"wns_ns": 0.1, "tns_ns": 0.0, "whs_ns": 0.02}
    bad = {"wns_ns": -0.25, "tns_ns": -3.0, "whs_ns": 0.02}
    assert vendor.check_timing(ok, clock_mhz=250, allow=False, report="r") == "met"
    assert vendor.check_timing(None, clock_mhz=250, allow=False, report="r") == "unknown"
    assert vendor.check_timing(bad, clock_mhz=250, allow=True, report="r") == "violated (allowed)"
    with pytest.raises(vendor.TimingViolation, match=r"at 250 MHz: WNS -0.25 ns, TNS -3 ns.*--allow-timing-violation"):
        vendor.check_timing(bad, clock_mhz=250, allow=False, report="r")
    with pytest.raises(vendor.TimingViolation, match="WHS -0.01"):
        vendor.check_timing({**ok, "whs_ns": -0.01}, clock_mhz=250, allow=False, report="r")
    assert vendor.TimingViolation("x").exit_code == 1


def test_overlay_only_with_timing_met_or_allowed(tmp_path):
    (tmp_path / "bitstream").mkdir()
    for name in ("m.bit", "m.hwh"):
        (tmp_path / "bitstream" / name).write_text("x")
    run = tmp_path / "scripts" / "m_bd" / "m_bd.runs" / "impl_1"
    run.mkdir(parents=True)
    (run / "design_1_wrapper.bit").write_text("x")
    assert vendor.overlay_files(tmp_path, None) == []
    assert vendor.overlay_files(tmp_path, {"skipped": "--synth off"}) == []
    assert vendor.overlay_files(tmp_path, {"timing_status": "unknown"}) == []
    found = vendor.overlay_files(tmp_path, {"timing_status": "met"})
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["bitstream/m.bit", "bitstream/m.hwh"]
    assert len(vendor.overlay_files(tmp_path, {"timing_status": "violated (allowed)"})) == 2


@pytest.mark.parametrize("bus", [8, 32, 64, 128, 512])
def test_dma_settings(bus):
    d = vendor.dma_settings(bus)
    assert d["mm_data_width"] >= bus and d["mm_data_width"] in (32, 64, 128, 256, 512, 1024)
    assert 2 ** d["length_width"] - 1 >= d["max_transfer_bytes"] and d["length_width"] <= 26
    assert d["max_transfer_bytes"] % (bus // 8) == 0 and d["max_transfer_bytes"] > 2**26 - 1 - bus // 8
    small = vendor.dma_settings(bus, max_transfer_bytes=1000 * bus // 8)
    assert 2 ** (small["length_width"] - 1) <= max(1000 * bus // 8, 128) < 2 ** small["length_width"]


def test_dma_settings_reject_what_the_dma_cannot_do():
    with pytest.raises(InputError, match="bus width 24"):
        vendor.dma_settings(24)
    with pytest.raises(InputError, match="27-bit length register"):
        vendor.dma_settings(64, max_transfer_bytes=2**26)


def test_board_repo_option_and_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(vendor.ENV_BOARD_REPO, raising=False)
    assert vendor.board_repo(None) is None
    assert vendor.board_repo(str(tmp_path)) == str(tmp_path.resolve())
    monkeypatch.setenv(vendor.ENV_BOARD_REPO, str(tmp_path))
    assert vendor.board_repo(None) == str(tmp_path.resolve())
    with pytest.raises(InputError, match="--board-repo .*nowhere: no such directory"):
        vendor.board_repo(str(tmp_path / "nowhere"))
    monkeypatch.setenv(vendor.ENV_BOARD_REPO, str(tmp_path / "gone"))
    with pytest.raises(InputError, match="ACCELGEN_BOARD_REPO .*gone: no such directory"):
        vendor.board_repo(None)
    env = vendor.tool_env(board_repo="/r", cosim=True, allow_timing=False)
    assert env["ACCELGEN_BOARD_REPO"] == "/r" and env["ACCELGEN_COSIM"] == "1"
    assert env["ACCELGEN_ALLOW_TIMING_VIOLATION"] == "0"


def test_bad_board_repo_option_exits_2(tmp_path, capsys):
    code = main(["build", str(MODEL), "-b", "ultra96", "--synth", "off", "--no-csim", "-o", str(tmp_path / "o"),
                 "--board-repo", str(tmp_path / "nowhere")])  # fmt: skip
    assert code == 2
    assert "--board-repo" in capsys.readouterr().err and not (tmp_path / "o").exists()


# -- the generated Makefile -------------------------------------------------------------------------

needs_make = pytest.mark.skipif(shutil.which("make") is None or shutil.which("tclsh") is None,
                                reason="needs make and tclsh")  # fmt: skip


def _fake_tools(bin_dir: Path, log: Path) -> None:
    """vitis_hls / vivado that run the script given under the tcl stand-ins and log each run."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    tclsh = shutil.which("tclsh")
    for tool in ("vitis_hls", "vivado"):
        exe = bin_dir / tool
        exe.write_text(
            "#!/bin/sh\n"
            f'for a in "$@"; do script="$a"; done\n'
            f'echo "{tool} $script cosim=$ACCELGEN_COSIM repo=$ACCELGEN_BOARD_REPO" >> "{log}"\n'
            f'exec "{tclsh}" "{STANDINS}" "$PWD/record_{tool}.json" "$script"\n'
        )
        exe.chmod(0o755)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from accelgen.boards import get_board
    from accelgen.codegen import generate
    from accelgen.pipeline import compile_model

    out = tmp_path_factory.mktemp("make")
    generate(compile_model(MODEL), None, out, board=get_board("zcu104"))
    return out


def _make(out: Path, bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STANDIN_SHIPPED_BOARDS": "xilinx.com:zcu104:part0:1.1", **env}
    return subprocess.run([shutil.which("make"), "-C", str(out / "scripts"), *args], env=full,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@needs_make
def test_makefile_reruns_the_tools_only_when_their_inputs_change(generated, tmp_path):
    log = tmp_path / "runs.log"
    _fake_tools(tmp_path / "bin", log)
    proc = _make(generated, tmp_path / "bin", "bitstream")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = log.read_text().splitlines()
    assert [r.split()[0] for r in runs] == ["vitis_hls", "vivado"] and "cosim=0" in runs[0]
    assert _make(generated, tmp_path / "bin", "bitstream").returncode == 0
    assert len(log.read_text().splitlines()) == 2, "an up-to-date bitstream reran the tools"
    (generated / "hls" / "top.cpp").touch()
    assert _make(generated, tmp_path / "bin", "bitstream").returncode == 0
    assert [r.split()[0] for r in log.read_text().splitlines()[2:]] == ["vitis_hls", "vivado"]
    record = json.loads((generated / "scripts" / "record_vitis_hls.json").read_text())
    assert not [c for c in record["calls"] if c[0] == "cosim_design"]
    assert _make(generated, tmp_path / "bin", "cosim").returncode == 0
    record = json.loads((generated / "scripts" / "record_vitis_hls.json").read_text())
    assert [c for c in record["calls"] if c[0] == "cosim_design"]


@needs_make
def test_makefile_ap_types_need_no_python(generated, tmp_path):
    """The ap_types directory was resolved when the Makefile was generated: make finds it with
    no Python on PATH, and says what to do when it is gone."""
    show = ["--eval", "show-ap-types: ; $(info AP_TYPES=$(AP_TYPES))", "show-ap-types"]
    proc = subprocess.run([shutil.which("make"), "-C", str(generated / "scripts"), "-s", *show],
                          env={"PATH": str(tmp_path)}, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (line,) = [t for t in proc.stdout.splitlines() if t.startswith("AP_TYPES=")]
    assert (Path(line[len("AP_TYPES=") :]) / "ap_int.h").is_file()
    proc = subprocess.run([shutil.which("make"), "-C", str(generated / "scripts"), "ap_types",
                           f"AP_TYPES={tmp_path / 'none'}"], env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "ap_int.h not found" in proc.stderr and "XILINX_HLS" in proc.stderr


# -- accelgen build --synth on, with the stand-in tools ------------------------------------------------


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="needs tclsh")
def test_build_fails_on_negative_slack_and_keeps_the_bitstream_out(tmp_path, monkeypatch, capsys):
    _fake_tools(tmp_path / "bin", tmp_path / "runs.log")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setenv("STANDIN_WNS", "-0.214")
    monkeypatch.delenv("ACCELGEN_BOARD_REPO", raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "boards.txt").write_text("avnet.com:ultra96v2:part0:1.2\n")
    out = tmp_path / "out"
    args = ["build", str(MODEL), "-b", "ultra96", "--no-csim", "--synth", "on", "-o", str(out)]

    assert main(args) == 1  # no board files for the Ultra96-V2 in this "installation"
    err = capsys.readouterr().err
    assert "no board files for board part avnet.com:ultra96v2:part0:1.2" in err and "--board-repo" in err

    assert main([*args, "--board-repo", str(repo)]) == 1
    err = capsys.readouterr().err
    assert "timing not met" in err and "WNS -0.214 ns" in err and "--allow-timing-violation" in err
    (report,) = re.findall(r"see (\S+timing\.rpt)", err)  # kept to read: the partial build stays
    assert parse_vivado_timing(Path(report).read_text())["wns_ns"] == pytest.approx(-0.214)
    assert not list(out.rglob("design.bit")) and not list((out / "bitstream").glob("*.bit"))
    assert "repo=" + str(repo) in (tmp_path / "runs.log").read_text()

    assert main([*args, "--board-repo", str(repo), "--allow-timing-violation", "--cosim"]) == 0
    report = json.loads((out / "report.json").read_text())
    impl = report["implementation"]
    assert impl["timing_status"] == "violated (allowed)" and impl["timing"]["wns_ns"] == pytest.approx(-0.214)
    assert (out / "driver" / "design.bit").is_file() and (out / "driver" / "design.hwh").is_file()
    assert "cosim=1" in (tmp_path / "runs.log").read_text().splitlines()[-2]
    accel = json.loads((out / "driver" / "accel.json").read_text())
    limit = accel["hardware"]["dma_max_transfer_bytes"]
    bd = json.loads((out / "scripts" / "record_vivado.json").read_text())
    for cell, vlnv in bd["cells"].items():
        if vlnv.startswith("xilinx.com:ip:axi_dma"):  # the register counts the driver's longest transfer
            assert 2 ** int(bd["properties"][cell]["CONFIG.c_sg_length_width"]) - 1 >= limit
    assert limit % (accel["hardware"]["bus_bits"] // 8) == 0
    assert "## Vivado implementation" in (out / "report.md").read_text()
