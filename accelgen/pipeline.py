"""The stages of accelgen, in order, each timed: the one place the flow is written down."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from accelgen import ir
from accelgen.config import CompileConfig
from accelgen.frontend import detect_dialect, import_model, load_model
from accelgen.passes import run_passes


@dataclass
class Compiled:
    """What the front end and passes produce: the lowered graph plus how it was made."""

    model_path: str
    dialect: str
    graph: ir.Graph
    imported: ir.Graph
    timings: dict[str, float] = field(default_factory=dict)


def _stage(timings: dict[str, float], name: str, fn: Callable, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    timings[name] = time.perf_counter() - t0
    return out


def compile_model(model: str | Path | onnx.ModelProto, config: CompileConfig | None = None) -> Compiled:
    """frontend -> passes: read, normalise and lower a quantized ONNX model."""
    config = config or CompileConfig()
    timings: dict[str, float] = {}
    if isinstance(model, onnx.ModelProto):
        proto, path = model, "<memory>"
    else:
        path = str(model)
        proto = _stage(timings, "load", load_model, model)
    name = Path(path).stem if path != "<memory>" else (proto.graph.name or "model")
    dialect = detect_dialect(proto)
    imported = _stage(timings, "frontend", import_model, proto, name)
    lowered = _stage(timings, "passes", run_passes, imported, config)
    lowered.meta["dialect"] = dialect
    return Compiled(path, dialect, lowered, imported, timings)
