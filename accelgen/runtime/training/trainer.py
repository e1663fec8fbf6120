"""``Trainer``: on-device training of a TT network through one API, three backends.

    trainer = Trainer(outdir, backend="csim")       # OUTDIR of ``accelgen train-build``
    stats = trainer.step(x, y, lr=0.01)              # one call: len(x) SGD steps on chip
    acc = trainer.evaluate(x_test, y_test)
    trainer.export("trained.onnx")                    # a QONNX model ``accelgen build`` takes

Backends: ``golden`` runs :mod:`.spec` (the definition); ``csim`` calls the compiled
C simulation of the generated top (``OUTDIR/csim/libaccel.so``) through ctypes; ``pynq``
drives the same top on the board (a PYNQ ``Overlay`` of the bitstream, buffers from
``pynq.allocate``). The state lives in the backend (on chip); :meth:`Trainer.state` reads
it back. Inputs are floats in [0, 1) (quantized here, never by the user); labels integers
``0 .. classes - 1``.

numpy and ctypes only (the board's Python runs it); :meth:`export` alone needs torch.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from . import lfsr, spec

BACKENDS = ("golden", "csim", "pynq")
LOAD, TRAIN, LOGITS, STORE = 0, 1, 2, 3
_I32P = ctypes.POINTER(ctypes.c_int32)


def _input_error(message: str) -> Exception:
    """An ``accelgen.errors.InputError`` (exit code 2) where accelgen is installed; in a
    standalone copy of the runtime (no compiler beside it) a :class:`spec.TrainingError`."""
    try:
        from accelgen.errors import InputError
    except ImportError:  # pragma: no cover - the standalone runtime on a board
        return spec.TrainingError(message)
    return InputError(message)


class _Golden:
    """The spec itself as the device: state in numpy."""

    def __init__(self, config: spec.TrainConfig, state: spec.TrainState) -> None:
        self.config, self.state = config, state.copy()
        self.table = spec.exp_table(config.widths)
        self.draws = lfsr.DrawTable(config.draws_per_sample)

    def train(self, codes: np.ndarray, labels: np.ndarray, eta: int) -> tuple[int, int]:
        right = p_sum = 0
        for x, y in zip(codes, labels):
            ok, p = spec.train_sample(self.config, self.state, x, int(y), eta, self.table, self.draws)
            right, p_sum = right + ok, p_sum + p
        return right, p_sum

    def logits(self, codes: np.ndarray) -> np.ndarray:
        return spec.logits(self.config, self.state, codes)

    def read_state(self) -> spec.TrainState:
        return self.state.copy()


class _Top:
    """A backend that calls the generated top function: mode, samples, eta and four word buffers."""

    def __init__(self, config: spec.TrainConfig, state: spec.TrainState) -> None:
        self.config = config
        self._call(LOAD, 0, 0, np.zeros(1, np.int32), np.zeros(1, np.int32), self._words(state), np.zeros(2, np.int32))

    @staticmethod
    def _words(state: spec.TrainState) -> np.ndarray:
        flat = state.flat()
        flat[-1] = np.int64(np.uint32(flat[-1]).astype(np.int32))  # the LFSR word as its 32 bits
        return flat.astype(np.int32)

    def _call(self, mode, samples, eta, x, labels, params, results) -> None:
        raise NotImplementedError

    def train(self, codes: np.ndarray, labels: np.ndarray, eta: int) -> tuple[int, int]:
        results = np.zeros(2, np.int32)
        params = np.zeros(1, np.int32)
        self._call(TRAIN, len(codes), eta, codes.astype(np.int32), labels.astype(np.int32), params, results)
        return int(results[0]), int(results[1])

    def logits(self, codes: np.ndarray) -> np.ndarray:
        out = np.zeros(len(codes) * self.config.classes, np.int32)
        self._call(LOGITS, len(codes), 0, codes.astype(np.int32), np.zeros(1, np.int32), np.zeros(1, np.int32), out)
        return out.reshape(len(codes), self.config.classes).astype(np.int64)

    def read_state(self) -> spec.TrainState:
        params = np.zeros(self.config.draws_per_sample + 1, np.int32)
        self._call(STORE, 0, 0, np.zeros(1, np.int32), np.zeros(1, np.int32), params, np.zeros(2, np.int32))
        flat = params.astype(np.int64)
        flat[-1] = int(np.uint32(params[-1].view(np.uint32)))
        return spec.TrainState.from_flat(self.config, flat)


class _Csim(_Top):
    """The C-simulation library. Its on-chip state is the library's static data, so every
    Trainer loads its own copy of the library (ctypes would share one per path)."""

    def __init__(self, config, state, library: Path, entry: str) -> None:
        self._dir = tempfile.mkdtemp(prefix="accelgen-train-")
        copy = Path(self._dir) / "libaccel.so"
        shutil.copyfile(library, copy)
        self._lib = ctypes.CDLL(str(copy))
        self._fn = getattr(self._lib, entry)
        self._fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, _I32P, _I32P, _I32P, _I32P]
        self._fn.restype = ctypes.c_int
        super().__init__(config, state)

    def _call(self, mode, samples, eta, x, labels, params, results) -> None:
        arrays = [np.ascontiguousarray(a, dtype=np.int32) for a in (x, labels)]
        ptrs = [a.ctypes.data_as(_I32P) for a in (*arrays, params, results)]
        status = self._fn(mode, samples, eta, *ptrs)
        if status != 0:
            raise _input_error(f"the C simulation refused the call (status {status}): batch {samples} too large?")

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "_dir", ""), ignore_errors=True)


class _Pynq(_Top):
    """The top on the board: the overlay's IP ``ip_name``, its AXI-Lite registers and
    buffers from ``pynq.allocate`` (the PYNQ API)."""

    #: AXI-Lite register offsets of the top's arguments (Vitis HLS numbering, 64-bit pointers)
    REGISTERS = {"mode": 0x10, "samples": 0x18, "eta": 0x20, "x": 0x28, "labels": 0x34, "params": 0x40,
                 "results": 0x4C}  # fmt: skip

    def __init__(
        self, config, state, bitstream: Path, ip_name: str = "tt_train_top_0", timeout_s: float = 600.0
    ) -> None:
        import pynq  # the board's package

        self._pynq, self._timeout_s = pynq, timeout_s
        self._ip = getattr(pynq.Overlay(str(bitstream)), ip_name)
        super().__init__(config, state)

    def _call(self, mode, samples, eta, x, labels, params, results) -> None:
        buffers = {}
        for name, array in (("x", x), ("labels", labels), ("params", params), ("results", results)):
            buf = self._pynq.allocate(shape=array.shape, dtype=np.int32)
            buf[:] = array
            buf.flush()
            buffers[name] = buf
        for name, value in (("mode", mode), ("samples", samples), ("eta", eta)):
            self._ip.write(self.REGISTERS[name], int(value))
        for name, buf in buffers.items():
            self._ip.write(self.REGISTERS[name], int(buf.physical_address) & 0xFFFFFFFF)
            self._ip.write(self.REGISTERS[name] + 4, int(buf.physical_address) >> 32)
        self._ip.write(0x00, 1)  # ap_start
        deadline = time.monotonic() + self._timeout_s
        while not self._ip.read(0x00) & 0x2:  # ap_done
            if time.monotonic() > deadline:
                raise _input_error(f"the training IP did not finish within {self._timeout_s} s (mode {mode}); "
                                   "reload the overlay")  # fmt: skip
        for name, array in (("params", params), ("results", results)):
            buffers[name].invalidate()
            array[:] = buffers[name]


class Trainer:
    """Train the network of a ``train-build`` OUTDIR on a backend (see the module docstring)."""

    def __init__(self, outdir, backend: str = "csim", *, bitstream: str | None = None, library=None) -> None:
        """``library``: another C-simulation build of the same sources (e.g. the ap_types model)."""
        if backend not in BACKENDS:
            raise _input_error(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        self.outdir = Path(outdir)
        meta_path = self.outdir / "hls" / "train.json"
        try:
            meta = json.loads(meta_path.read_text())
            self.config = spec.TrainConfig.from_dict(meta["config"])
            initial = spec.TrainState.from_flat(self.config, np.asarray(meta["initial_state"], dtype=np.int64))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise _input_error(f"{meta_path}: not a training build ({exc}); run accelgen train-build first") from None
        self.backend = backend
        if backend == "golden":
            self._device = _Golden(self.config, initial)
        elif backend == "csim":
            library = Path(library) if library is not None else self.outdir / "csim" / "libaccel.so"
            if not library.is_file():
                raise _input_error(f"{library}: no C-simulation library (built with --no-csim?); rebuild")
            self._device = _Csim(self.config, initial, library, meta["entry"])
        else:
            self._device = _Pynq(self.config, initial, Path(bitstream or self.outdir / "bitstream" / "design.bit"))
        self.steps = 0

    # -- inputs ---------------------------------------------------------------------------------------
    def _codes(self, x, what: str = "x") -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.config.in_features:
            raise _input_error(f"{what}: expected (batch, {self.config.in_features}) floats, got shape {x.shape}")
        if not np.isfinite(x).all():
            rows = np.unique(np.nonzero(~np.isfinite(x))[0])
            raise _input_error(f"{what}: samples {rows[:5].tolist()} hold NaN or infinite values; clean the data")
        if len(x) > self.config.max_batch:
            raise _input_error(
                f"{what}: batch of {len(x)} samples is larger than the design's max_batch {self.config.max_batch} "
                "(its on-chip counters); split it, or rebuild with a larger --max-batch"
            )
        return spec.quantize_input(self.config, x)

    def _labels(self, y, batch: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (batch,) or not np.issubdtype(y.dtype, np.integer):
            raise _input_error(f"y: expected {batch} integer labels, got shape {y.shape} of {y.dtype}")
        bad = np.nonzero((y < 0) | (y >= self.config.classes))[0]
        if bad.size:
            raise _input_error(f"y: labels {y[bad[:5]].tolist()} (samples {bad[:5].tolist()}) are outside "
                               f"0..{self.config.classes - 1}")  # fmt: skip
        return y.astype(np.int64)

    def lr_code(self, lr: float) -> int:
        """The learning-rate code ``round(lr 2^lr_frac)``, checked against its width."""
        w = self.config.widths
        eta = int(round(float(lr) * (1 << w.lr_frac)))
        if not np.isfinite(lr) or eta < 0 or eta >= 1 << w.lr_bits:
            raise _input_error(
                f"lr {lr}: the learning rate must be in [0, {((1 << w.lr_bits) - 1) / (1 << w.lr_frac)}]"
            )
        return eta

    # -- the API ----------------------------------------------------------------------------------------
    def step(self, x, y, lr: float) -> dict:
        """One call: an SGD step per sample of the batch, on chip. Returns the counters."""
        codes = self._codes(x)
        labels = self._labels(y, len(codes))
        right, p_sum = self._device.train(codes, labels, self.lr_code(lr))
        self.steps += 1
        return {"samples": len(codes), "right": right, "mean_p_label": p_sum / max(len(codes), 1) /
                (1 << self.config.widths.prob_frac)}  # fmt: skip

    def logits(self, x) -> np.ndarray:
        """Exact logit codes (fractional bits ``config.logit_frac``), in chunks of max_batch."""
        x = np.asarray(x, dtype=np.float64)
        chunks = [self._device.logits(self._codes(x[i : i + self.config.max_batch]))
                  for i in range(0, len(x), self.config.max_batch)]  # fmt: skip
        return np.concatenate(chunks) if chunks else np.zeros((0, self.config.classes), np.int64)

    def predict(self, x) -> np.ndarray:
        return np.argmax(self.logits(x), axis=1)

    def evaluate(self, x, y) -> float:
        """Accuracy on (x, y)."""
        labels = self._labels(y, len(np.asarray(x)))
        return float((self.predict(x) == labels).mean())

    def state(self) -> spec.TrainState:
        """The trained codes, read back from the device."""
        return self._device.read_state()

    def export(self, path) -> Path:
        """Write the trained network as QONNX (see ``accelgen.tensor.training_export``)."""
        from accelgen.tensor.training_export import export_trained

        return export_trained(self.config, self.state(), path)
