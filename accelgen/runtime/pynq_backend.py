"""The ``pynq`` backend: the design on the FPGA, driven through PYNQ.

Per call: pack the input codes into bus words (:mod:`.packing`) and stream them through one
AXI DMA per port, in chunks of whole samples that fit the DMA's buffer length register; per
chunk: arm every DMA channel (so a transfer PYNQ refuses is refused before the accelerator
starts), write the chunk's number of samples to the accelerator's ``reps`` register, start
it, wait for the channels (a timeout that grows with the chunk), check the DMA status
registers' error bits, wait for the accelerator to be idle again, unpack.

After a DMA error or a timeout the DMA engines are reset and their channels restarted; if
the accelerator itself is still busy (it waits for words that will never come) the overlay
is downloaded again, which resets the programmable logic. The exception names what failed
and what was done, and the next call starts from a clean state.

The block design (scripts/bd_*.tcl) names the accelerator ``accel`` and the DMA engines
``dma_<port>``; the register offsets are those of a Vitis HLS ``s_axilite`` control
bundle (0x00 control, first scalar argument at 0x10) and are recorded in accel.json. The
DMA register offsets and status bits are those of the AXI DMA product guide (PG021,
direct register mode): MM2S_DMACR 0x00, MM2S_DMASR 0x04, S2MM_DMACR 0x30, S2MM_DMASR 0x34.

Part of the standalone runtime: numpy and pynq only, Python >= 3.8.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .manifest import DamagedBuildError, verify_file
from .packing import pack, unpack

AP_START, AP_DONE, AP_IDLE = 0x1, 0x2, 0x4
CONTROL_OFFSET = 0x00
REPS_OFFSET = 0x10
DEFAULT_TIMEOUT_S = 5.0
#: the overlay's basename in the driver directory: PYNQ loads OVERLAY.bit with the OVERLAY.hwh beside it
#: (one basename for both); `make overlay` in OUTDIR/scripts and `accelgen build` put them there
OVERLAY = "design"
DEFAULT_TIMEOUT_PER_SAMPLE_S = 0.005  # added to the timeout per sample of a chunk
# PG021: the buffer length register is 14 bits wide unless the block design widens it
# (c_sg_length_width, 8..26); the longest transfer is 2**width - 1 bytes.
DEFAULT_DMA_MAX_TRANSFER_BYTES = (1 << 14) - 1
_WORD_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}

# AXI DMA registers (PG021), per channel: control at base, status at base + 4.
_DMA_CHANNEL_BASE = {"sendchannel": 0x00, "recvchannel": 0x30}
_DMACR_RESET = 0x4
_DMASR_ERRORS = ((0x10, "DMAIntErr (internal error: a zero length, or a stream packet longer than the buffer)"),
                 (0x20, "DMASlvErr (slave error: the memory refused the access)"),
                 (0x40, "DMADecErr (decode error: no memory at the buffer's address)"))  # fmt: skip
_RESET_POLLS = 1000


class PynqMissingError(RuntimeError):
    """The pynq backend was asked for where pynq is not installed (not on a PYNQ board)."""


class DmaError(RuntimeError):
    """A DMA channel reported an error (or, as :class:`DmaTimeout`, the hardware did not finish in time)."""


class DmaTimeout(DmaError, TimeoutError):
    """The hardware did not finish a chunk within its timeout."""


def _find(path: Path, name: str) -> Path:
    for candidate in (path / name, path / "driver" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{path}: no {name}")


def _bitstream(root: Path) -> Path:
    """OVERLAY.bit in the driver directory, else the one bitstream of a build (bitstream/*.bit)."""
    for name in (f"{OVERLAY}.bit", f"driver/{OVERLAY}.bit"):
        if (root / name).is_file():
            return root / name
    found = sorted(root.glob("*.bit")) + sorted(root.glob("bitstream/*.bit")) + sorted(root.glob("../bitstream/*.bit"))
    if not found:
        raise FileNotFoundError(
            f"{root}: no bitstream: build it (make hls bitstream overlay in OUTDIR/scripts puts {OVERLAY}.bit and "
            f"{OVERLAY}.hwh next to the driver), or pass bitstream=PATH"
        )
    return found[0]


def max_transfer_bytes(meta: dict) -> int:
    """The longest DMA transfer the block design allows: accel.json's ``dma_max_transfer_bytes``
    (top level or under ``hardware``), else PG021's default 14-bit length register."""
    for where in (meta.get("hardware", {}), meta):
        if where.get("dma_max_transfer_bytes") is not None:
            value = int(where["dma_max_transfer_bytes"])
            if value <= 0:
                raise ValueError(f"accel.json: dma_max_transfer_bytes must be positive, not {value}")
            return value
    return DEFAULT_DMA_MAX_TRANSFER_BYTES


def chunk_samples(ports: list, bus_bits: int, limit_bytes: int) -> int:
    """How many whole samples one DMA transfer of every port can carry."""
    word_bytes = bus_bits // 8
    fits = []
    for p in ports:
        sample_bytes = int(p["words_per_sample"]) * word_bytes
        if sample_bytes > limit_bytes:
            raise ValueError(
                f"one sample of port {p['name']} is {sample_bytes} bytes, more than the DMA's longest transfer "
                f"({limit_bytes} bytes): widen the DMA's buffer length register (dma_max_transfer_bytes in accel.json)"
            )
        fits.append(limit_bytes // sample_bytes)
    return min(fits)


def _import_pynq():
    try:
        import pynq
    except ImportError:
        raise PynqMissingError(
            "the pynq backend runs on the board: pynq is not installed here (a PYNQ image has it); "
            "off the board use --backend golden, or `accelgen run OUTDIR` for the emulated hardware"
        ) from None
    return pynq


class PynqBackend:
    """Runs the hardware part of a partition on the FPGA."""

    def __init__(self, design_dir, program, partition, bitstream=None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 overlay=None, pynq_module=None, timeout_per_sample_s: float = DEFAULT_TIMEOUT_PER_SAMPLE_S,
                 max_chunk_samples: int | None = None) -> None:  # fmt: skip
        pynq_module = pynq_module or _import_pynq()  # first: off the board nothing else matters
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
        self.timeout_per_sample_s = float(timeout_per_sample_s)
        self._pynq = pynq_module
        if overlay is None:
            bit = Path(bitstream) if bitstream is not None else _bitstream(root)
            overlay = pynq_module.Overlay(str(bit))
        self.overlay = overlay
        self._bind()
        limit = max_transfer_bytes(self.meta)
        for dma in self.dmas.values():  # PYNQ knows the length register of the loaded design (from the .hwh)
            board_limit = getattr(dma, "buffer_max_size", None)
            if isinstance(board_limit, int) and board_limit > 0:
                limit = min(limit, board_limit)
        self.max_transfer_bytes = limit
        self.chunk = chunk_samples(self.inputs + self.outputs, self.bus_bits, limit)
        if max_chunk_samples is not None:
            if int(max_chunk_samples) < 1:
                raise ValueError(f"max_chunk_samples must be at least 1, not {max_chunk_samples}")
            self.chunk = min(self.chunk, int(max_chunk_samples))
        self._closed = False

    def _bind(self) -> None:
        self.accel = self.overlay.accel
        self.dmas = {p["name"]: getattr(self.overlay, f"dma_{p['name']}") for p in self.inputs + self.outputs}

    def run(self, hw_in: dict) -> dict:
        if self._closed:
            raise RuntimeError("the overlay is closed")
        batch = len(next(iter(hw_in.values())))
        if batch == 0:  # nothing to stream: the DMAs would wait for words that never come
            return {p["tensor"]: np.zeros((0, *p["shape"]), dtype=np.int64) for p in self.outputs}
        dtype = _WORD_DTYPES[self.bus_bits]
        words_in = {}
        for p in self.inputs:
            code = p["code"]
            words = pack(hw_in[p["tensor"]].reshape(batch, -1), code["bits"], code["signed"], self.bus_bits,
                         bipolar=code["bipolar"])  # fmt: skip
            words_in[p["name"]] = words.reshape(batch, -1)
        size = min(self.chunk, batch)
        alloc = self._pynq.allocate
        bufs = {}
        try:
            for p in self.inputs + self.outputs:
                bufs[p["name"]] = alloc(shape=(size * int(p["words_per_sample"]),), dtype=dtype)
            pieces = {p["tensor"]: [] for p in self.outputs}
            for start in range(0, batch, size):
                n = min(size, batch - start)
                got = self._run_chunk(start, n, words_in, bufs)
                for tensor, codes in got.items():
                    pieces[tensor].append(codes)
            return {tensor: np.concatenate(parts) for tensor, parts in pieces.items()}
        finally:
            for buf in bufs.values():
                buf.freebuffer()

    def _run_chunk(self, start: int, n: int, words_in: dict, bufs: dict) -> dict:
        sends, recvs = [], []
        for p in self.inputs:
            buf, words = bufs[p["name"]], words_in[p["name"]][start : start + n].reshape(-1)
            buf[: words.size] = words
            buf.flush()
            sends.append((p, buf, words.size))
        for p in self.outputs:
            recvs.append((p, bufs[p["name"]], n * int(p["words_per_sample"])))
        nbytes = self.bus_bits // 8
        timeout = self.timeout_s + n * self.timeout_per_sample_s
        what = f"samples {start}..{start + n - 1}"
        try:
            # Arm every channel first: a transfer PYNQ refuses is refused before the accelerator starts.
            for p, buf, count in recvs:
                self.dmas[p["name"]].recvchannel.transfer(buf, 0, count * nbytes)
            for p, buf, count in sends:
                self.dmas[p["name"]].sendchannel.transfer(buf, 0, count * nbytes)
            self.accel.write(REPS_OFFSET, n)
            self.accel.write(CONTROL_OFFSET, AP_START)
            deadline = time.monotonic() + timeout
            for p, _, _ in sends:
                self._wait(p["name"], "sendchannel", deadline, timeout, f"sending {p['name']} ({what})")
            for p, _, _ in recvs:
                self._wait(p["name"], "recvchannel", deadline, timeout, f"receiving {p['name']} ({what})")
            self._wait_idle(deadline, timeout, what)
        except DmaError as exc:
            raise type(exc)(f"{exc}; {self._recover()}") from None
        out = {}
        for p, buf, count in recvs:
            buf.invalidate()
            code = p["code"]
            words = np.asarray(buf)[:count].reshape(n, p["words_per_sample"])
            codes = unpack(words, p["elements"], code["bits"], code["signed"], self.bus_bits, bipolar=code["bipolar"])
            out[p["tensor"]] = codes.reshape(n, *p["shape"])
        return out

    def _status(self, port: str, channel: str) -> int | None:
        dma = self.dmas[port]
        read = getattr(dma, "read", None)
        return int(read(_DMA_CHANNEL_BASE[channel] + 4)) if callable(read) else None

    def _check_errors(self, port: str, channel: str, what: str) -> None:
        status = self._status(port, channel)
        if status is None:
            return
        errors = [text for bit, text in _DMASR_ERRORS if status & bit]
        if errors:
            raise DmaError(f"the DMA engine dma_{port} reported {', '.join(errors)} while {what} "
                           f"(status register 0x{status:08x})")  # fmt: skip

    def _wait(self, port: str, channel: str, deadline: float, timeout: float, what: str) -> None:
        chan = getattr(self.dmas[port], channel)
        while True:
            self._check_errors(port, channel, what)
            if chan.idle:
                return
            if time.monotonic() > deadline:
                raise DmaTimeout(
                    f"the accelerator did not finish {what} within {timeout:g} s: is the right bitstream "
                    "loaded, and does the input match the design?"
                )
            time.sleep(0.0001)

    def _wait_idle(self, deadline: float, timeout: float, what: str) -> None:
        read = getattr(self.accel, "read", None)
        if not callable(read):
            return
        while not int(read(CONTROL_OFFSET)) & AP_IDLE:
            if time.monotonic() > deadline:
                raise DmaTimeout(f"the accelerator did not return to idle after {what} within {timeout:g} s")
            time.sleep(0.0001)

    def _recover(self) -> str:
        """Reset the DMA engines and restart their channels; reload the overlay if the accelerator is stuck."""
        done = []
        for port, dma in self.dmas.items():
            write, read = getattr(dma, "write", None), getattr(dma, "read", None)
            if not callable(write):
                continue
            write(_DMA_CHANNEL_BASE["sendchannel"], _DMACR_RESET)  # resets both channels of the engine
            for _ in range(_RESET_POLLS):
                if not callable(read) or not int(read(0x00)) & _DMACR_RESET:
                    break
                time.sleep(0.0001)
            for channel in ("sendchannel", "recvchannel"):
                chan = getattr(dma, channel, None)
                if chan is not None and callable(getattr(chan, "start", None)):
                    chan.start()
            done.append(f"dma_{port}")
        message = f"reset {', '.join(done)}" if done else "no DMA engine could be reset"
        read = getattr(self.accel, "read", None)
        if callable(read) and not int(read(CONTROL_OFFSET)) & AP_IDLE:
            download = getattr(self.overlay, "download", None)
            if not callable(download):
                return message + "; the accelerator is still busy: reload the overlay before the next call"
            download()
            self._bind()
            message += "; the accelerator was still busy: the overlay was downloaded again"
        return message + "; the next call starts afresh"

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            free = getattr(self.overlay, "free", None)
            if callable(free):
                free()
