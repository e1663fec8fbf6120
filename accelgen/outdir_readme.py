"""OUTDIR/README.md: what a build directory holds and the next steps on its board.

Written by the report stage of both architectures (dataflow and rtl) from the report, the
board's data (boards/*.toml, as ``report["board_info"]``) and the files the build wrote, so
what it says about file names is what is there. The structure is
``templates/outdir/README.md.j2``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelgen import __version__
from accelgen.runtime.pynq_backend import OVERLAY
from accelgen.templating import environment

#: every top-level entry a build may write, and what it is (listed when present)
CONTENTS: dict[str, str] = {
    "README.md": "this file",
    "report.md": "the report: per-layer table, totals, utilisation, what was verified",
    "report.png": "the report's plots",
    "report.json": "the report as data",
    "folding.json": "the folding plan (pe/simd per layer); edit it and pass it back with `--folding`",
    "ir.json": "the lowered integer IR",
    "hls": "the Vitis HLS project: top.cpp, per-layer config and parameters, testbench, golden vectors",
    "scripts": "hls.tcl, bd.tcl (the Vivado block design) and a Makefile (`make csim`, `hls`, `bitstream`, `overlay`)",
    "csim": "the C-simulation emulator library (`accelgen run` on this directory uses it)",
    "ip": "the exported Vitis HLS IP (after synthesis)",
    "bitstream": "the Vivado bitstream, hardware handoff, timing and utilisation reports (after synthesis)",
    "driver": "what the board needs: run_accelerator.py, notebook.ipynb, accelgen_runtime/, accel.json, vectors/",
    "rtl": "the fully unrolled Verilog core, its testbenches, Yosys script and Makefile (`make sim`, `make synth`)",
    "logs": "one log per build stage",
    "manifest.json": "the build's file hashes (a damaged directory is detected)",
}


def render_outdir_readme(report: dict[str, Any], outdir: Path, written: tuple[str, ...] = ()) -> str:
    """OUTDIR/README.md for the build in ``outdir`` whose report is ``report``; ``written``
    names the top-level files the report stage writes beside it."""
    from accelgen.vendor import bitstream_name

    outdir = Path(outdir)
    present = {p.name for p in outdir.iterdir() if not p.name.startswith(".")} | set(written) | {"README.md"}
    csim = report.get("csim") or {}
    values = {
        "version": __version__,
        "report": report,
        "board": report["board_info"],
        "contents": [(name, what) for name, what in CONTENTS.items() if name in present],
        "extra": sorted(present - set(CONTENTS)),
        "verified": bool(csim.get("passed")),
        "vectors": csim.get("vectors"),
        "not_verified": csim.get("skipped") or "not run",
        "bitstream": bitstream_name(report["model"]),
        "overlay": OVERLAY,
        "has_overlay": (outdir / "driver" / f"{OVERLAY}.bit").is_file(),
        "has_vectors": (outdir / "driver" / "vectors" / "x.npy").is_file(),
    }
    name = "outdir/README_rtl.md.j2" if report.get("arch") == "rtl" else "outdir/README.md.j2"
    return environment().get_template(name).render(**values)
