"""Synthesize a generated design with Yosys and read back LUT, FF, CARRY, DSP and logic levels.

``synth/synth.ys`` runs ``synth_xilinx -family xcup -flatten -nowidelut`` (LUT6 without
the MUXF7/8 wide-function mapping that Yosys' default ABC script trades area for) and
writes ``synth/stat.txt`` and the mapped netlist ``synth/netlist.json``. Logic levels are
counted here on that netlist, bit by bit: the most LUT, CARRY and MUXF cells on any path
from a port or flip-flop output to a port or flip-flop input (inverters are free: the
vendor tools fold them into the LUTs). Yosys' own ``ltp`` works on whole cells and so
sees false loops through carry chains; it is not used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accelgen.errors import InputError, InternalError

#: cells that are one logic level; FFs end paths; the rest (buffers, inverters) are free
LEVEL_CELLS = re.compile(r"^(LUT[1-6]|CARRY4|CARRY8|MUXF[789])$")
FF_CELLS = re.compile(r"^(FD[A-Z]*|SRL16E|SRLC32E)$")


def yosys_available() -> bool:
    return shutil.which("yosys") is not None


def yosys_version() -> str:
    out = subprocess.run(["yosys", "-V"], capture_output=True, text=True, check=False).stdout.strip()
    return out.split(" (")[0] if out else "unknown"


def synth_yosys(
    outdir: str | os.PathLike,
    *,
    timeout: float = 3600.0,
    progress: Callable[[str], None] | None = None,
    heartbeat: float = 15.0,
) -> dict[str, Any]:
    """Run ``synth/synth.ys`` in ``outdir``; return the cell counts and logic levels.

    ``lut`` counts LUT1..LUT6 plus SRL shift registers; ``carry`` counts carry cells
    (Yosys 0.23 maps every carry chain to 4-bit CARRY4 cells even for UltraScale+, whose
    CARRY8 holds 8 bits; ``carry8_equivalent`` is half of it); ``levels`` is the deepest
    register-to-register path in cells. ``progress`` gets a line every ``heartbeat``
    seconds while Yosys runs: the elapsed time and the pass it is in (read from its log).
    """
    if not yosys_available():
        raise InputError("yosys is not installed (apt-get install yosys)")
    outdir = Path(outdir)
    script = outdir / "synth" / "synth.ys"
    if not script.is_file():
        raise InputError(f"{outdir} is not a generated RTL design (no synth/synth.ys)")
    t0 = time.perf_counter()
    returncode, stderr = _run_with_heartbeat(outdir, timeout, progress, heartbeat)
    seconds = time.perf_counter() - t0
    if returncode != 0:
        raise InternalError(f"yosys failed on {outdir} (exit {returncode}):\n{stderr[-2000:]}")
    cells = parse_stat((outdir / "synth" / "stat.txt").read_text())
    netlist = json.loads((outdir / "synth" / "netlist.json").read_text())
    luts = {k: v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k)}
    srl = sum(v for k, v in cells.items() if k.startswith("SRL"))
    carry4, carry8 = cells.get("CARRY4", 0), cells.get("CARRY8", 0)
    return {
        "tool": yosys_version(),
        "command": "synth_xilinx -family xcup -flatten -nowidelut",
        "lut": sum(luts.values()) + srl,
        "lut_by_inputs": luts,
        "srl": srl,
        "ff": sum(v for k, v in cells.items() if k.startswith("FD")),
        "carry": carry4 + carry8,
        "carry_cell": "CARRY8" if carry8 and not carry4 else "CARRY4",
        "carry8_equivalent": carry8 + (carry4 + 1) // 2,
        "dsp": sum(v for k, v in cells.items() if k.startswith("DSP")),
        "muxf": sum(v for k, v in cells.items() if k.startswith("MUXF")),
        "bram": sum(v for k, v in cells.items() if k.startswith("RAMB")),
        "levels": logic_levels(netlist),
        "cells": cells,
        "seconds": round(seconds, 1),
    }


#: a pass header in Yosys' log, e.g. "2.14. Executing ABC pass (technology mapping using ABC)."
_PASS = re.compile(r"^(\d+(?:\.\d+)*)\. Executing (.+?)\.?$")


def current_pass(log_text: str) -> str | None:
    """The last pass Yosys' log says it started ("ABC pass (technology mapping ...)"), or None."""
    found = None
    for line in log_text.splitlines():
        m = _PASS.match(line.strip())
        if m:
            found = m.group(2)
    return found


def _run_with_heartbeat(outdir: Path, timeout: float, progress, heartbeat: float) -> tuple[int, str]:
    """Run the Yosys script; every ``heartbeat`` seconds tell ``progress`` how long and where."""
    log = outdir / "synth" / "yosys.log"
    log.unlink(missing_ok=True)
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(["yosys", "-q", "-l", "synth/yosys.log", "-s", "synth/synth.ys"], cwd=outdir,
                                stdout=subprocess.DEVNULL, stderr=err, text=True)  # fmt: skip
        t0 = time.monotonic()
        next_beat = t0 + heartbeat
        try:
            while True:
                try:
                    proc.wait(timeout=min(1.0, max(0.05, next_beat - time.monotonic())))
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if now - t0 > timeout:
                    proc.kill()
                    proc.wait()
                    raise InternalError(f"yosys did not finish on {outdir} within {timeout:.0f} s (see {log})")
                if progress is not None and now >= next_beat:
                    text = log.read_text(errors="replace") if log.is_file() else ""
                    where = current_pass(text)
                    progress(f"yosys running {now - t0:.0f} s" + (f", in {where}" if where else ""))
                    next_beat = now + heartbeat
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        err.seek(0)
        return proc.returncode, err.read()


def parse_stat(text: str) -> dict[str, int]:
    """Cell type -> count from Yosys ``stat`` output (the last module listed: the top)."""
    blocks = text.split("Number of cells:")
    if len(blocks) < 2:
        raise InternalError("no 'Number of cells' in Yosys stat output")
    cells = {}
    for line in blocks[-1].splitlines()[1:]:
        m = re.fullmatch(r"\s+(\S+)\s+(\d+)\s*", line)
        if not m:
            if cells:
                break
            continue
        cells[m.group(1)] = int(m.group(2))
    return cells


def logic_levels(netlist: dict[str, Any]) -> int:
    """Deepest path in level cells between ports / flip-flops of a flat mapped netlist."""
    modules = netlist["modules"]
    top = next(name for name, m in modules.items() if m.get("attributes", {}).get("top"))
    cells = modules[top]["cells"]
    driver: dict[int, tuple[str, str]] = {}
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        driver[b] = (name, port)
    memo: dict[int, int] = {}
    visiting: set[int] = set()  # guards against a combinational loop in a broken netlist

    def arrival(bit: int | str) -> int:
        """Level cells on the deepest path ending at this net bit (iterative DFS)."""
        if not isinstance(bit, int):
            return 0
        stack = [bit]
        while stack:
            b = stack[-1]
            if b in memo:
                stack.pop()
                continue
            pending = [
                d for d in _fanin(cells, driver, b) if isinstance(d, int) and d not in memo and d not in visiting
            ]
            if pending and b not in visiting:
                visiting.add(b)
                stack.extend(pending)
                continue
            stack.pop()
            visiting.discard(b)
            src = driver.get(b)
            if src is None or FF_CELLS.match(cells[src[0]]["type"]):
                memo[b] = 0
                continue
            cost = 1 if LEVEL_CELLS.match(cells[src[0]]["type"]) else 0
            memo[b] = cost + max((memo.get(d, 0) for d in _fanin(cells, driver, b) if isinstance(d, int)), default=0)
        return memo[bit]

    endpoints = []
    for cell in cells.values():
        kind = cell["type"]
        if FF_CELLS.match(kind) or kind in ("OBUF", "OBUFT"):
            for port, bits in cell["connections"].items():
                if cell["port_directions"].get(port) == "input" and port not in ("C", "CLK"):
                    endpoints.extend(bits)
    return max((arrival(b) for b in endpoints), default=0)


_CARRY_PORTS = ("S", "DI")


def _fanin(cells: dict[str, Any], driver: dict[int, tuple[str, str]], bit: int) -> list[int | str]:
    """The net bits the driver of ``bit`` reads to produce it (carry cells: bit by bit)."""
    src = driver.get(bit)
    if src is None:
        return []
    name, port = src
    cell = cells[name]
    kind = cell["type"]
    if FF_CELLS.match(kind):
        return []
    conns = cell["connections"]
    if kind in ("CARRY4", "CARRY8"):
        i = conns[port].index(bit)  # O[i] and CO[i] depend on bits 0..i and the carry in
        ins = [b for p in _CARRY_PORTS for b in conns.get(p, [])[: i + 1]]
        return ins + conns.get("CI", []) + conns.get("CYINIT", []) + conns.get("CI_TOP", [])
    return [b for p, bits in conns.items() if cell["port_directions"].get(p) == "input" for b in bits]
