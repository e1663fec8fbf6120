"""Wire the per-layer blocks into one dataflow design.

The hardware part of the graph is what :class:`accelgen.runtime.accelerator.Partition`
says (the runtime runs the host prologue and epilogue around it). Each hardware input
gets an AXI-Stream port and a gearbox to the first kernel's words; each output the
reverse. Between blocks: Reshape is a pure alias (the stream order does not change); a
tensor read by several kernels is forked (``duplicate``); the FIFO in front of each input
of a join (the bypass of a residual add) is as deep as the join's kernel prices it
(accelgen.kernels.streams); a consumer folded differently from its producer reads
through a width converter (``gearbox``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from accelgen import ir
from accelgen.codegen.dataflow import Block, Kernel, Port, Stream
from accelgen.codegen.layers import BUILDERS, Context, gearbox_kernel
from accelgen.codegen.names import Namer, comment_text
from accelgen.codegen.types import CodeType, code_of
from accelgen.errors import InputError, InternalError, UnsupportedError
from accelgen.kernels import kernel_for
from accelgen.kernels.hw import bypass_fifo_depth
from accelgen.kernels.streams import layer_specs
from accelgen.plan import FoldingPlan
from accelgen.runtime.accelerator import Partition

#: streams get this depth unless a bypass needs more (HLS's own default)
DEFAULT_DEPTH = 2


@dataclass
class IoPort:
    """An AXI-Stream port: one hardware input or output tensor."""

    name: str
    tensor: str
    code: CodeType
    elements: int
    shape: list[int]
    lanes_per_word: int
    words: int


@dataclass
class Design:
    """Everything the templates render: ports, streams, kernels in call order, layers."""

    top: str
    namespace: str
    bus_bits: int
    inputs: list[IoPort]
    outputs: list[IoPort]
    blocks: list[Block]
    plumbing: list[Kernel]
    kernels: list[Kernel]
    streams: list[Stream]
    layers: list[dict] = field(default_factory=list)


def build_design(graph: ir.Graph, plan: FoldingPlan | None, *, top: str, bus_bits: int = 64) -> Design:
    """The dataflow design of ``graph``'s hardware part under ``plan`` (None: pe = simd = 1)."""
    if bus_bits % 8 or bus_bits < 8:
        raise InputError(f"AXI-Stream bus width {bus_bits} must be a positive multiple of 8 bits")
    part = Partition(graph)
    if not part.hardware:
        raise InputError(f"model '{graph.name}' has no integer layers: there is no hardware to generate")
    namespace = f"{top}_design"
    namer = Namer(reserved=(top, namespace, f"{top}_trace"))
    ctx = Context(graph, plan, namer)

    alias: dict[str, str] = {}
    blocks: list[Block] = []
    unsupported = []
    for op in part.hardware:
        if isinstance(op, ir.Reshape):
            alias[op.outputs[0]] = alias.get(op.inputs[0], op.inputs[0])
            continue
        builder = BUILDERS.get(type(op)) or _kernel_builder(op)
        if builder is None:
            unsupported.append(f"'{op.name}' ({op.kind}): no HLS kernel implements it")
            continue
        blocks.append(builder(ctx, op, namer.unique(f"L{len(blocks) + 1}_{op.name}")))
    if unsupported:
        raise UnsupportedError(unsupported, "these layers need an HLS kernel in accelgen/codegen/layers.py")

    def resolve(tensor: str) -> str:
        return alias.get(tensor, tensor)

    inputs, in_blocks = [], []
    for k, name in enumerate(part.hw_inputs):
        port_lanes = [p.stream.lanes for b in blocks for p in b.ports if resolve(p.tensor) == name]
        io, block = _axis_input(ctx, graph, name, k, bus_bits, port_lanes[0] if port_lanes else 1)
        inputs.append(io)
        in_blocks.append(block)
    producers = {b.out_tensor: b for b in [*in_blocks, *blocks]}
    outputs, out_blocks = [], []
    for k, name in enumerate(part.hw_outputs):
        src = producers.get(resolve(name))
        if src is None:
            raise InternalError(f"hardware output '{name}' has no producer")
        io, block = _axis_output(ctx, graph, name, resolve(name), k, bus_bits, src.output)
        outputs.append(io)
        out_blocks.append(block)

    ordered = [*in_blocks, *blocks, *out_blocks]
    plumbing, kernels, streams = _connect(ctx, ordered, producers, resolve)
    layers = _trace_layers(graph, blocks)
    return Design(top, namespace, bus_bits, inputs, outputs, ordered, plumbing, kernels, streams, layers)


def _kernel_builder(op: ir.Op):
    """A kernel module's own code generator (``build``), for layer types added as one module."""
    try:
        return getattr(kernel_for(op), "build", None)
    except UnsupportedError:
        return None


def _axis_input(ctx: Context, graph: ir.Graph, tensor: str, k: int, bus: int, lanes: int) -> tuple[IoPort, Block]:
    t = graph.tensors[tensor]
    if t.kind != "codes":
        raise InputError(f"hardware input '{tensor}' is a {t.kind} tensor; the accelerator reads integer codes")
    code = code_of(t.qtype)
    io = _io_port(f"in{k}", tensor, t, code, bus)
    ident = ctx.namer.unique(f"axis_in{k}")
    fields_s = ctx.stream(f"{ident}_fields", code, io.lanes_per_word, io.words)
    out = ctx.stream(f"{ident}_out", code, lanes, io.elements // lanes)
    # the code fields of a beat are already the first kernel's words when the widths agree
    direct = fields_s.bits == out.bits and io.elements % io.lanes_per_word == 0
    read_into = out if direct else fields_s
    fields = {"bus": bus, "field_bits": fields_s.bits, "words": io.words}
    kernels = [Kernel("axis_read", "axis", ctx.config(f"{ident}_read"), fields, [io.name], [read_into.name])]
    streams = [out] if direct else [fields_s, out]
    if not direct:
        kernels.append(gearbox_kernel(ctx, ident, fields_s, out))
    block = Block(ident, comment_text(tensor), "AxisInput", None, kernels, [], streams, [], out, tensor)
    return io, block


def _axis_output(ctx, graph, tensor: str, source: str, k: int, bus: int, src: Stream) -> tuple[IoPort, Block]:
    t = graph.tensors[tensor]
    code = src.code
    io = _io_port(f"out{k}", tensor, t, code, bus)
    ident = ctx.namer.unique(f"axis_out{k}")
    port = ctx.stream(f"{ident}_in", code, src.lanes, src.words)
    fields_s = ctx.stream(f"{ident}_fields", code, io.lanes_per_word, io.words)
    kernels, streams = [], [port]
    write_from = port
    if not (fields_s.bits == port.bits and io.elements % io.lanes_per_word == 0):
        kernels.append(gearbox_kernel(ctx, ident, port, fields_s))
        streams.append(fields_s)
        write_from = fields_s
    fields = {"bus": bus, "field_bits": write_from.bits, "words": io.words}
    kernels.append(Kernel("axis_write", "axis", ctx.config(f"{ident}_write"), fields, [write_from.name], [io.name]))
    block = Block(
        ident, comment_text(tensor), "AxisOutput", None, kernels, [], streams, [Port(source, port)], None, None
    )
    return io, block


def _io_port(name: str, tensor: str, t: ir.Tensor, code: CodeType, bus: int) -> IoPort:
    if code.bits > bus:
        raise InputError(f"'{tensor}' has {code.bits}-bit elements, wider than the {bus}-bit AXI-Stream bus")
    elements = t.elements_per_sample()
    per_word = bus // code.bits
    return IoPort(name, tensor, code, elements, [int(d) for d in t.shape[1:]], per_word, -(-elements // per_word))


def _bypass_elems(specs: dict, block: Block, port: Port) -> int:
    """Extra elements the FIFO in front of this input of a join holds (kernels.streams)."""
    spec = specs.get(block.op.name) if block.op is not None else None
    if spec is None or not spec.bypass:
        return 0
    index = block.ports.index(port)
    return spec.bypass[index] if index < len(spec.bypass) else 0


def _connect(ctx: Context, blocks: list[Block], producers: dict[str, Block], resolve):
    """Forks, width converters and renames between producers and consumers; the FIFO in
    front of each input of a join is as deep as the join's cost model priced it.

    Returns (plumbing kernels, every kernel in call order, every stream).
    """
    specs = layer_specs(ctx.graph)
    consumers: dict[str, list[tuple[Block, Port]]] = {}
    for b in blocks:
        for p in b.ports:
            consumers.setdefault(resolve(p.tensor), []).append((b, p))
    rename: dict[str, str] = {}
    dropped: set[str] = set()
    before: dict[str, list[Kernel]] = {b.ident: [] for b in blocks}
    after: dict[str, list[Kernel]] = {b.ident: [] for b in blocks}
    extra_streams: dict[str, list[Stream]] = {b.ident: [] for b in blocks}
    plumbing: list[Kernel] = []
    for tensor, readers in consumers.items():
        producer = producers.get(tensor)
        if producer is None:
            raise InternalError(f"tensor '{tensor}' is read by hardware but nothing produces it")
        src = producer.output
        branches = [src]
        if len(readers) > 1:
            branches = _fork(ctx, producer, src, len(readers), after, extra_streams, plumbing)
        for (block, port), s in zip(readers, branches):
            if port.stream.code != s.code:
                raise InternalError(f"'{block.ident}' reads '{tensor}' as {port.stream.code}, produced as {s.code}")
            if port.stream.lanes == s.lanes:
                rename[port.stream.name] = s.name
                dropped.add(port.stream.name)
                read = s
            else:
                k = gearbox_kernel(ctx, f"{block.ident}_{port.stream.name}", s, port.stream)
                before[block.ident].append(k)
                plumbing.append(k)
                read = port.stream
            extra = _bypass_elems(specs, block, port)
            read.depth = max(read.depth, bypass_fifo_depth(extra, read.lanes, read.words))
    kernels: list[Kernel] = []
    streams: list[Stream] = []
    for b in blocks:
        kernels.extend(before[b.ident])
        kernels.extend(b.kernels)
        kernels.extend(after[b.ident])
        streams.extend(s for s in b.streams if s.name not in dropped)
        streams.extend(extra_streams[b.ident])
    for k in kernels:
        k.inputs = [rename.get(n, n) for n in k.inputs]
    return plumbing, kernels, streams


def _fork(ctx, producer: Block, src: Stream, count: int, after, extra_streams, plumbing) -> list[Stream]:
    """A chain of duplicates giving ``count`` copies of ``src``."""
    copies: list[Stream] = []
    current = src
    for i in range(count - 1):
        a = ctx.stream(f"{producer.ident}_fork{i}", src.code, src.lanes, src.words)
        last = i == count - 2
        b = ctx.stream(f"{producer.ident}_fork{i + 1}" if last else f"{producer.ident}_rest{i}", src.code,
                       src.lanes, src.words)  # fmt: skip
        fields = {"word_bits": src.bits, "words": src.words}
        k = Kernel(
            "duplicate", "duplicate", ctx.config(f"{producer.ident}_fork"), fields, [current.name], [a.name, b.name]
        )
        after[producer.ident].append(k)
        plumbing.append(k)
        extra_streams[producer.ident].extend([a, b])
        copies.append(a)
        if last:
            copies.append(b)
        current = b
    return copies


def _trace_layers(graph: ir.Graph, blocks: list[Block]) -> list[dict]:
    """Every layer's output is traced in C simulation and compared with the golden model."""
    layers = []
    for b in blocks:
        producer = next(k for k in reversed(b.kernels) if b.output.name in k.outputs)
        index = len(layers)
        producer.trace = {"index": index, "code": b.output.code.as_dict(), "lanes": b.output.lanes}
        t = graph.tensors[b.out_tensor]
        layers.append({
            "index": index, "ident": b.ident, "name": b.op.name, "op": b.kind, "tensor": b.out_tensor,
            "shape": [int(d) for d in t.shape[1:]], "elements": t.elements_per_sample(),
            "code": b.output.code.as_dict(), "folding": b.folding,
        })  # fmt: skip
    return layers
