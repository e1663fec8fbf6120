"""OUTDIR/README.md, written by every build (dataflow and rtl): it lists what the directory
holds, its next steps come from the board's file, and the overlay file names it gives are the
ones bd.tcl writes, `make overlay` copies and the driver loads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelgen.cli import main
from accelgen.outdir_readme import render_outdir_readme
from accelgen.runtime.pynq_backend import _bitstream

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits_cnn_w4a8.onnx"
MLP = ROOT / "tests" / "models" / "qonnx_mlp_w2a2.onnx"


def plain(markdown: str) -> str:
    """The text of Markdown with its backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def on_disk(outdir: Path) -> set[str]:
    """The top-level entries of a build directory (not the hidden build records)."""
    return {p.name for p in outdir.iterdir() if not p.name.startswith(".")}


def listed(readme: str) -> set[str]:
    """The paths of the README's "What is here" table."""
    return set(re.findall(r"^\| `([^`]+)` \|", readme, re.M))


@pytest.fixture(scope="module")
def dataflow(tmp_path_factory):
    out = tmp_path_factory.mktemp("dataflow") / "out"
    assert main(["build", str(EXAMPLE), "--board", "pynq-z2", "-o", str(out), "--no-csim"]) == 0
    return out


@pytest.fixture(scope="module")
def rtl(tmp_path_factory):
    out = tmp_path_factory.mktemp("rtl") / "out"
    argv = ["build", str(MLP), "--board", "ultra96", "--arch", "rtl", "--no-csim", "--synth", "off", "-o", str(out)]
    return out, argv


def test_dataflow_readme_lists_exactly_what_is_there(dataflow):
    readme = (dataflow / "README.md").read_text()
    assert listed(readme) == on_disk(dataflow)
    assert "C-simulation: not run (--no-csim)" in plain(readme)


def test_next_steps_come_from_the_board_file(dataflow):
    board = tomllib.loads((ROOT / "boards" / "pynq-z2.toml").read_text())
    text = plain((dataflow / "README.md").read_text())
    for field in ("title", "part", "board_part", "pynq_notes"):
        assert board[field] in text, field
    assert "Ultra96" not in text


def test_a_board_of_ones_own_gets_its_own_next_steps(tmp_path, capsys):
    board = tmp_path / "mine.toml"
    board.write_text(
        'name = "mine"\ntitle = "Board Of Mine"\npart = "xczu9eg-ffvb1156-2-e"\nboard_part = "me.org:mine:part0:9.9"\n'
        'processing_system = "zynqmp"\ndefault_clock_mhz = 123\nddr_bandwidth_gbps = 1.0\n'
        'pynq_notes = "the image I flashed"\n[resources]\nlut = 300000\nff = 600000\ndsp = 2500\nbram18 = 1800\n'
        "uram = 0\nlutram = 140000\n"
    )
    out = tmp_path / "dse"
    assert main(["dse", str(EXAMPLE), "--board", str(board), "-o", str(out)]) == 0
    text = plain(render_outdir_readme(json.loads((out / "report.json").read_text()), out))
    for shown in ("Board Of Mine", "xczu9eg-ffvb1156-2-e", "me.org:mine:part0:9.9", "the image I flashed", "123 MHz"):
        assert shown in text


def test_overlay_names_agree_between_bd_tcl_makefile_driver_and_readme(dataflow, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(dataflow, out, symlinks=True)
    bd = (out / "scripts" / "bd.tcl").read_text()
    written = re.findall(r"^file copy .*\[file join \$out_dir ([\w.]+)\]$", bd, re.M)
    assert sorted(Path(w).suffix for w in written) == [".bit", ".hwh"]
    readme = (out / "README.md").read_text()
    for name in written:
        assert f"`bitstream/{name}`" in readme
    # what Vivado would leave: the IP and then the bitstream, newer than their inputs
    make = (out / "scripts" / "Makefile").read_text()
    (ip,) = re.findall(r"^IP := \.\./(\S+)$", make, re.M)
    stamp = time.time() + 60
    for rel, content in [(ip, b"ip"), *((f"bitstream/{w}", w.encode()) for w in written)]:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(content)
        os.utime(out / rel, (stamp, stamp))
        stamp += 10
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # no vivado: make must not want to run it
    proc = subprocess.run(["make", "overlay"], cwd=out / "scripts", env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    loaded = _bitstream(out / "driver")
    assert loaded.read_bytes() == next(w for w in written if w.endswith(".bit")).encode()
    assert loaded.with_suffix(".hwh").read_bytes() == next(w for w in written if w.endswith(".hwh")).encode()
    assert f"`{loaded.name}` and `{loaded.with_suffix('.hwh').name}`" in readme


def test_rtl_build_writes_its_readme_and_a_readable_summary(rtl, capsys):
    out, argv = rtl
    assert main(argv) == 0
    summary = capsys.readouterr().out
    readme = (out / "README.md").read_text()
    assert listed(readme) == on_disk(out)
    assert list((out / "rtl" / "rtl").glob("*.v"))
    # the board steps name what the build wrote: the block design, its Makefile's targets, the driver
    board_targets = set(re.findall(r"^(\w+):", (out / "scripts" / "Makefile").read_text(), re.M))
    assert {"bitstream", "overlay"} <= board_targets and "make bitstream overlay" in readme
    assert (out / "scripts" / "bd.tcl").is_file() and "scripts/bd.tcl" in readme
    assert (out / "driver" / "run_accelerator.py").is_file() and "run_accelerator.py" in readme
    targets = set(re.findall(r"^(\w+):", (out / "rtl" / "Makefile").read_text(), re.M))
    assert {"sim", "synth"} <= targets and "make -C rtl sim" in readme and "make -C rtl synth" in readme
    assert "Ultra96-V2" in plain(readme)
    # the summary: one row per resource with its estimate, no raw dict
    report = json.loads((out / "report.json").read_text())
    lut = report["rtl"]["resources"]["lut"]["estimate"]
    assert re.search(rf"lut\s+\S?\s*{lut:,} \(estimate\): [\d.]+% of 70,560", summary), summary
    assert '{"' not in summary and "README.md" in summary
