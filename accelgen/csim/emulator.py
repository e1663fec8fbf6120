"""The design's C-simulation model as a Python object: the runtime's ctypes binding
(:class:`accelgen.runtime.csim_backend.CsimBackend`) with the compiler's conveniences
(building the library on demand, checking hardware codes, errors for users)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from accelgen.csim import builder
from accelgen.csim.host import load_host_program
from accelgen.csim.testbench import read_design
from accelgen.errors import InputError, InternalError


class Emulator:
    """The design's C-simulation model as a shared library.

    ``run(codes)`` takes the hardware inputs (integer codes, batch first, channels-last
    per sample: one array, or {tensor name: array}) and returns the hardware outputs in
    the same form. ``run_float(x)`` runs the model end to end: the host prologue
    (quantizing the float input), the emulated hardware, the host epilogue. A batch is
    split over ``threads`` threads (default: every CPU).
    """

    def __init__(
        self,
        outdir: str | Path,
        *,
        cache_dir: str | Path | None = None,
        library: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        from accelgen.runtime.csim_backend import CsimBackend

        self.outdir = Path(outdir)
        self.meta = read_design(self.outdir)
        self.library = Path(library) if library is not None else builder.build(self.outdir, cache_dir=cache_dir).library
        program = load_host_program(self.outdir)
        self._backend = CsimBackend(self.outdir, program, program.partition, library=self.library)
        if threads is not None:
            self.threads = threads

    @property
    def threads(self) -> int:
        return self._backend.threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._backend.threads = max(1, int(value))

    @property
    def inputs(self) -> list[str]:
        return [p["tensor"] for p in self.meta["inputs"]]

    @property
    def outputs(self) -> list[str]:
        return [p["tensor"] for p in self.meta["outputs"]]

    def _prepare(self, codes) -> dict[str, np.ndarray]:
        ports = self.meta["inputs"]
        if not isinstance(codes, dict):
            if len(ports) != 1:
                raise InputError(f"the design has inputs {', '.join(self.inputs)}: pass a dict")
            codes = {ports[0]["tensor"]: codes}
        arrays, batch = {}, None
        for p in ports:
            if p["tensor"] not in codes:
                raise InputError(f"missing hardware input '{p['tensor']}'")
            a = np.asarray(codes[p["tensor"]])
            if a.dtype.kind not in "iu" or tuple(a.shape[1:]) != tuple(p["shape"]):
                raise InputError(f"input '{p['tensor']}': expected integer codes of shape (batch, "
                                 f"{', '.join(map(str, p['shape']))}), got {a.dtype} {a.shape}")  # fmt: skip
            code = p["code"]
            lo, hi = _code_range(code)
            if a.size and (a.min() < lo or a.max() > hi or (code["bipolar"] and np.any(a == 0))):
                raise InputError(f"input '{p['tensor']}' has codes outside its range [{lo}, {hi}]")
            batch = a.shape[0] if batch is None else batch
            if a.shape[0] != batch:
                raise InputError("all inputs need the same batch size")
            arrays[p["tensor"]] = a
        return arrays

    def run(self, codes):
        """Hardware inputs -> hardware outputs (integer codes, raw accumulators where the
        host dequantizes them)."""
        try:
            result = self._backend.run(self._prepare(codes))
        except RuntimeError as exc:
            raise InternalError(str(exc)) from None
        return next(iter(result.values())) if len(result) == 1 and not isinstance(codes, dict) else result

    def run_layers(self, codes) -> dict[str, np.ndarray]:
        """Every layer's output (keyed by IR op name) and the hardware outputs (by tensor)."""
        try:
            outputs, layers = self._backend.run_layers(self._prepare(codes))
        except RuntimeError as exc:
            raise InternalError(str(exc)) from None
        return {**layers, **outputs}

    def run_float(self, x, *, as_dict: bool = False):
        """The model's own inputs (float, its layout) -> its outputs: host prologue,
        emulated hardware, host epilogue, by the runtime's Accelerator on this library."""
        from accelgen.runtime import Accelerator, InputValidationError

        try:
            with Accelerator(self.outdir, backend="csim", library=self.library) as accel:
                return accel.run(x, as_dict=as_dict)
        except InputValidationError as exc:
            raise InputError(str(exc)) from None


def _code_range(code: dict) -> tuple[int, int]:
    if code["bipolar"]:
        return -1, 1
    bits = code["bits"]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if code["signed"] else (0, (1 << bits) - 1)
