"""The vendor tools (Vitis HLS, Vivado): found on PATH and run as logged subprocesses with
timeouts (their reports are read by :mod:`accelgen.vendor_reports`). Nothing here is
needed when the tools are absent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from accelgen.errors import AccelgenError, InputError

TOOLS = ("vitis_hls", "vivado")
HLS_TIMEOUT_S = 4 * 3600
VIVADO_TIMEOUT_S = 8 * 3600


class VendorToolError(AccelgenError):
    """A vendor tool failed or timed out; the message points to its log."""

    exit_code = 1


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


def run_logged(cmd: list[str], cwd: Path, log: Path, timeout_s: float) -> float:
    """Run ``cmd`` with its output appended to ``log``; seconds taken. Kills the process
    group on timeout or interrupt so no tool keeps running behind a stopped build."""
    t0 = time.perf_counter()
    with open(log, "ab") as f:
        f.write(f"$ {' '.join(cmd)}  (in {cwd})\n".encode())
        f.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
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
