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
        emulator = self.meta["emulator"]
        self._parallel = _bind(self._lib, emulator.get("parallel_entry", entry + "_parallel"), 4)
        self._emulate = _bind(self._lib, entry, 3)
        if self._emulate is None:
            raise DamagedBuildError(f"{lib} has no entry point {entry}: not this design's C-simulation library")
        self._layers = _bind(self._lib, emulator.get("layers_entry", entry + "_layers"), 5)
        #: CPUs a batch is split over (1 when the library has no threaded entry point)
        self.threads = max(1, os.cpu_count() or 1) if self._parallel is not None else 1
        wanted = [p["tensor"] for p in self.meta["inputs"]]
        if list(partition.hw_inputs) != wanted or list(partition.hw_outputs) != [
            p["tensor"] for p in self.meta["outputs"]
        ]:
            raise ValueError("the C-simulation library does not match this program's hardware interface")

    def _arrays(self, hw_in: dict) -> tuple[list, int]:
        batch = len(hw_in[self.meta["inputs"][0]["tensor"]]) if self.meta["inputs"] else 0
        arrays = [
            np.ascontiguousarray(np.reshape(hw_in[p["tensor"]], (batch, p["elements"])), dtype=np.int64)
            for p in self.meta["inputs"]
        ]  # fmt: skip  (explicit sizes: an empty batch reshapes too)
        return arrays, batch

    def run(self, hw_in: dict) -> dict:
        """Hardware inputs {tensor: codes, batch first} -> hardware outputs {tensor: codes}."""
        arrays, batch = self._arrays(hw_in)
        outs = [np.zeros((batch, p["elements"]), dtype=np.int64) for p in self.meta["outputs"]]
        if batch:
            if self._parallel is not None and self.threads > 1:
                status = self._parallel(_pointers(arrays), _pointers(outs), batch, self.threads)
            else:
                status = self._emulate(_pointers(arrays), _pointers(outs), batch)
            _check(status)
        return {p["tensor"]: o.reshape(batch, *p["shape"]) for p, o in zip(self.meta["outputs"], outs)}

    def run_layers(self, hw_in: dict) -> tuple[dict, dict]:
        """Like :meth:`run`, plus every layer's output ({IR op name: codes}), traced in C."""
        if self._layers is None:
            raise RuntimeError("this C-simulation library has no per-layer entry point")
        arrays, batch = self._arrays(hw_in)
        outs = [np.zeros((batch, p["elements"]), dtype=np.int64) for p in self.meta["outputs"]]
        layers = [np.zeros((batch, la["elements"]), dtype=np.int64) for la in self.meta["layers"]]
        counts = (ctypes.c_uint64 * max(len(layers), 1))()
        _check(self._layers(_pointers(arrays), _pointers(outs), batch, _pointers(layers), counts))
        traced = {la["name"]: a.reshape(batch, *la["shape"]) for la, a in zip(self.meta["layers"], layers)}
        return {p["tensor"]: o.reshape(batch, *p["shape"]) for p, o in zip(self.meta["outputs"], outs)}, traced

    def close(self) -> None:
        self._lib = None


_ARGTYPES = {
    3: [ctypes.POINTER(_I64P), ctypes.POINTER(_I64P), ctypes.c_uint],
    4: [ctypes.POINTER(_I64P), ctypes.POINTER(_I64P), ctypes.c_uint, ctypes.c_uint],
    5: [ctypes.POINTER(_I64P), ctypes.POINTER(_I64P), ctypes.c_uint, ctypes.POINTER(_I64P),
        ctypes.POINTER(ctypes.c_uint64)],
}  # fmt: skip


def _bind(lib, name: str, nargs: int):
    """The library's entry point ``name`` (None when it has none) with its C signature."""
    try:
        fn = getattr(lib, name)
    except AttributeError:
        return None
    fn.argtypes = _ARGTYPES[nargs]
    fn.restype = ctypes.c_int
    return fn


def _pointers(arrays):
    return (_I64P * max(len(arrays), 1))(*[a.ctypes.data_as(_I64P) for a in arrays])


def _check(status: int) -> None:
    if status != 0:
        raise RuntimeError(f"the emulated design failed: {_STATUS.get(status, f'status {status}')}")
