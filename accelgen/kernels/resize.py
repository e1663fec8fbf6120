"""Nearest-neighbour upsampling kernel (Resize): its hardware, its cost and its generated block.

The kernel (``upsample_nearest`` in hls/accelgen/resize.h) streams channels-last words of
``pe`` lanes. It reads each input row once, as it emits that row's first output row, into
a line buffer of one input row (W * C/pe words), and emits the row FH times with each
pixel repeated FW times; within the first output row a pixel's repeats come from a shift
register of one pixel (C/pe words) instead, so no word is read back from the buffer
right after it is written (output rows of one pixel, W == FW == 1, are all repeats from
the shift register). One output word per cycle:

* folding (accelgen.plan): ``pe | C``, ``simd`` = 1;
* cycles per frame = output elements / pe = H*FH * W*FW * C/pe (the kernel's trip count);
* lag: 0 (the first output word needs only the first input word).

:func:`hardware` is the one description of that hardware; :func:`cost` prices it and
:func:`build` generates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from accelgen import ir
from accelgen.errors import InputError
from accelgen.kernels import hw
from accelgen.kernels.base import (
    NONE,
    Cost,
    Hardware,
    LayerSpec,
    Memory,
    MultiplierNeed,
    Resources,
    ceil_div,
    divisors,
    element_bits,
    feature_map,
    fold_problems,
)
from accelgen.plan import LayerFold

if TYPE_CHECKING:
    from accelgen.codegen.dataflow import Block
    from accelgen.codegen.layers import Context

OPS = (ir.Resize,)


@dataclass(frozen=True, kw_only=True)
class ResizeSpec(LayerSpec):
    in_h: int
    in_w: int
    channels: int
    fh: int
    fw: int
    bits: int  # of one code


class Geometry(NamedTuple):
    """The shape of ``upsample_nearest`` at one folding."""

    word_bits: int  # pe lanes of one code
    words_per_pixel: int  # C / pe
    row_words: int  # the line buffer: one input row (0: rows of one pixel need none)
    pixel_words: int  # the shift register of one pixel's repeats (0 when nothing repeats from it)
    cycles: int  # loop trips per frame = output words


def matches(op: ir.Op) -> bool:
    return isinstance(op, ir.Resize)


def describe(op: ir.Resize, graph: ir.Graph) -> ResizeSpec:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    h, w, c = feature_map(x)
    fh, fw = (int(f) for f in op.factors)
    return ResizeSpec(
        name=op.name, kind=op.kind, in_bits=(element_bits(x),), in_elems=(h * w * c,), out_bits=element_bits(out),
        out_elems=h * fh * w * fw * c, in_h=h, in_w=w, channels=c, fh=fh, fw=fw, bits=element_bits(x),
    )  # fmt: skip


def geometry(spec: ResizeSpec, pe: int) -> Geometry:
    nf = spec.channels // pe
    pixel_rows = spec.in_w * spec.fw == 1  # output rows of one pixel repeat the shift register, not the buffer
    return Geometry(
        word_bits=pe * spec.bits, words_per_pixel=nf, row_words=0 if pixel_rows else spec.in_w * nf,
        pixel_words=nf if spec.fw > 1 or (pixel_rows and spec.fh > 1) else 0,
        cycles=spec.in_h * spec.fh * spec.in_w * spec.fw * nf,
    )  # fmt: skip


def hardware(spec: ResizeSpec, fold: LayerFold) -> Hardware:
    g = geometry(spec, fold.pe)
    memories = (Memory("line_buffer", "ram", g.word_bits, g.row_words),) if g.row_words else ()
    shift = _shift_register(g.word_bits, g.pixel_words) if g.pixel_words else NONE
    select = Resources(lut=g.word_bits, ff=g.word_bits)  # input / shift register / buffer, registered
    return Hardware(cycles=g.cycles, depth=hw.BRAM_READ_LATENCY + 1, memories=memories,
                    fifos=hw.input_fifos(spec.in_bits, spec.in_elems, spec.bypass, (fold.pe,)),
                    logic=shift + select + hw.KERNEL_CONTROL)  # fmt: skip


def legal(spec: ResizeSpec) -> dict[str, list[int]]:
    return {"pe": divisors(spec.channels), "simd": [1]}


def cost(spec: ResizeSpec, fold: LayerFold) -> Cost:
    return hw.price(hardware(spec, fold))


def _shift_register(width: int, depth: int) -> Resources:
    """A ``depth``-word delay line: SRLC32E shift registers (one LUT per bit per 32 words), a register at depth 1."""
    if depth == 1:
        return Resources(ff=width)
    luts = width * ceil_div(depth, hw.SRL_DEPTH)
    return Resources(lut=luts, lutram=luts, ff=width)


def lag(spec: ResizeSpec) -> int:
    return 0


def multiplier(spec: ResizeSpec) -> MultiplierNeed:
    return MultiplierNeed(0, {})


def build(ctx: Context, op: ir.Resize, ident: str) -> Block:
    """The generated block: one ``upsample_nearest`` kernel between two streams of ``pe`` lanes."""
    # the code generator imports every kernel module, so its helpers are imported when used
    from accelgen.codegen.dataflow import Block, Kernel, Port
    from accelgen.codegen.names import comment_text
    from accelgen.codegen.types import code_of

    spec = describe(op, ctx.graph)
    fold = ctx.fold(op)
    bad = fold_problems(legal(spec), fold)
    if bad:
        raise InputError(f"folding plan: layer '{op.name}' (Resize) has {'; '.join(bad)}; Resize folds channels by pe")
    k = geometry(spec, fold.pe)
    code = code_of(ctx.tensor(op.inputs[0]).qtype)
    src = ctx.stream(f"{ident}_in", code, fold.pe, spec.in_elems[0] // fold.pe)
    out = ctx.stream(f"{ident}_out", code, fold.pe, k.cycles)
    fields = {
        "word_bits": k.word_bits, "words_per_pixel": k.words_per_pixel, "in_h": spec.in_h, "in_w": spec.in_w,
        "fh": spec.fh, "fw": spec.fw, "channels": spec.channels, "pe": fold.pe,
    }  # fmt: skip
    kernel = Kernel("upsample_nearest", "resize", ctx.config(f"{ident}_resize"), fields, [src.name], [out.name])
    return Block(ident, comment_text(op.name), op.kind, op, [kernel], [], [src, out], [Port(op.inputs[0], src)], out,
                 op.outputs[0], folding={"pe": fold.pe, "simd": 1})  # fmt: skip
