"""The ``csim`` backend: the design's C-simulation model as a shared library (ctypes).

The build's C-simulation stage leaves ``csim/libaccel.so`` in OUTDIR; its entry point
``<top>_emulate(const int64** inputs, int64** outputs, unsigned batch)`` streams a batch
of integer codes (one row per sample, channels-last) through the HLS top function
exactly as the FPGA would, and returns 0 when every stream ended where it should.

Part of the standalone runtime: numpy and ctypes only, Python >= 3.8.
"""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path

import numpy as np

from .manifest import DamagedBuildError, verify_file

LIBRARY = "csim/libaccel.so"
_I64P = ctypes.POINTER(ctypes.c_int64)
_STATUS = {
    2: "an output stream ran short or its TLAST was misplaced",
    3: "the design left input unread",
    4: "the design wrote more output than expected",
}


def _design_dir(path: Path) -> Path:
    for candidate in (path, path.parent):
        if (candidate / "hls" / "design.json").is_file():
            return candidate
    raise FileNotFoundError(f"{path}: no hls/design.json (is this an accelgen build directory?)")


class CsimBackend:
    """Runs the hardware part of a partition on the compiled C-simulation library."""

    def __init__(self, design_dir, program, partition, library=None) -> None:
        if design_dir is None:
            raise ValueError("the csim backend needs a build directory")
        root = _design_dir(Path(design_dir))
        design_json = root / "hls" / "design.json"
        verify_file(design_json)
        try:
            self.meta = json.loads(design_json.read_text())
            entry = self.meta["emulator"]["entry"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DamagedBuildError(f"{design_json} is not a design description ({exc!r})") from None
        lib = Path(library) if library is not None else root / LIBRARY
        if not lib.is_file():
            raise FileNotFoundError(
                f"{lib}: this build has no C-simulation library (built with --no-csim?); rebuild with C-simulation"
            )
        if library is None:
            verify_file(lib)
        try:
            self._lib = ctypes.CDLL(str(lib))
        except OSError as exc:
            raise DamagedBuildError(f"{lib} is not a loadable library ({exc})") from None
        self._threads = 1
        try:  # the threaded entry point splits a batch over the CPUs
            self._emulate = getattr(self._lib, entry + "_parallel")
            self._threads = max(1, os.cpu_count() or 1)
            self._emulate.argtypes = [ctypes.POINTER(_I64P), ctypes.POINTER(_I64P), ctypes.c_uint, ctypes.c_uint]
        except AttributeError:
            self._emulate = getattr(self._lib, entry)
            self._emulate.argtypes = [ctypes.POINTER(_I64P), ctypes.POINTER(_I64P), ctypes.c_uint]
        self._emulate.restype = ctypes.c_int
        wanted = [p["tensor"] for p in self.meta["inputs"]]
        if list(partition.hw_inputs) != wanted or list(partition.hw_outputs) != [
            p["tensor"] for p in self.meta["outputs"]
        ]:
            raise ValueError("the C-simulation library does not match this program's hardware interface")

    def run(self, hw_in: dict) -> dict:
        batch = len(hw_in[self.meta["inputs"][0]["tensor"]]) if self.meta["inputs"] else 0
        arrays = [
            np.ascontiguousarray(np.reshape(hw_in[p["tensor"]], (batch, p["elements"])), dtype=np.int64)
            for p in self.meta["inputs"]
        ]  # fmt: skip  (explicit sizes: an empty batch reshapes too)
        outs = [np.zeros((batch, p["elements"]), dtype=np.int64) for p in self.meta["outputs"]]
        if batch:
            ins_p = (_I64P * len(arrays))(*[a.ctypes.data_as(_I64P) for a in arrays])
            outs_p = (_I64P * len(outs))(*[o.ctypes.data_as(_I64P) for o in outs])
            args = (ins_p, outs_p, batch) + ((self._threads,) if self._threads > 1 else ())
            status = self._emulate(*args)
            if status != 0:
                raise RuntimeError(f"the emulated design failed: {_STATUS.get(status, f'status {status}')}")
        return {p["tensor"]: o.reshape(batch, *p["shape"]) for p, o in zip(self.meta["outputs"], outs)}

    def close(self) -> None:
        self._lib = None
