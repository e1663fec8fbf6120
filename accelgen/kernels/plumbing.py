"""The stream plumbing between the layer kernels, as code generation instantiates it, priced.

accelgen.codegen.connect.build_design puts around the layers' own kernels:

* per hardware input, an ``axis_read`` (bus beats to code fields) and, unless the fields
  already are the first reader's words, a ``gearbox`` to them; per hardware output the
  reverse (a ``gearbox`` if needed, an ``axis_write``);
* per tensor read by several kernels, a chain of ``duplicate`` forks (readers - 1 of them);
* per reader folded differently from the producer (other lanes per word), a ``gearbox``;
* the streams those kernels read (each an ``hls::stream`` FIFO of the default depth). The
  streams a layer's kernels read are that layer's input FIFOs, which its own cost prices.

:func:`plumbing` predicts these from the graph, the layers' specs and their foldings (the
lanes of the streams each layer reads and writes are the foldings: :func:`stream_lanes`),
without building the design, so the explorer can price a plan's plumbing;
tests/test_one_description.py checks that it equals what build_design instantiates.
Every part is priced from accelgen.kernels.hw primitives (:meth:`Plumbing.resources`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from accelgen import ir
from accelgen.kernels import hw
from accelgen.kernels.base import Fifo, LayerSpec, Resources, element_bits
from accelgen.plan import LayerFold


@dataclass(frozen=True)
class Plumbing:
    """The plumbing kernels and the streams they read.

    ``gearboxes``: (in_bits, out_bits) per width converter; ``duplicates``: word bits per
    fork; ``reads`` / ``writes``: (bus_bits, field_bits) per AXI-Stream adapter; ``fifos``:
    the streams the plumbing kernels read."""

    gearboxes: tuple[tuple[int, int], ...] = ()
    duplicates: tuple[int, ...] = ()
    reads: tuple[tuple[int, int], ...] = ()
    writes: tuple[tuple[int, int], ...] = ()
    fifos: tuple[Fifo, ...] = ()

    @property
    def kernels(self) -> int:
        return len(self.gearboxes) + len(self.duplicates) + len(self.reads) + len(self.writes)

    def resources(self) -> Resources:
        """Each plumbing kernel is a pipelined HLS process (hw.KERNEL_CONTROL) plus:

        * gearbox: hw.gearbox (its buffer register and shifters);
        * duplicate: the word register it holds while writing both copies (one FF per bit);
        * axis_read: the field register it writes (one FF per bit; the field select is wiring);
        * axis_write: the beat register (bus data + TLAST; TKEEP/TSTRB are constants);
        * every stream they read: hw.fifo.
        """
        res = hw.KERNEL_CONTROL * self.kernels
        for a, b in self.gearboxes:
            res = res + hw.gearbox(a, b)
        for bits in self.duplicates:
            res = res + Resources(ff=bits)
        for _, field in self.reads:
            res = res + Resources(ff=field)
        for bus, _ in self.writes:
            res = res + Resources(ff=bus + 1)
        for f in self.fifos:
            res = res + hw.fifo(f.width, f.depth)
        return res


def stream_lanes(op: ir.Op, spec: LayerSpec, fold: LayerFold) -> tuple[tuple[int, ...], int]:
    """Lanes (elements per word) of the streams a layer reads (one per input) and writes, as
    its kernel module and code generation lay them out: the kernel's own ``stream_lanes``
    when it has one (the matrix units, Concat, TTDense), else a channel-parallel kernel's
    ``pe`` in (``pe * pixels`` out at several pixels per cycle)."""
    from accelgen.kernels import kernel_for

    own = getattr(kernel_for(op), "stream_lanes", None)
    if own is not None:
        return own(spec, fold)
    return (fold.pe,) * len(spec.in_bits), fold.pe * fold.pixels


def plumbing(graph: ir.Graph, specs: Mapping[str, LayerSpec], folds: Mapping[str, LayerFold],
             bus_bits: int) -> Plumbing:  # fmt: skip
    """The plumbing build_design instantiates for ``graph``'s hardware part with the layers
    at ``folds`` (a layer missing from it: pe = simd = 1)."""
    from accelgen.runtime.accelerator import Partition  # the one definition of the host split

    part = Partition(graph)
    alias: dict[str, str] = {}
    layers: list[ir.Op] = []
    for op in part.hardware:
        if isinstance(op, ir.Reshape):
            alias[op.outputs[0]] = alias.get(op.inputs[0], op.inputs[0])
        elif op.name in specs:
            layers.append(op)

    def resolve(t: str) -> str:
        return alias.get(t, t)

    # producer of each stream: (element bits, lanes); readers: lanes each, in block order
    out_of: dict[str, tuple[int, int]] = {}
    readers: dict[str, list[int | None]] = {}  # None: an output port (reads the producer's lanes)
    lanes_of: dict[str, tuple[tuple[int, ...], int]] = {}
    for op in layers:
        spec = specs[op.name]
        lanes_of[op.name] = stream_lanes(op, spec, folds.get(op.name, LayerFold(1, 1)))
    gearboxes: list[tuple[int, int]] = []
    duplicates: list[int] = []
    reads: list[tuple[int, int]] = []
    writes: list[tuple[int, int]] = []
    fifos: list[Fifo] = []
    for name in part.hw_inputs:
        t = graph.tensors[name]
        bits = element_bits(t)
        first = [lanes_of[op.name][0][i] for op in layers for i, x in enumerate(op.inputs) if resolve(x) == name]
        lanes = first[0] if first else 1
        per_word = bus_bits // bits  # code fields per bus beat
        direct = per_word == lanes and t.elements_per_sample() % per_word == 0
        reads.append((bus_bits, bits * (lanes if direct else per_word)))
        if not direct:
            gearboxes.append((bits * per_word, bits * lanes))
            fifos.append(Fifo("axis_in", bits * per_word, hw.STREAM_FIFO_DEPTH))
        out_of[name] = (bits, lanes)
    for op in layers:
        out_of[op.outputs[0]] = (specs[op.name].out_bits, lanes_of[op.name][1])
        for i, x in enumerate(op.inputs):
            readers.setdefault(resolve(x), []).append(lanes_of[op.name][0][i])
    for name in part.hw_outputs:
        readers.setdefault(resolve(name), []).append(None)
    for tensor, lanes_read in readers.items():
        bits, lanes = out_of[tensor]
        word = bits * lanes
        if len(lanes_read) > 1:  # a chain of forks: each reads the source or the previous rest
            duplicates += [word] * (len(lanes_read) - 1)
            fifos += [Fifo("fork", word, hw.STREAM_FIFO_DEPTH)] * (len(lanes_read) - 1)
        for want in lanes_read:
            if want is None or want != lanes:  # a plumbing kernel reads this copy
                fifos.append(Fifo("copy", word, hw.STREAM_FIFO_DEPTH))
            if want is not None and want != lanes:
                gearboxes.append((word, bits * want))
    for name in part.hw_outputs:
        bits, lanes = out_of[resolve(name)]
        elements = graph.tensors[name].elements_per_sample()
        per_word = bus_bits // bits
        if per_word == lanes and elements % per_word == 0:
            writes.append((bus_bits, bits * lanes))
        else:
            gearboxes.append((bits * lanes, bits * per_word))
            fifos.append(Fifo("axis_out", bits * per_word, hw.STREAM_FIFO_DEPTH))
            writes.append((bus_bits, bits * per_word))
    return Plumbing(tuple(gearboxes), tuple(duplicates), tuple(reads), tuple(writes), tuple(fifos))
