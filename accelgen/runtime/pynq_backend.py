"""The ``pynq`` backend: the design on the FPGA, driven through PYNQ.

Per call: pack the input codes into bus words (:mod:`.packing`), write the number of
samples to the accelerator's ``reps`` register and start it, stream the words in and the
results out through one AXI DMA per port, wait (with a timeout), unpack.

The block design (scripts/bd_*.tcl) names the accelerator ``accel`` and the DMA engines
``dma_<port>``; the register offsets are those of a Vitis HLS ``s_axilite`` control
bundle (0x00 control, first scalar argument at 0x10) and are recorded in accel.json.

Part of the standalone runtime: numpy and pynq only, Python >= 3.8.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .manifest import DamagedBuildError, verify_file
from .packing import pack, unpack

AP_START = 0x1
CONTROL_OFFSET = 0x00
REPS_OFFSET = 0x10
DEFAULT_TIMEOUT_S = 5.0
_WORD_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def _find(path: Path, name: str) -> Path:
    for candidate in (path / name, path / "driver" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{path}: no {name}")


def _bitstream(root: Path) -> Path:
    """design.bit in the driver directory, else the one bitstream of a build (bitstream/*.bit)."""
    for name in ("design.bit", "driver/design.bit"):
        if (root / name).is_file():
            return root / name
    found = sorted(root.glob("*.bit")) + sorted(root.glob("bitstream/*.bit")) + sorted(root.glob("../bitstream/*.bit"))
    if not found:
        raise FileNotFoundError(
            f"{root}: no bitstream: build it (make hls bitstream in OUTDIR/scripts) and put the .bit and .hwh "
            "next to the driver, or pass bitstream=PATH"
        )
    return found[0]


class PynqBackend:
    """Runs the hardware part of a partition on the FPGA."""

    def __init__(self, design_dir, program, partition, bitstream=None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 overlay=None, pynq_module=None) -> None:  # fmt: skip
        root = Path(design_dir)
        accel_json = _find(root, "accel.json")
        verify_file(accel_json)
        try:
            self.meta = json.loads(accel_json.read_text())
        except ValueError as exc:
            raise DamagedBuildError(f"{accel_json} is not readable JSON ({exc})") from None
        hw = self.meta["hardware"]
        if "bus_bits" not in hw:
            raise ValueError("accel.json has no hardware interface (was the design built by `accelgen build`?)")
        self.bus_bits = int(hw["bus_bits"])
        if self.bus_bits not in _WORD_DTYPES:
            raise ValueError(f"a {self.bus_bits}-bit bus is not supported by the PYNQ driver (8..64 bits)")
        self.inputs, self.outputs = hw["inputs"], hw["outputs"]
        self.timeout_s = float(timeout_s)
        if pynq_module is None:
            try:
                import pynq as pynq_module
            except ImportError:
                raise RuntimeError(
                    "the pynq backend runs on the board: `import pynq` failed (pip install pynq)"
                ) from None
        self._pynq = pynq_module
        if overlay is None:
            bit = Path(bitstream) if bitstream is not None else _bitstream(root)
            overlay = pynq_module.Overlay(str(bit))
        self.overlay = overlay
        self.accel = overlay.accel
        self.dmas = {p["name"]: getattr(overlay, f"dma_{p['name']}") for p in self.inputs + self.outputs}
        self._closed = False

    def run(self, hw_in: dict) -> dict:
        if self._closed:
            raise RuntimeError("the overlay is closed")
        batch = len(next(iter(hw_in.values())))
        if batch == 0:  # nothing to stream: the DMAs would wait for words that never come
            return {p["tensor"]: np.zeros((0, *p["shape"]), dtype=np.int64) for p in self.outputs}
        alloc = self._pynq.allocate
        dtype = _WORD_DTYPES[self.bus_bits]
        sends = []
        for p in self.inputs:
            code = p["code"]
            words = pack(hw_in[p["tensor"]].reshape(batch, -1), code["bits"], code["signed"], self.bus_bits,
                         bipolar=code["bipolar"])  # fmt: skip
            buf = alloc(shape=(words.size,), dtype=dtype)
            buf[:] = words.reshape(-1)
            buf.flush()
            sends.append((p, buf))
        recvs = [(p, alloc(shape=(batch * p["words_per_sample"],), dtype=dtype)) for p in self.outputs]
        try:
            self.accel.write(REPS_OFFSET, batch)
            self.accel.write(CONTROL_OFFSET, AP_START)
            for p, buf in recvs:
                self.dmas[p["name"]].recvchannel.transfer(buf)
            for p, buf in sends:
                self.dmas[p["name"]].sendchannel.transfer(buf)
            for p, _ in sends:
                self._wait(self.dmas[p["name"]].sendchannel, f"sending {p['name']}")
            for p, _ in recvs:
                self._wait(self.dmas[p["name"]].recvchannel, f"receiving {p['name']}")
            out = {}
            for p, buf in recvs:
                buf.invalidate()
                code = p["code"]
                words = np.asarray(buf).reshape(batch, p["words_per_sample"])
                codes = unpack(
                    words, p["elements"], code["bits"], code["signed"], self.bus_bits, bipolar=code["bipolar"]
                )
                out[p["tensor"]] = codes.reshape(batch, *p["shape"])
            return out
        finally:
            for _, buf in sends + recvs:
                buf.freebuffer()

    def _wait(self, channel, what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not channel.idle:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the accelerator did not finish {what} within {self.timeout_s:g} s: is the right bitstream "
                    "loaded, and does the input match the design?"
                )
            time.sleep(0.0001)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            free = getattr(self.overlay, "free", None)
            if callable(free):
                free()
