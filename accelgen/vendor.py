"""The vendor tools (Vitis HLS, Vivado): found on PATH and run as logged subprocesses with
timeouts (their reports are read by :mod:`accelgen.vendor_reports`). Nothing here is
needed when the tools are absent."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from accelgen.errors import AccelgenError, InputError

TOOLS = ("vitis_hls", "vivado")
HLS_TIMEOUT_S = 4 * 3600
VIVADO_TIMEOUT_S = 8 * 3600

#: environment variables the generated scripts read (``accelgen build`` sets them from its options)
ENV_BOARD_REPO = "ACCELGEN_BOARD_REPO"  # a Vivado board repository (board files of the board part)
ENV_COSIM = "ACCELGEN_COSIM"  # "1": hls.tcl runs the RTL co-simulation
ENV_ALLOW_TIMING = "ACCELGEN_ALLOW_TIMING_VIOLATION"  # "1": bd.tcl keeps a bitstream with negative slack

#: AXI DMA (PG021) limits: memory-map data widths, stream widths, the buffer length register
DMA_MM_WIDTHS = (32, 64, 128, 256, 512, 1024)
DMA_STREAM_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)
DMA_LENGTH_WIDTH_RANGE = (8, 26)


class VendorToolError(AccelgenError):
    """A vendor tool failed or timed out; the message points to its log."""

    exit_code = 1


class TimingViolation(VendorToolError):
    """The implemented design has negative slack (and ``--allow-timing-violation`` was not given)."""


def dma_settings(bus_bits: int, max_transfer_bytes: int | None = None) -> dict[str, int]:
    """The AXI DMA configuration of a design whose streams are ``bus_bits`` wide.

    The memory-map width is the smallest PG021 width not narrower than the stream (PG021:
    the stream may not be wider than the memory map). The length register is sized for the
    largest transfer the driver makes, ``max_transfer_bytes`` (default: the longest whole
    number of bus words the widest register, 26 bits, can count); the driver splits a batch
    into transfers of at most that many bytes (accel.json ``dma_max_transfer_bytes``).
    """
    if bus_bits not in DMA_STREAM_WIDTHS:
        raise InputError(
            f"AXI-Stream bus width {bus_bits}: the AXI DMA takes streams of "
            f"{', '.join(map(str, DMA_STREAM_WIDTHS))} bits only"
        )
    lo, hi = DMA_LENGTH_WIDTH_RANGE
    word = bus_bits // 8
    if max_transfer_bytes is None:
        max_transfer_bytes = (2**hi - 1) // word * word
    if max_transfer_bytes < word:
        raise InputError(f"the largest DMA transfer ({max_transfer_bytes} bytes) is shorter than one bus word")
    width = max(lo, int(max_transfer_bytes).bit_length())
    if width > hi:
        raise InputError(
            f"a DMA transfer of {max_transfer_bytes} bytes needs a {width}-bit length register; the AXI DMA's "
            f"is at most {hi} bits ({2**hi - 1} bytes): transfer in chunks"
        )
    return {
        "stream_data_width": bus_bits,
        "mm_data_width": next(w for w in DMA_MM_WIDTHS if w >= bus_bits),
        "length_width": width,
        "max_transfer_bytes": int(max_transfer_bytes),
    }


def board_repo(value: str | None) -> str | None:
    """``--board-repo DIR`` (else ``$ACCELGEN_BOARD_REPO``): an existing directory, absolute."""
    source = "--board-repo"
    if not value:
        value, source = os.environ.get(ENV_BOARD_REPO) or None, ENV_BOARD_REPO
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise InputError(
            f"{source} {value}: no such directory (a Vivado board repository, e.g. a clone of "
            "Xilinx/XilinxBoardStore, holding the board files of the board part)"
        )
    return str(path.resolve())


def tool_env(*, board_repo: str | None = None, cosim: bool = False, allow_timing: bool = False) -> dict[str, str]:
    """The environment the vendor tools run in: ours plus the scripts' switches."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV_BOARD_REPO, ENV_COSIM, ENV_ALLOW_TIMING)}
    if board_repo:
        env[ENV_BOARD_REPO] = board_repo
    env[ENV_COSIM] = "1" if cosim else "0"
    env[ENV_ALLOW_TIMING] = "1" if allow_timing else "0"
    return env


_MAKE_PATH = re.compile(r"^[A-Za-z0-9_./+-]+$")


def make_path(path: Path | str | None) -> str:
    """``path`` if it can be written into a Makefile as it is, else "" (the Makefile then
    asks for AP_TYPES=...)."""
    text = str(path) if path else ""
    return text if _MAKE_PATH.match(text) else ""


def check_timing(timing: dict | None, *, clock_mhz: float | None, allow: bool, report: str) -> str:
    """The verdict on a parsed timing summary: "met", "violated (allowed)" or "unknown";
    :class:`TimingViolation` on negative slack unless ``allow``."""
    if not timing or timing.get("wns_ns") is None:
        return "unknown"
    wns, tns = timing["wns_ns"], timing.get("tns_ns")
    if wns >= 0 and (timing.get("whs_ns") is None or timing["whs_ns"] >= 0):
        return "met"
    if allow:
        return "violated (allowed)"
    at = f" at {clock_mhz:g} MHz" if clock_mhz else ""
    fmax = ""
    if clock_mhz and wns < 0 and math.isfinite(wns):
        fmax = f" (the design closes near {1000.0 / (1000.0 / clock_mhz - wns):.0f} MHz)"
    raise TimingViolation(
        f"timing not met{at}: WNS {wns:g} ns, TNS {tns:g} ns, WHS {timing.get('whs_ns')} ns{fmax}; see {report}. "
        "The bitstream is not copied into the driver. Lower the clock (accelgen build --clock MHZ) or pass "
        "--allow-timing-violation to keep it anyway"
    )


def find_tools() -> dict[str, str | None]:
    return {t: shutil.which(t) for t in TOOLS}


def synthesis_plan(mode: str) -> tuple[bool, str]:
    """Whether to synthesise, and why, for ``--synth auto|on|off``."""
    tools = find_tools()
    missing = [t for t, p in tools.items() if p is None]
    if mode == "off":
        return False, "--synth off"
    if mode == "on":
        if missing:
            raise InputError(
                f"--synth on needs {' and '.join(missing)} on PATH, and it is not found: install AMD "
                "Vitis/Vivado (2023.1 or newer) and source its settings64.sh, or use --synth auto/off"
            )
        return True, "requested (--synth on)"
    if mode != "auto":
        raise InputError(f"--synth must be auto, on or off, not '{mode}'")
    if missing:
        return False, f"{' and '.join(missing)} not on PATH"
    return True, "vitis_hls and vivado found on PATH"


def run_logged(cmd: list[str], cwd: Path, log: Path, timeout_s: float, env: dict[str, str] | None = None) -> float:
    """Run ``cmd`` with its output appended to ``log``; seconds taken. Kills the process
    group on timeout or interrupt so no tool keeps running behind a stopped build."""
    t0 = time.perf_counter()
    with open(log, "ab") as f:
        f.write(f"$ {' '.join(cmd)}  (in {cwd})\n".encode())
        f.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise VendorToolError(f"{cmd[0]} did not finish within {timeout_s / 3600:.1f} h; see {log}") from None
        except BaseException:
            _kill_group(proc)
            raise
    if code != 0:
        raise VendorToolError(f"{cmd[0]} failed (exit {code}); the last lines of {log}:\n{_tail(log)}")
    return time.perf_counter() - t0


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def synthesize(outdir: Path, log: Path, options, logger) -> dict:
    """Vitis HLS then Vivado on OUTDIR/scripts; the reports parsed, timing checked.

    ``options`` is the build's :class:`accelgen.config.BuildSettings` (board repository,
    ``cosim``, ``allow_timing_violation``). Raises :class:`TimingViolation` on negative slack
    unless allowed; bd.tcl then has not copied the bitstream out either.
    """
    from accelgen.vendor_reports import parse_vivado_timing, parse_vivado_utilization

    outdir = Path(outdir)
    scripts = outdir / "scripts"
    repo = options.board_repo or board_repo(None)
    allow = bool(options.allow_timing_violation)
    env = tool_env(board_repo=repo, cosim=options.cosim, allow_timing=allow)
    logger.info("Vitis HLS: co-simulation %s", "on (--cosim)" if options.cosim else "off (--cosim turns it on)")
    logger.info("Vivado: board part %s, board repository %s", options.board.board_part,
                repo or f"none (Vivado's own board files; --board-repo or ${ENV_BOARD_REPO} adds one)")  # fmt: skip
    # the scripts create their projects in scripts/ (bd.tcl finds the exported IP there)
    hls_s = run_logged(["vitis_hls", "-f", "hls.tcl"], scripts, log, HLS_TIMEOUT_S, env=env)
    timing_rpt = outdir / "bitstream" / "timing.rpt"
    try:
        vivado_s = run_logged(
            ["vivado", "-mode", "batch", "-source", "bd.tcl"], scripts, log, VIVADO_TIMEOUT_S, env=env
        )
    except VendorToolError:
        if timing_rpt.is_file():  # bd.tcl stops on negative slack after writing the report: say why
            timing = parse_vivado_timing(timing_rpt.read_text(errors="replace"), str(timing_rpt))
            check_timing(timing, clock_mhz=options.clock_mhz, allow=allow, report=str(timing_rpt))
        raise
    timing = (
        parse_vivado_timing(timing_rpt.read_text(errors="replace"), str(timing_rpt)) if timing_rpt.is_file() else None
    )
    status = check_timing(timing, clock_mhz=options.clock_mhz, allow=allow, report=str(timing_rpt))
    logger.info(
        "Vivado timing: %s%s", status, f" (WNS {timing['wns_ns']} ns, TNS {timing['tns_ns']} ns)" if timing else ""
    )
    if status == "unknown":
        logger.warning("no timing summary in %s: the bitstream is not copied into the driver", timing_rpt)
    csynth = next(outdir.rglob("csynth.xml"), None)
    util = outdir / "bitstream" / "utilization.rpt"
    bit = sorted((outdir / "bitstream").glob("*.bit"))
    return {
        "hls_s": hls_s,
        "vivado_s": vivado_s,
        "cosim": bool(options.cosim),
        "board_repo": repo,
        "csynth": str(csynth.relative_to(outdir)) if csynth else None,
        "utilization": parse_vivado_utilization(util.read_text(errors="replace")) if util.is_file() else None,
        "timing": timing,
        "timing_status": status,
        "bitstream": [str(p.relative_to(outdir)) for p in bit],
    }


def bitstream_name(model_name: str) -> str:
    """The basename bd.tcl gives the bitstream and its hardware handoff in OUTDIR/bitstream/
    (``<name>.bit``, ``<name>.hwh``); the driver loads them renamed to its overlay's name."""
    from accelgen.codegen.names import identifier

    return identifier(model_name)


def board_facts(board) -> dict[str, object]:
    """What the scripts and design.json say about a board (a name or :class:`accelgen.boards.Board`;
    None: the default board): name, part, board part, processing system, default clock."""
    from accelgen.boards import DEFAULT_BOARD, Board, get_board

    b = board if isinstance(board, Board) else get_board(board or DEFAULT_BOARD)
    return {"name": b.name, "part": b.part, "board_part": b.board_part, "processing_system": b.processing_system,
            "default_clock_mhz": float(b.default_clock_mhz)}  # fmt: skip


def script_values(facts: dict, clock_mhz: float, model_name: str, top: str, bus_bits: int) -> dict[str, object]:
    """The values templates/scripts read (bd_<ps>.tcl, the Makefiles, hls.tcl), one set for the
    dataflow and the RTL architecture: the board's facts (:func:`board_facts`), the clock, the model's identifier
    (the block-design project's name), the bitstream's basename, the driver's overlay name, the
    accelerator cell (``top``) and the AXI DMA sized for a ``bus_bits`` stream."""
    from accelgen import __version__
    from accelgen.codegen.names import identifier
    from accelgen.runtime.pynq_backend import OVERLAY

    return {
        "version": __version__, "board": facts, "clock_mhz": clock_mhz,
        "period_ns": f"{1000.0 / clock_mhz:.3f}", "model": identifier(model_name), "bitstream": bitstream_name(model_name),
        "overlay": OVERLAY, "top": top, "ip_name": top, "bus_bits": bus_bits, "dma": dma_settings(bus_bits),
    }  # fmt: skip


def overlay_files(outdir: Path, synth: dict | None) -> list[Path]:
    """The bitstream and hardware handoff to put next to the driver: those bd.tcl wrote to
    OUTDIR/bitstream, and only when synthesis ran and its timing was met or explicitly allowed
    (never a run directory's bitstream, whatever its slack)."""
    if not synth or synth.get("skipped") or synth.get("timing_status") not in ("met", "violated (allowed)"):
        return []
    bitstream = Path(outdir) / "bitstream"
    bits, hwhs = sorted(bitstream.glob("*.bit")), sorted(bitstream.glob("*.hwh"))
    return [bits[0], hwhs[0]] if bits and hwhs else []
