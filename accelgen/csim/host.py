"""What runs around the emulated hardware: the host prologue and epilogue of a design,
from the lowered graph saved with it, as the runtime runs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from accelgen.errors import InputError


def load_host_program(outdir: str | Path):
    """The lowered graph saved with a design (hls/program.json, else driver/program.json),
    with its host/hardware ``partition``: what runs around the emulated hardware."""
    from accelgen.runtime.accelerator import Partition
    from accelgen.runtime.program import load_program

    for candidate in (Path(outdir) / "hls" / "program.json", Path(outdir) / "driver" / "program.json"):
        if candidate.is_file():
            program = load_program(candidate)
            program.partition = Partition(program)
            return program
    raise InputError(f"{outdir}: no hls/program.json or driver/program.json; is this a generated design?")


def host_epilogue(outdir: str | Path, hw_outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's outputs from the hardware's (e.g. run_csim(..., keep_outputs=True)):
    the host epilogue (dequantization, float tail) as the runtime runs it."""
    from accelgen.runtime.interpreter import evaluate_ops, to_output

    program = load_host_program(outdir)
    env = dict(hw_outputs)
    evaluate_ops(program, program.partition.epilogue, env)
    return {n: to_output(program, n, env[n]) for n in program.outputs}
