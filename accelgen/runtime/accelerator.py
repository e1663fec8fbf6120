"""One API for a built design, four backends: golden, csim, pynq and rtl.

``Accelerator(design_dir, backend).run(x)`` takes the model's float input (batch first, the
model's own layout) and returns its outputs. The host runs the prologue (quantizing the
input, layout) and the epilogue (dequantizing, the float tail); the backend runs the
integer part: the interpreter (``golden``), the C-simulation library (``csim``), the
FPGA through PYNQ (``pynq``) or, for an ``--arch rtl`` build, its Verilog core in an RTL
simulator (``rtl``, runtime/rtl_backend.py).

Part of the standalone runtime: numpy only (pynq on the board), Python >= 3.8.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .interpreter import evaluate_ops, input_env, to_output
from .program import Program, load_program

#: op kinds the host always runs: quantizing the model's input, layout at the model
#: boundary, and the float ops (dequantizing, softmax, sigmoid)
HOST_KINDS = ("Quantize", "Transpose", "Dequantize", "Softmax", "Sigmoid")
BACKENDS = ("golden", "csim", "pynq", "rtl")


def is_host(op, tensors) -> bool:
    """Whether the host runs ``op`` (an IR op or a program op; ``tensors`` maps names to
    objects with a ``kind``): the kinds above and everything that produces a float tensor
    (the float tail). THE definition of the host/hardware split: the compiler
    (``accelgen.ir.is_host_op``) and the runtime's :class:`Partition` both use it."""
    return op.kind in HOST_KINDS or tensors[op.outputs[0]].kind == "float"


class Partition:
    """A program split into host prologue, hardware part and host epilogue."""

    def __init__(self, program) -> None:
        ops = list(program.ops)
        tensors = program.tensors
        first = next((i for i, op in enumerate(ops) if not is_host(op, tensors)), len(ops))
        last = max((i for i, op in enumerate(ops) if not is_host(op, tensors)), default=-1)
        self.prologue = ops[:first]
        self.hardware = ops[first : last + 1]
        self.epilogue = ops[last + 1 :]
        stray = [op.name for op in self.hardware if is_host(op, tensors)]
        if stray:
            raise ValueError(f"host ops between hardware layers: {', '.join(stray)}")
        produced = {t for op in self.hardware for t in op.outputs}
        consumed = {t for op in self.hardware for t in op.inputs}
        self.hw_inputs = [t for t in dict.fromkeys(t for op in self.hardware for t in op.inputs) if t not in produced]
        later = {t for op in self.epilogue for t in op.inputs} | set(program.outputs)
        self.hw_outputs = [t for t in dict.fromkeys(produced) if t in later or t not in consumed]


class CallStats:
    """Wall-clock seconds of each call's stages."""

    def __init__(self) -> None:
        self.calls = []

    def add(self, batch: int, prologue: float, hardware: float, epilogue: float) -> None:
        self.calls.append(
            {"batch": batch, "prologue_s": prologue, "hardware_s": hardware, "epilogue_s": epilogue,
             "total_s": prologue + hardware + epilogue}
        )  # fmt: skip

    def summary(self) -> dict:
        """The calls' figures as data: counts, seconds per call (mean, p50, p99), samples/s."""
        if not self.calls:
            return {"calls": 0}
        total = np.array([c["total_s"] for c in self.calls])
        hw = np.array([c["hardware_s"] for c in self.calls])
        samples = sum(c["batch"] for c in self.calls)
        return {
            "calls": len(self.calls),
            "samples": samples,
            "mean_s": float(total.mean()),
            "p50_s": float(np.percentile(total, 50)),
            "p99_s": float(np.percentile(total, 99)),
            "hardware_mean_s": float(hw.mean()),
            "samples_per_s": float(samples / total.sum()) if total.sum() > 0 else float("inf"),
        }

    def describe(self) -> str:
        """:meth:`summary` as one line for people, e.g. ``1 call, 450 samples: 2.10 ms per call
        (p50 2.10 ms, p99 2.10 ms; hardware 1.52 ms), 214,286 samples/s``."""
        s = self.summary()
        if not s["calls"]:
            return "no calls yet"
        calls = f"{s['calls']:,} call{'s' if s['calls'] != 1 else ''}"
        return (
            f"{calls}, {s['samples']:,} samples: {_ms(s['mean_s'])} per call (p50 {_ms(s['p50_s'])}, "
            f"p99 {_ms(s['p99_s'])}; hardware {_ms(s['hardware_mean_s'])}), {s['samples_per_s']:,.0f} samples/s"
        )


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:.2f} ms" if seconds >= 1e-3 else f"{1e6 * seconds:.1f} us"


class Accelerator:
    """A built design, run through one of the backends.

    ``design`` is a build's output directory (or its ``driver/`` directory, or a loaded
    Program). ``backend``: ``golden`` (the integer interpreter), ``csim`` (the compiled
    C-simulation library) or ``pynq`` (the FPGA; on the board).
    """

    def __init__(self, design, backend: str = "golden", **options) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.design_dir = None
        if isinstance(design, Program):
            self.program = design
        else:
            self.design_dir = Path(design)
            self.program = load_program(_program_path(self.design_dir))
        self.partition = Partition(self.program)
        self.backend_name = backend
        self.stats = CallStats()
        self._backend = self._open_backend(backend, options)
        self._closed = False

    def _open_backend(self, backend: str, options: dict):
        if backend == "golden":
            return _GoldenBackend(self.program, self.partition)
        if backend == "csim":
            from .csim_backend import CsimBackend

            return CsimBackend(self.design_dir, self.program, self.partition, **options)
        if backend == "rtl":
            from .rtl_backend import RtlBackend

            return RtlBackend(self.design_dir, self.program, self.partition, **options)
        from .pynq_backend import PynqBackend

        return PynqBackend(self.design_dir, self.program, self.partition, **options)

    def run(self, x, as_dict: bool = False):
        """Run a batch. ``x``: an array (single-input models) or {input name: array}.

        Returns the output array for single-output models, else (or with ``as_dict``)
        {output name: array}.
        """
        if self._closed:
            raise RuntimeError("this Accelerator is closed; create a new one")
        program = self.program
        env = input_env(program, x)
        batch = next(iter(env.values())).shape[0]
        t0 = time.perf_counter()
        evaluate_ops(program, self.partition.prologue, env)
        t1 = time.perf_counter()
        hw_in = {t: env[t] for t in self.partition.hw_inputs}
        env.update(self._backend.run(hw_in))
        t2 = time.perf_counter()
        evaluate_ops(program, self.partition.epilogue, env)
        t3 = time.perf_counter()
        self.stats.add(batch, t1 - t0, t2 - t1, t3 - t2)
        outs = {name: to_output(program, name, env[name]) for name in program.outputs}
        return next(iter(outs.values())) if len(outs) == 1 and not as_dict else outs

    def close(self) -> None:
        if not self._closed:
            self._backend.close()
            self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _GoldenBackend:
    """The integer part by the interpreter: the definition the hardware must match."""

    def __init__(self, program, partition: Partition) -> None:
        self.program = program
        self.partition = partition

    def run(self, hw_in: dict) -> dict:
        env = dict(hw_in)
        evaluate_ops(self.program, self.partition.hardware, env)
        return {t: env[t] for t in self.partition.hw_outputs}

    def close(self) -> None:
        pass


def _program_path(design_dir: Path) -> Path:
    for candidate in (design_dir / "program.json", design_dir / "driver" / "program.json",
                      design_dir / "hls" / "program.json", design_dir / "rtl" / "program.json"):  # fmt: skip
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{design_dir}: no program.json (expected a build directory or its driver/)")
