"""Compiler options that change what is generated (not where files go)."""

from __future__ import annotations

from dataclasses import dataclass

from accelgen.errors import InputError

REQUANT_POLICIES = ("auto", "thresholds", "multiply_shift")
ARITHMETIC = ("reference", "exact")


@dataclass(frozen=True)
class CompileConfig:
    """Options of the compile passes.

    ``requant``: how accumulators become codes. ``auto`` uses thresholds for outputs of
    at most ``threshold_max_bits`` bits (a few comparators per channel) and an exact
    multiply-shift for wider outputs when one exists, thresholds otherwise.

    ``arithmetic``: what a requantizer reproduces. ``reference`` (default) follows the
    reference executor of the model's dialect, rounding included: onnxruntime's integer
    kernels (QLinearConv, QLinearMatMul, QGemm) requantize with a float32 multiplier, so
    QOperator layers do the same. ``exact`` evaluates every requantization in exact
    (float64) arithmetic, the ONNX operators' mathematical definition.
    """

    requant: str = "auto"
    threshold_max_bits: int = 4
    max_multiplier_bits: int = 32
    arithmetic: str = "reference"

    def __post_init__(self) -> None:
        if self.arithmetic not in ARITHMETIC:
            raise InputError(f"--arithmetic must be one of {', '.join(ARITHMETIC)}, not '{self.arithmetic}'")
        if self.requant not in REQUANT_POLICIES:
            raise InputError(f"--requant must be one of {', '.join(REQUANT_POLICIES)}, not '{self.requant}'")
