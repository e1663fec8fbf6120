"""Convolution kernel (dense or grouped): a sliding-window generator feeding a matrix-vector unit.

Folding (accelgen.plan): ``simd`` window elements and ``pe`` output channels per cycle,
``pe`` among :func:`accelgen.kernels.mvu.pe_values` (a divisor of OC, or the fewest lanes
for a number of passes ceil(OC / pe): the last pass padded, its padded lanes dropped per
pixel by a gearbox, :func:`accelgen.kernels.mvu.padded_output`). ``simd`` is either a divisor of IC (``simd`` channels of one tap a word) or,
with a window generator, ``IC * t`` for ``t | KW`` above 1 (tap-parallel: ``t``
consecutive taps of one kernel row, or ``t = KW * r`` for ``r | KH``, ``r`` whole kernel
rows, all their channels, a word), so a layer with few input channels is parallel over
its kernel, or any other ``simd`` of :func:`accelgen.kernels.mvu.simd_values` of
KH*KW*IC (a divisor, or unless the weights are bipolar the fewest lanes for a number of
words up to 16, the last word padded with zero weights): the window generator then emits the
smallest of those words with at least ``simd`` elements and a gearbox (streams.h) re-cuts
each window into ``ceil(KH*KW*IC / simd)`` ``simd``-element words, so the unit's lanes
need not step from IC * t to IC * 2t (:func:`word`). Pointwise, ``simd`` is among
:func:`accelgen.kernels.mvu.simd_values` of IC, a gearbox re-cutting each pixel's
channels when it does not divide them. ``pixels`` output pixels per cycle
(``pixels | OW``, above 1 only at ``pe == OC`` and ``simd | IC``: the window generator
emits that many windows per word and the unit computes them side by side with the same
weights, ``pe * simd * pixels`` products a cycle; the emissions and the unit's passes take
``1 / pixels`` of the cycles). A grouped convolution that is not depthwise (a channel
multiplier, several channels per group) runs as a dense convolution with block-diagonal
weights (exact: the zeros add nothing) and is priced as one. A 1x1 convolution with
stride 1 and no padding reads the feature map directly (no window generator).

As generated (hls/accelgen/swg.h, mvau.h): the window generator reads words of ``lanes``
channels (``simd``, or IC when tap-parallel) into a line buffer of ``(KH-1)*DH + 1 + SH``
whole input rows and emits one window word per cycle (of ``simd`` elements, or of the
word a gearbox re-cuts into ``simd``-element words, one per cycle), reading the next
output row's ``SH`` rows while it emits this row's windows: cycles per frame =
:meth:`Window.cycles`, about max(IH*IW*(IC/lanes) (reads), OH*OW * KH*KW*IC/e
(emissions of ``e``-element window words), the matrix-vector unit's OH*OW *
ceil(KH*KW*IC/simd) * ceil(OC/pe)) plus the rows the
first window waits for (the schedule replayed row by row). Tap-parallel, the
line buffer's x dimension is split into ``min(t, KW) * DW`` banks so the taps of a kernel
row in one word (``DW`` apart) are read from distinct banks in one cycle, and with whole
rows a word every row slot is a memory of its own. The unit keeps the window vector
for its ceil(OC/pe) passes when there is more than one; ``pe`` weight ROMs of ``simd * w_bits``
x ``ceil(KH*KW*IC/simd) * ceil(OC/pe)``. With more than one word per output (cycles per
output word), its multiply-shift requantizers are shared in time (:func:`accelgen.kernels.mvu.requantizers`;
no cycle more per frame, the output a few cycles later).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from accelgen import ir
from accelgen.kernels import hw, mvu, requant
from accelgen.kernels.base import (
    Cost,
    Fifo,
    Hardware,
    LayerSpec,
    Memory,
    MultiplierNeed,
    Resources,
    ceil_div,
    divisors,
    element_bits,
    feature_map,
)
from accelgen.plan import LayerFold

OPS = (ir.Conv,)


@dataclass(frozen=True, kw_only=True)
class Window:
    """A sliding window over a channels-last input: taps, extent (dilated), offsets."""

    ih: int
    iw: int
    ic: int
    oh: int
    ow: int
    kh: int
    kw: int
    extent_h: int
    extent_w: int
    pad_top: int
    pad_left: int
    stride_h: int = 1
    stride_w: int = 1
    dilation_w: int = 1

    @property
    def buffer_rows(self) -> int:
        """Input rows the line buffer holds (swg.h's ROWS): one window's rows and the
        ``stride_h`` rows the next output row adds, read while this row is emitted."""
        return self.extent_h + self.stride_h

    @property
    def first_window_elems(self) -> int:
        """Input elements read before the first window is emitted: the whole rows up to the
        last one the first output row needs."""
        rows = min(self.ih, max(1, self.extent_h - self.pad_top))
        return rows * self.iw * self.ic

    def banks(self, pixels: int, taps: int = 1) -> int:
        """Banks of the line buffer's x dimension: swg.h partitions it cyclically by
        ``pixels * stride_w`` when it emits several pixels per cycle, by ``cols *
        dilation_w`` when it emits ``cols`` taps of a kernel row per word (``min(taps,
        KW)``; one bank otherwise)."""
        if pixels > 1:
            return pixels * self.stride_w
        cols = min(taps, self.kw)
        return cols * self.dilation_w if cols > 1 else 1

    def slots(self, taps: int) -> int:
        """Memories the line buffer's rows are split into: every row slot its own when a
        word takes several kernel rows (``taps > KW``), else one."""
        return self.buffer_rows if taps > self.kw else 1

    def line_buffer(self, lanes: int, bits: int, pixels: int = 1, taps: int = 1) -> Memory:
        banks, slots = self.banks(pixels, taps), self.slots(taps)
        depth = self.buffer_rows // slots * ceil_div(self.iw, banks) * (self.ic // lanes)
        return Memory("line_buffer", "ram", lanes * bits, depth, banks * slots)

    def generator(self, lanes: int, bits: int, pixels: int = 1, taps: int = 1) -> tuple[Memory, Fifo, Resources]:
        """swg.h at ``lanes`` codes of ``bits`` per tap, ``taps`` taps a word and ``pixels``
        windows per cycle: its line buffer, the window stream it writes and its logic
        (shared by the conv, depthwise and pool kernels)."""
        buffer = self.line_buffer(lanes, bits, pixels, taps)
        windows = Fifo("windows", pixels * taps * lanes * bits, hw.STREAM_FIFO_DEPTH)
        logic = hw.window_generator(buffer.width, buffer.depth * buffer.count, pixels, taps, buffer.count)
        return buffer, windows, logic

    def tap_words(self) -> list[int]:
        """The kernel taps a window word can carry in convolution order (swg.h
        TAPS_PER_WORD): a divisor of KW (taps of one kernel row), or KW times a divisor of
        KH (whole kernel rows; KH*KW: the whole window)."""
        return sorted(set(divisors(self.kw)) | {self.kw * r for r in divisors(self.kh)})

    def words(self) -> list[int]:
        """Window word sizes swg.h emits in convolution order: a divisor of IC (channels of
        one tap) or IC times a tap word (all channels of several taps)."""
        return sorted(set(divisors(self.ic)) | {self.ic * t for t in self.tap_words()})

    def reads(self, lanes: int) -> int:
        return self.ih * self.iw * (self.ic // lanes)

    def emits(self, lanes: int, pixels: int = 1, taps: int = 1) -> int:
        return self.oh * self.ow // pixels * (self.kh * self.kw // taps) * (self.ic // lanes)

    def cycles(self, lanes: int, pixels: int = 1, taps: int = 1, busy: int = 0) -> int:
        """Iterations of swg.h's sample loop, which reads one word a cycle while its row's
        slot is free and emits one window word a cycle once the output row's rows are in.

        Output row ``oy`` emits from the iteration after the last word of the last input
        row it needs (the reads run one word a cycle from the first iteration) or after row
        ``oy - 1``, whichever is later. A read waiting for a slot never delays this: the
        line buffer holds the next output row's ``SH`` rows beside this row's window, so a
        read waits only when the reads are a whole output row ahead of the emissions, and
        then the rows the next emission needs are in. ``busy``: cycles per frame of the
        unit reading the windows when it is slower than the emissions (a convolution's
        passes): an output row then holds the generator for ``busy / OH`` cycles, its
        window stream full."""
        row_words = self.iw * (self.ic // lanes)
        row_time = max(self.emits(lanes, pixels, taps), busy) // self.oh
        emitted = 0  # the iteration after the last emission so far
        for oy in range(self.oh):
            need = min(oy * self.stride_h - self.pad_top + self.extent_h - 1, self.ih - 1)
            emitted = max(emitted, (need + 1) * row_words) + row_time
        return max(self.ih * row_words, emitted)


def window(x: ir.Tensor, out: ir.Tensor, kernel: tuple[int, int], dilations: tuple[int, int],
           pads: tuple[int, int, int, int], strides: tuple[int, int] = (1, 1)) -> Window:  # fmt: skip
    ih, iw, ic = feature_map(x)
    oh, ow, _ = feature_map(out)
    kh, kw = kernel
    return Window(
        ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, kh=kh, kw=kw,
        extent_h=(kh - 1) * dilations[0] + 1, extent_w=(kw - 1) * dilations[1] + 1,
        pad_top=pads[0], pad_left=pads[1], stride_h=int(strides[0]), stride_w=int(strides[1]),
        dilation_w=int(dilations[1]),
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ConvSpec(LayerSpec):
    win: Window
    oc: int
    pointwise: bool
    arith: mvu.Arith


def is_depthwise(op: ir.Conv) -> bool:
    """One input channel per group and as many groups as channels (the depthwise kernel)."""
    oc, icg = int(op.weights.shape[0]), int(op.weights.shape[1])
    return op.groups > 1 and icg == 1 and oc == op.groups


def is_pointwise(op: ir.Conv) -> bool:
    kh, kw = (int(d) for d in op.weights.shape[2:])
    return kh == kw == 1 and tuple(op.strides) == (1, 1) and not any(op.pads)


def dense_weights(op: ir.Conv, channels: int) -> np.ndarray:
    """(OC, KH*KW*IC) weights in the window's (kh, kw, ic) order; block-diagonal when grouped."""
    w4 = np.asarray(op.weights, dtype=np.int64)
    oc, icg, kh, kw = w4.shape
    if op.groups > 1:
        full = np.zeros((oc, channels, kh, kw), dtype=np.int64)
        ocg = oc // op.groups
        for g in range(op.groups):
            full[g * ocg : (g + 1) * ocg, g * icg : (g + 1) * icg] = w4[g * ocg : (g + 1) * ocg]
        w4 = full
    return w4.transpose(0, 2, 3, 1).reshape(oc, kh * kw * channels)


def weight_qtype(op: ir.Conv) -> ir.QType:
    """The weights' type in the dense matrix: block-diagonal zeros are not bipolar codes, so
    a grouped convolution with -1/+1 weights runs on 2-bit signed (ternary) weights."""
    if op.groups > 1 and op.w_qtype.bipolar:
        return ir.QType(2, True)
    return op.w_qtype


def matches(op: ir.Op) -> bool:
    return isinstance(op, ir.Conv) and not is_depthwise(op)


def describe(op: ir.Conv, graph: ir.Graph) -> ConvSpec:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    oc, _, kh, kw = (int(d) for d in op.weights.shape)
    win = window(x, out, (kh, kw), op.dilations, op.pads, op.strides)
    arith = mvu.describe(x, weight_qtype(op), dense_weights(op, win.ic), out, op.requant)
    return ConvSpec(
        name=op.name, kind=op.kind, in_bits=(element_bits(x),), in_elems=(win.ih * win.iw * win.ic,),
        out_bits=arith.out_bits, out_elems=win.oh * win.ow * oc, win=win, oc=oc, pointwise=is_pointwise(op),
        arith=arith,
    )  # fmt: skip


@dataclass(frozen=True)
class Word:
    """How the unit's ``simd`` window elements a cycle are fed: the window generator emits
    words of ``lanes`` channels of ``taps`` consecutive taps each (the input stream carries
    words of ``lanes`` channels), and when that word is not ``simd`` elements a gearbox
    after it re-cuts the window stream into ``simd``-element words."""

    lanes: int
    taps: int
    simd: int

    @property
    def elems(self) -> int:
        """Elements of a window word (the gearbox's input word when there is one)."""
        return self.lanes * self.taps

    @property
    def gearbox(self) -> bool:
        return self.elems != self.simd


@functools.lru_cache(maxsize=4096)
def word(w: Window | None, simd: int, reduction: int) -> Word:
    """The window word at ``simd``: ``simd`` channels of one tap when ``simd | IC``, all IC
    channels of ``simd / IC`` consecutive taps when that is a tap word (of one kernel row, or
    whole kernel rows); any other ``simd`` is fed by the smallest of those words with at
    least ``simd`` elements (so the generator keeps up with the unit) and a gearbox framed
    per window (every word size divides the window, so the (kh, kw, ic) order is kept; a
    ``simd`` that does not divide the window pads its last word,
    :func:`accelgen.kernels.mvu.recut_input`). ``w``: None without a window generator (a
    pointwise convolution, a dense layer): words of :func:`accelgen.kernels.mvu.in_lanes`
    of the ``reduction`` (IC, in_features). Code generation and the cost model both read
    the split from here."""
    if w is None:
        return Word(mvu.in_lanes(reduction, simd), 1, simd)
    elems = min(e for e in w.words() if e >= simd)
    return Word(elems, 1, simd) if elems <= w.ic else Word(w.ic, elems // w.ic, simd)


def legal(spec: ConvSpec) -> dict[str, list[int]]:
    """``pe``: :func:`accelgen.kernels.mvu.pe_values` of OC (a divisor, or the fewest lanes
    for a number of passes). ``simd``: :func:`accelgen.kernels.mvu.simd_values` of the
    reduction (IC pointwise, else KH*KW*IC): its divisors, and unless the weights are
    bipolar the fewest lanes for every number of words up to
    :data:`accelgen.kernels.mvu.PADDED_SIMD_WORDS` (the last word padded). With a
    window generator: the divisors of IC (one tap a word), IC * t for a tap word of ``t``
    taps (``t | KW``: taps of one kernel row; KW times a divisor ``r`` of KH: ``r`` whole
    kernel rows), and the others through a gearbox after the generator (:func:`word`);
    pointwise, a ``simd`` that does not divide IC through a gearbox at the input.
    ``pixels``: output pixels per cycle, a divisor of the output width, above 1 only with
    every output channel in parallel and ``simd | IC`` (``pixels_simd``: swg.h emits
    several pixels or several taps a word, not both); a pointwise convolution reads no
    windows (1 pixel, no taps)."""
    legal = {"pe": mvu.pe_values(spec.oc), "simd": mvu.simd_values(reduction(spec), spec.arith.zero_weight),
             "pixels_pe": spec.oc, **requant.products(spec.arith.requant)}  # fmt: skip
    if spec.pointwise:
        return {**legal, "pixels": [1]}
    return {**legal, "pixels": divisors(spec.win.ow), "pixels_simd": divisors(spec.win.ic)}


def reduction(spec: ConvSpec) -> int:
    """Elements each output sums: IC (pointwise), else KH*KW*IC (a window)."""
    return (1 if spec.pointwise else spec.win.kh * spec.win.kw) * spec.win.ic


def hardware(spec: ConvSpec, fold: LayerFold) -> Hardware:
    w, pe, simd, group, ar = spec.win, fold.pe, fold.simd, fold.pixels, spec.arith
    a_bits = spec.in_bits[0]
    feed = word(None if spec.pointwise else w, simd, reduction(spec))
    lanes, taps = feed.lanes, feed.taps
    taps_words = ceil_div(reduction(spec), simd)
    passes = ceil_div(spec.oc, pe)
    pixels = w.ih * w.iw if spec.pointwise else w.oh * w.ow
    rq = mvu.requantizers(ar, pe * group, taps_words, fold.requant)
    compute = pixels // group * taps_words * passes
    memories = [*mvu.weights(ar, pe, simd, taps_words * passes)]
    if passes > 1:
        memories.append(Memory("input_vector", "ram", simd * a_bits, taps_words))
    fifos = list(hw.input_fifos(spec.in_bits, spec.in_elems, spec.bypass, (lanes,)))
    logic, pipe = mvu.logic(ar, pe, simd, passes * pe, group, rq)
    out = mvu.padded_output(ar, spec.oc, pe, taps_words)
    recut = mvu.recut_input(feed.elems, simd, a_bits)  # window words re-cut into ``simd``-element words
    fifos += out.fifos
    logic, pipe = logic + out.logic + recut.logic, pipe + out.depth + recut.depth
    if spec.pointwise:
        cycles, depth = compute, taps_words + pipe
    else:
        buffer, windows, generator = w.generator(lanes, a_bits, group, taps)
        memories.append(buffer)
        fifos.append(windows)
        logic = logic + generator
        cycles = w.cycles(lanes, group, taps, busy=compute)
        depth = ceil_div(w.first_window_elems, lanes) + taps_words + pipe
    fifos += recut.fifos
    return Hardware(cycles=cycles, depth=depth, macs=mvu.matrix_macs(ar, pe, simd, group), memories=tuple(memories),
                    fifos=tuple(fifos), logic=logic, requantizers=(rq,),
                    gearboxes=recut.gearboxes + out.gearboxes)  # fmt: skip


def cost(spec: ConvSpec, fold: LayerFold) -> Cost:
    return hw.price(hardware(spec, fold))


def stream_lanes(spec: ConvSpec, fold: LayerFold) -> tuple[tuple[int, ...], int]:
    """The window generator reads :func:`word`'s lanes (``simd``, or the input channels when
    tap-parallel, or those of the window word a gearbox re-cuts); the layer writes ``pe``
    lanes (or the padded-lane gearbox's :func:`accelgen.kernels.mvu.out_lanes`) per pixel
    of a word."""
    feed = word(None if spec.pointwise else spec.win, fold.simd, reduction(spec))
    return (feed.lanes,), mvu.out_lanes(spec.oc, fold.pe) * fold.pixels


def lag(spec: ConvSpec) -> int:
    return spec.win.ic if spec.pointwise else spec.win.first_window_elems


def multiplier(spec: ConvSpec) -> MultiplierNeed:
    w = spec.win
    pixels = w.ih * w.iw if spec.pointwise else w.oh * w.ow
    return mvu.unit_multiplier(spec.arith, pixels * spec.oc * w.ic * w.kh * w.kw, pairs=spec.oc >= 2)
