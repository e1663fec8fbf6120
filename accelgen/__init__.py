"""accelgen: quantized ONNX models to bit-exact FPGA accelerators.

The compiler's entry points are loaded on first use, so that ``accelgen.runtime`` (which
a board imports with only numpy installed) does not pull in onnx.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "CompileConfig": ("accelgen.config", "CompileConfig"),
    "Compiled": ("accelgen.pipeline", "Compiled"),
    "compile_model": ("accelgen.pipeline", "compile_model"),
    "BuildOptions": ("accelgen.config", "BuildOptions"),
    "Design": ("accelgen.pipeline", "Design"),
    "build": ("accelgen.pipeline", "build"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'accelgen' has no attribute {name!r}")
