"""accelgen: quantized ONNX models to bit-exact FPGA accelerators."""

from __future__ import annotations

__version__ = "0.1.0"

from accelgen.config import CompileConfig  # noqa: E402
from accelgen.pipeline import Compiled, compile_model  # noqa: E402

__all__ = ["CompileConfig", "Compiled", "compile_model", "__version__"]
