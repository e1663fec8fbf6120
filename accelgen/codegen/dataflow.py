"""The dataflow design as data: streams, kernel instances, their configs and parameters.

A :class:`Block` is the hardware of one IR op (or one AXI port): the kernels it
instantiates, in order, the streams between them, the parameters they read, and the
ports through which it reads its input tensors. :mod:`accelgen.codegen.connect` wires the
blocks together (forks, width converters, FIFO depths); the templates render the result.
Everything here is plain data: identifiers, numbers and nested dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from accelgen import ir
from accelgen.codegen.types import CodeType


@dataclass
class Stream:
    """An ``hls::stream<ap_uint<lanes * code.bits>>`` carrying ``words`` words per sample."""

    name: str
    code: CodeType
    lanes: int
    words: int
    depth: int = 2

    @property
    def bits(self) -> int:
        return self.lanes * self.code.bits

    @property
    def elements(self) -> int:
        return self.lanes * self.words


@dataclass
class Param:
    """A constant parameter object (packed weights or a requantizer table).

    ``template`` names the params macro that renders it, ``config`` the config struct
    whose ``typedef_name`` types it; ``partition`` lists (member, dimension) pairs that
    the top partitions completely.
    """

    name: str
    template: str
    config: str
    typedef_name: str
    data: dict
    partition: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Kernel:
    """One call ``accelgen::function<config>(inputs..., outputs..., params..., reps)``.

    ``template`` names the config template (templates/hls/config/<template>.h.j2) that
    renders the struct ``config`` from ``fields``. ``frames``: the kernel's samples per
    sample of the design (its call takes ``reps * frames``): a gearbox framed per pixel.
    """

    function: str
    template: str
    config: str
    fields: dict
    inputs: list[str]
    outputs: list[str]
    params: list[str] = field(default_factory=list)
    trace: dict | None = None  # set on the kernel writing a traced layer output
    frames: int = 1

    @property
    def args(self) -> list[str]:
        return [*self.inputs, *self.outputs, *self.params]


@dataclass
class Port:
    """An input tensor a block reads: the stream its first kernel reads and its lanes."""

    tensor: str
    stream: Stream


@dataclass
class Block:
    """The hardware of one IR op or AXI port (the op's kernel module describes what it
    costs; accelgen.kernels.streams sizes the bypass FIFOs of residual branches)."""

    ident: str
    label: str
    kind: str
    op: ir.Op | None
    kernels: list[Kernel]
    params: list[Param]
    streams: list[Stream]
    ports: list[Port]
    output: Stream | None
    out_tensor: str | None
    folding: dict = field(default_factory=dict)
