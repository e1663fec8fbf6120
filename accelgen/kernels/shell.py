"""The whole design around the kernels: the AXI-Stream interface and the board's shell.

* **Interface**: every hardware input and output is an AXI-Stream port of ``bus_bits``
  (the width code generation gives ``build_design``); a frame of ``elements`` codes of
  ``bits`` bits takes ``ceil(elements / (bus_bits // bits))`` beats, one beat per cycle at
  best. The design cannot start frames faster than its busiest port moves them, so the
  whole design's II is at least :attr:`Interface.beats`.
* **Shell**: the DMA + interconnect + PS-reset logic of the block design, per board
  family (``zynq7``: Zynq-7000, ``zynqmp``: Zynq UltraScale+), one DMA channel per port
  (constants of :mod:`accelgen.kernels.calibration`, with their sources), and the DSPs
  charged per sliding-window generator (calibration.DSP_PER_WINDOW: none at present).
* **Stream plumbing**: the forks, width converters, AXI-Stream adapters and their streams
  that code generation instantiates around the layers, predicted from the layers' foldings
  and priced from hw primitives (:mod:`accelgen.kernels.plumbing`; it depends on the plan).
  The explorer subtracts the shell and the fully folded plan's plumbing from the budget
  the kernels may use, and reports the shell with the chosen plan's plumbing as their own line.
* **Calibration**: the kernels' cost-model totals times a fitted scale per resource
  (``calibration.KERNEL_SCALE``) plus the shell is the whole-design estimate
  (:func:`whole_design`); the explorer plans the kernels against :func:`kernel_budget`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from accelgen import ir
from accelgen.kernels import calibration, plumbing
from accelgen.kernels.base import NONE, LayerSpec, Resources, ceil_div, element_bits
from accelgen.plan import LayerFold

#: the AXI-Stream bus width of the generated design (the PYNQ driver packs 8..64-bit words)
DEFAULT_BUS_BITS = 64


@dataclass(frozen=True)
class Port:
    """One AXI-Stream port: a hardware input (``direction`` "in") or output tensor."""

    tensor: str
    direction: str
    elements: int
    bits: int
    bus_bits: int

    @property
    def lanes(self) -> int:
        return max(self.bus_bits // self.bits, 1)

    @property
    def beats(self) -> int:
        """Bus beats per frame (one per cycle at best)."""
        return ceil_div(self.elements, self.lanes)

    def to_json(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "direction": self.direction, "elements": self.elements, "bits": self.bits,
                "lanes_per_beat": self.lanes, "beats": self.beats}  # fmt: skip


@dataclass(frozen=True)
class Interface:
    bus_bits: int
    ports: tuple[Port, ...]

    @property
    def beats(self) -> int:
        """The smallest II the ports allow: the busiest port's beats per frame."""
        return max((p.beats for p in self.ports), default=0)

    def to_json(self) -> dict[str, Any]:
        return {"bus_bits": self.bus_bits, "beats": self.beats, "ports": [p.to_json() for p in self.ports]}


def interface(graph: ir.Graph, bus_bits: int = DEFAULT_BUS_BITS) -> Interface:
    """The AXI-Stream ports of ``graph``'s hardware part (as code generation makes them)."""
    from accelgen.runtime.accelerator import Partition  # the one definition of the host split

    part = Partition(graph)
    alias: dict[str, str] = {}
    for op in part.hardware:
        if isinstance(op, ir.Reshape):
            alias[op.outputs[0]] = alias.get(op.inputs[0], op.inputs[0])
    ports = []
    for direction, names in (("in", part.hw_inputs), ("out", part.hw_outputs)):
        for name in names:
            t = graph.tensors[name]
            ports.append(Port(name, direction, t.elements_per_sample(), element_bits(t), bus_bits))
    return Interface(bus_bits, tuple(ports))


def shell(family: str, ports: int) -> Resources:
    """The DMA + interconnect + reset logic of a board family's block design."""
    if family not in calibration.SHELL_FIXED:
        raise ValueError(f"no shell figures for processing system '{family}'")
    return calibration.SHELL_FIXED[family] + calibration.SHELL_PER_PORT * ports


def windows(graph: ir.Graph) -> int:
    """Sliding-window generators: convolutions with a kernel larger than 1 x 1."""
    return sum(1 for op in graph.ops if isinstance(op, ir.Conv) and op.weights.shape[2] * op.weights.shape[3] > 1)


def window_dsps(n_windows: int) -> Resources:
    """The DSPs the calibration charges per sliding-window generator (calibration.DSP_PER_WINDOW)."""
    return Resources(dsp=round(calibration.DSP_PER_WINDOW * n_windows))


def stream_plumbing(graph: ir.Graph, folds: Mapping[str, LayerFold] | None = None,
                    bus_bits: int = DEFAULT_BUS_BITS, specs: Mapping[str, LayerSpec] | None = None) -> Resources:  # fmt: skip
    """The stream plumbing code generation instantiates around the layers at ``folds`` (None:
    every layer at pe = simd = 1): forks, width converters, AXI-Stream adapters and their
    streams, priced from hw primitives (accelgen.kernels.plumbing)."""
    from accelgen.kernels.streams import layer_specs

    specs = layer_specs(graph) if specs is None else specs
    return plumbing.plumbing(graph, specs, folds or {}, bus_bits).resources()


def overhead(family: str, iface: Interface, plumb: Resources = NONE, n_windows: int = 0) -> Resources:
    """Everything outside the layer kernels' own cost models: the shell, the stream plumbing
    (``plumb``, :func:`stream_plumbing`) and the window generators' DSPs (calibration.DSP_PER_WINDOW)."""
    return shell(family, len(iface.ports)) + plumb + window_dsps(n_windows)


def graph_overhead(family: str, iface: Interface, graph: ir.Graph, folds: Mapping[str, LayerFold] | None = None) -> Resources:  # fmt: skip
    """:func:`overhead` of ``graph`` with its layers at ``folds`` (None: pe = simd = 1)."""
    return overhead(family, iface, stream_plumbing(graph, folds, iface.bus_bits), windows(graph))


def _scale(key: str) -> float:
    return calibration.KERNEL_SCALE.get(key, 1.0)


def kernel_budget(budget: dict[str, int], extra: Resources) -> dict[str, int]:
    """The budget in the kernel cost models' own units: what is left once ``extra`` is
    taken off, over the calibrated kernel scale (a design's kernels use ``scale x`` what
    their cost models say); negative when ``extra`` alone does not fit."""
    used = extra.as_dict()
    return {k: math.floor((v - used[k]) / _scale(k) + 1e-9) for k, v in budget.items()}


def whole_design(kernels: Resources, extra: Resources) -> Resources:
    """The calibrated whole-design estimate: scaled kernels plus ``extra``."""
    scaled = Resources(**{k: math.ceil(v * _scale(k) - 1e-9) for k, v in kernels.as_dict().items()})
    return scaled + extra
