"""The folding plan: how much hardware each layer gets. Data, not code.

The explorer writes it as ``folding.json``; the user may edit it and pass it back with
``--folding``; code generation reads it. Keys are the IR op names of the lowered graph.

Folding semantics, per kernel (every kernel module validates its own):

* Dense: ``simd`` input features and ``pe`` output neurons per cycle;
  ``pe`` the fewest lanes for some number of passes n, ``ceil(OUT / n)`` (every divisor,
  and e.g. 22 of 64: three passes, the last padded and its padded outputs dropped;
  accelgen.kernels.mvu.pe_values); ``simd`` likewise the fewest lanes for some number of
  words, ``ceil(IN / n)``: a divisor, or (weights that are not bipolar) up to 16 words
  with the last padded with zero weights (accelgen.kernels.mvu.simd_values);
  cycles = ceil(IN/simd) * ceil(OUT/pe).
* Conv (groups == 1): ``simd`` window elements, ``pe`` output channels per cycle;
  ``pe`` as Dense's over OC, ``simd`` as Dense's over the KH*KW*IC window elements (channels
  of one tap, ``simd = IC * t`` for ``t`` taps a word, or any other such value through a
  gearbox after the window generator; accelgen.kernels.conv);
  cycles = OH*OW * ceil(KH*KW*IC/simd) * ceil(OC/pe).
* Depthwise / grouped Conv: ``pe`` channels in parallel, ``simd`` kernel taps per cycle;
  ``pe`` as Dense's over the channels (depthwise; a grouped Conv runs as a block-diagonal
  Conv), ``simd | KH*KW``; a depthwise Conv at every channel (``pe == C``) takes
  ``simd`` taps a word, a tap word as a Conv's (``t | KW``, or ``KW`` times a divisor of KH;
  accelgen.kernels.depthwise): cycles = OH*OW * KH*KW/simd.
* MaxPool, AvgPool, Add, Requantize, Resize: ``pe`` channels per cycle, ``pe | C``; ``simd`` is 1.
* ``pixels`` (Conv with a window, depthwise Conv, window pools; 1 elsewhere): output pixels
  per cycle, ``pixels | OW``, above 1 only with every output channel in parallel (``pe`` at
  its largest legal value) and, for a Conv or a depthwise Conv, one tap a word: the window
  generator emits that many windows per cycle.
* Concat, Reshape: no folding (``pe = simd = 1``): they move whole stream words.
* ``requant`` (kernels with a multiply-shift requantizer: Dense, Conv, depthwise Conv, Add,
  Requantize): where the requantizer's product is built, ``"dsp"`` (DSP48E2 tiles, the
  default) or ``"fabric"`` (LUTs and the carry chain; accelgen.kernels.requant); exact either way.
* TTDense: ``steps``, one parallelism per contraction step (MACs per cycle, a divisor of
  the step's reduction length times its columns, see accelgen.kernels.tt); ``pe = simd = 1``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelgen.errors import InputError

PLAN_VERSION = 1
#: where a multiply-shift requantizer's product may be built (``LayerFold.requant``)
REQUANT_PRODUCTS = ("dsp", "fabric")
DEFAULT_PRODUCT = "dsp"


@dataclass(frozen=True)
class LayerFold:
    pe: int = 1
    simd: int = 1
    #: per-step parallelism of a kernel that works in steps (TTDense); empty for the others
    steps: tuple[int, ...] = ()
    #: output pixels per cycle (window kernels; 1 for the others)
    pixels: int = 1
    #: where the multiply-shift requantizer's product is built: one of REQUANT_PRODUCTS
    requant: str = DEFAULT_PRODUCT


@dataclass
class FoldingPlan:
    """Per-layer folding plus what it was planned for."""

    layers: dict[str, LayerFold]
    board: str = ""
    clock_mhz: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def fold(self, layer: str) -> LayerFold:
        return self.layers.get(layer, LayerFold())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "board": self.board,
            "clock_mhz": self.clock_mhz,
            "layers": {name: _fold_json(f) for name, f in self.layers.items()},
            "meta": self.meta,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @staticmethod
    def from_json(data: dict[str, Any], source: str = "folding plan") -> FoldingPlan:
        if not isinstance(data, dict) or not isinstance(data.get("layers"), dict):
            raise InputError(f"{source}: expected a JSON object with a 'layers' object")
        layers = {}
        for name, entry in data["layers"].items():
            try:
                pe, simd, pixels = int(entry.get("pe", 1)), int(entry.get("simd", 1)), int(entry.get("pixels", 1))
            except (AttributeError, TypeError, ValueError):
                raise InputError(f"{source}: layer '{name}' needs integer 'pe', 'simd' (and 'pixels')") from None
            if pe < 1 or simd < 1 or pixels < 1:
                raise InputError(
                    f"{source}: layer '{name}' has pe={pe}, simd={simd}, pixels={pixels}; all must be >= 1"
                )
            steps = _steps(entry.get("steps", []), f"{source}: layer '{name}'")
            product = entry.get("requant", DEFAULT_PRODUCT)
            if product not in REQUANT_PRODUCTS:
                raise InputError(f"{source}: layer '{name}' has requant={product!r}; legal: "
                                 f"{', '.join(map(repr, REQUANT_PRODUCTS))}")  # fmt: skip
            layers[name] = LayerFold(pe, simd, steps, pixels, product)
        return FoldingPlan(
            layers=layers,
            board=str(data.get("board", "")),
            clock_mhz=float(data.get("clock_mhz", 0.0) or 0.0),
            meta=dict(data.get("meta", {})),
        )

    @staticmethod
    def load(path: str | Path) -> FoldingPlan:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"--folding {path}: no such file")
        try:
            data = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"--folding {path}: not valid JSON ({exc})") from None
        return FoldingPlan.from_json(data, source=str(path))


def _fold_json(fold: LayerFold) -> dict[str, Any]:
    out: dict[str, Any] = {"pe": fold.pe, "simd": fold.simd}
    if fold.steps:
        out["steps"] = list(fold.steps)
    if fold.pixels > 1:
        out["pixels"] = fold.pixels
    if fold.requant != DEFAULT_PRODUCT:
        out["requant"] = fold.requant
    return out


def _steps(value: Any, where: str) -> tuple[int, ...]:
    """A layer's optional ``steps`` list: positive integers."""
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InputError(f"{where}: 'steps' must be a list of integers (one parallelism per step)")
    if any(v < 1 for v in value):
        raise InputError(f"{where}: 'steps' {value} has a value below 1")
    return tuple(value)
