"""The whole design around the kernels: the AXI-Stream interface and the board's shell.

* **Interface**: every hardware input and output is an AXI-Stream port of ``bus_bits``
  (the width code generation gives ``build_design``); a frame of ``elements`` codes of
  ``bits`` bits takes ``ceil(elements / (bus_bits // bits))`` beats, one beat per cycle at
  best. The design cannot start frames faster than its busiest port moves them, so the
  whole design's II is at least :attr:`Interface.beats`.
* **Shell**: the DMA + interconnect + PS-reset logic of the block design, per board
  family (``zynq7``: Zynq-7000, ``zynqmp``: Zynq UltraScale+), one DMA channel per port;
  plus the HLS adapters of each port. Its figures are constants of
  :mod:`accelgen.kernels.calibration` (with their sources); the explorer subtracts the
  shell from the budget the kernels may use and reports it as its own line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accelgen import ir
from accelgen.kernels import calibration, hw
from accelgen.kernels.base import Resources, ceil_div

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


def _bits(t: ir.Tensor) -> int:
    q = t.qtype
    if q is None:
        return 32
    return 1 if q.bipolar else int(q.bits)


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
            ports.append(Port(name, direction, t.elements_per_sample(), _bits(t), bus_bits))
    return Interface(bus_bits, tuple(ports))


def adapters(iface: Interface) -> Resources:
    """The HLS kernels that turn bus beats into code fields and back, one per port."""
    c = calibration
    per = Resources(lut=c.ADAPTER_LUT_PER_BUS_BIT * iface.bus_bits, ff=c.ADAPTER_FF_PER_BUS_BIT * iface.bus_bits)
    return (per + hw.KERNEL_CONTROL) * len(iface.ports)


def shell(family: str, ports: int) -> Resources:
    """The DMA + interconnect + reset logic of a board family's block design."""
    if family not in calibration.SHELL_FIXED:
        raise ValueError(f"no shell figures for processing system '{family}'")
    return calibration.SHELL_FIXED[family] + calibration.SHELL_PER_PORT * ports


def overhead(family: str, iface: Interface) -> Resources:
    """Everything outside the layer kernels: the shell and the port adapters."""
    return shell(family, len(iface.ports)) + adapters(iface)
