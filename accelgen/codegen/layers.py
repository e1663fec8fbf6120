"""Per-layer builders: one IR op -> the kernels, streams and parameters of its hardware.

Each builder reads the op, its tensors and its folding (accelgen.plan semantics) and
returns a :class:`~accelgen.codegen.dataflow.Block` of plain data for the templates. What
the hardware is (the multiplier kind, the accumulator range proved from the weight
values, which grouped convolutions are depthwise, the window generator's buffer) comes
from the op's kernel module in accelgen.kernels, the same description its cost model
prices. Folding per kernel (as ``accelgen.plan`` documents):

* Dense: ``simd`` among accelgen.kernels.mvu.simd_values(in_features), ``pe`` among
  accelgen.kernels.mvu.pe_values(out_features); one matrix-vector unit (and, when ``simd``
  does not divide in_features, a gearbox padding each vector's last word in front of it;
  when ``pe`` does not divide out_features, one dropping the last fold's padded lanes).
* Conv (groups == 1): ``pe`` as Dense's over OC, ``simd | IC`` or ``simd = IC * t`` (``t``
  kernel taps a word), or any other ``simd`` of mvu.simd_values(KH*KW*IC)
  (accelgen.kernels.conv.legal and word); sliding window generator (convolution order) +
  matrix-vector unit, with a width converter framed per window between them for the last
  kind. A 1x1 convolution with stride 1 and no padding needs no window generator (its
  ``simd`` among mvu.simd_values(IC), a converter in front when it does not divide IC).
* Depthwise Conv (groups == IC == OC): ``pe = ceil(C / n)`` channels, ``simd | KH*KW`` taps;
  window generator (depthwise order) + width converter + vector unit, and when ``pe`` does
  not divide C a gearbox per pixel padding the last channel word in front and one dropping
  the padded lanes behind (accelgen.kernels.depthwise.padded_window); at ``pe == C`` and
  ``simd > 1``, ``simd`` a tap word (accelgen.kernels.depthwise.legal and taps): window
  generator in convolution order, ``simd`` taps a word, + vector unit.
* Other grouped Conv (channel multiplier, or several channels per group): run as a
  dense convolution with block-diagonal weights (exact: the zeros add nothing), folded
  like one.
* MaxPool / AvgPool: ``pe | C``, ``simd == 1``; window generator (depthwise order) +
  window reduction, or a global pool (no line buffer) when one window covers the map.
* Add, Requantize: ``pe | C``. Concat: words of gcd(channels) lanes.
* TTDense: one contraction unit per step, each at its parallelism ``steps[t]`` split into
  pe x simd by accelgen.kernels.tt (the same description the cost model reads).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from accelgen import ir
from accelgen.codegen.dataflow import Block, Kernel, Param, Port, Stream
from accelgen.codegen.names import Namer, comment_text
from accelgen.codegen.params import pack_words, requant_param, requant_partitions
from accelgen.codegen.types import CodeType, IntType, code_of, int_type, signed_type, zero_point
from accelgen.errors import InputError, InternalError
from accelgen.kernels import conv, dense, depthwise, mvu, tt
from accelgen.kernels.base import ceil_div, fold_problems
from accelgen.plan import DEFAULT_PRODUCT, FoldingPlan, LayerFold


class Context:
    """What every builder needs: the graph, the folding plan, unique names."""

    def __init__(self, graph: ir.Graph, plan: FoldingPlan | None, namer: Namer) -> None:
        self.graph = graph
        self.plan = plan
        self.namer = namer

    def tensor(self, name: str) -> ir.Tensor:
        return self.graph.tensors[name]

    def fold(self, op: ir.Op) -> LayerFold:
        return self.plan.fold(op.name) if self.plan is not None else LayerFold()

    def stream(self, base: str, code: CodeType, lanes: int, words: int) -> Stream:
        return Stream(self.namer.unique(f"s_{base}"), code, lanes, words)

    def config(self, base: str) -> str:
        return self.namer.unique(f"{base}_cfg")


def _fm(t: ir.Tensor) -> tuple[int, int, int]:
    """(H, W, C) of a channels-last feature map; (1, 1, F) of a flat tensor."""
    shape = [int(d) for d in t.shape[1:]]
    if t.layout == "NHWC" and len(shape) == 3:
        return shape[0], shape[1], shape[2]
    return 1, 1, int(np.prod(shape))


def _check_fold(op: ir.Op, fold: LayerFold, pe_of: int, simd_of: int | None, what: str,
                pixels_of: int | None = None) -> None:  # fmt: skip
    """InputError unless ``fold`` divides the layer; ``pixels_of``: the output width a window
    kernel may take several pixels of per cycle (then only at pe == ``pe_of``)."""
    if fold.pixels != 1 and (pixels_of is None or pixels_of % fold.pixels or fold.pe != pe_of):
        rule = (f"pixels must divide the output width {pixels_of} and needs pe={pe_of} (every channel)"
                if pixels_of is not None else "this layer takes one pixel per cycle (pixels must be 1)")  # fmt: skip
        raise InputError(f"folding plan: layer '{op.name}' ({op.kind}) has pixels={fold.pixels}, pe={fold.pe}; {rule}")
    bad = fold.pe < 1 or pe_of % fold.pe or (simd_of is None and fold.simd != 1)
    bad = bad or (simd_of is not None and (fold.simd < 1 or simd_of % fold.simd))
    if bad:
        simd_rule = "simd must be 1" if simd_of is None else f"simd must divide {simd_of}"
        raise InputError(
            f"folding plan: layer '{op.name}' ({op.kind}) has pe={fold.pe}, simd={fold.simd}; {what}: pe must "
            f"divide {pe_of} and {simd_rule}"
        )


def _check_legal(op: ir.Op, fold: LayerFold, legal: dict, what: str) -> None:
    """InputError naming the layer (``what``: its kind as the message says it) unless
    ``fold`` is among its kernel's ``legal`` values (the explorer's and ``--folding``'s
    rule, :func:`accelgen.kernels.base.fold_problems`)."""
    bad = fold_problems(legal, fold)
    if bad:
        raise InputError(f"folding plan: layer '{op.name}' ({what}): illegal {' and '.join(bad)}")


# -- arithmetic shared by the matrix and vector units ----------------------------------------------


def _weights_code(name: str, wq: ir.QType, matrix: np.ndarray) -> CodeType:
    """The code of integer weights ``matrix`` (``code - zero_point``) of QType ``wq``."""
    if wq.bipolar:
        code = CodeType(1, True, True)
        if matrix.size and not np.all(np.abs(matrix) == 1):
            raise InternalError(f"'{name}': bipolar weights other than -1/+1")
        return code
    t = int_type(*ir.centred_range(wq))
    code = CodeType(t.bits, t.signed)
    if matrix.size and (matrix.min() < code.lo or matrix.max() > code.hi):
        raise InternalError(f"'{name}': weights outside their type {wq.describe()}")
    return code


def _arith(op: ir.Op, x: ir.Tensor, y: ir.Tensor, matrix: np.ndarray, pe: int, *, lanes: int, sf: int,
           w_qtype: ir.QType | None = None, copies: int = 1, padded: int | None = None,
           product: str = DEFAULT_PRODUCT) -> dict:  # fmt: skip
    """Types of a weighted-sum unit: input / weight codes, accumulator, MAC policy, requantizer,
    all from the kernel's one description of the arithmetic (:func:`accelgen.kernels.mvu.describe`).
    ``copies``: the unit's lanes are that many pixels side by side (``matrix`` is already
    tiled: rows ``j * C + c``); the requantizer's per-channel tables are tiled alike.
    ``lanes``, ``sf``: lanes per output word and cycles per word, from which the kernel
    decides how many requantizers serve them (:func:`accelgen.kernels.mvu.requantizers`).
    ``padded``: the unit's rows when ``pe`` does not divide the channels (the requantizer's
    tables padded to them, :func:`_padded_requant`); ``product``: the fold's ``requant``, where a
    multiply-shift requantizer's product is built."""
    wq = w_qtype or op.w_qtype
    zp = zero_point(x, f"layer '{op.name}'")
    ar = mvu.describe(x, wq, matrix, y, _tiled_requant(op.requant, copies))
    units = mvu.requantizers(ar, lanes, sf, product)
    in_code = code_of(x.qtype)
    centred = int_type(*ar.x_range)
    w_code = _weights_code(op.name, wq, matrix)
    acc = signed_type(*ar.acc_range)
    out_code = _out_code(y, acc)
    rows = padded or matrix.shape[0]
    rq = requant_param(_padded_requant(_tiled_requant(op.requant, copies), rows), channels=rows, pe=pe,
                       acc_lo=ar.acc_range[0], acc_hi=ar.acc_range[1], out_code=out_code, units=units,
                       product=units.product)  # fmt: skip
    return {
        "in_code": in_code, "zero_point": zp, "centred": centred, "weight_code": w_code, "acc": acc,
        "acc_range": ar.acc_range, "mac": ar.mac, "out_code": out_code, "requant": rq, "spec": ar,
        "requant_lanes": units.units, "requant_shared": units.shared,
    }  # fmt: skip


def _pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    """``a`` with its last row repeated up to ``rows`` rows: the padded lanes of a unit's last
    fold compute the last channel again (any valid weights and requantizer would do, since the
    gearbox drops them; these keep the accumulator in its proved range and are codes even for
    bipolar weights, which have no zero)."""
    return a if a.shape[0] >= rows else np.concatenate([a, np.repeat(a[-1:], rows - a.shape[0], axis=0)])


def _padded_requant(rq, rows: int):
    """``rq`` with its per-channel arrays padded to ``rows`` channels (:func:`_pad_rows`);
    shared arrays (one row) stay as they are."""
    if rq is None:
        return rq
    padded = {}
    for n in _requant_arrays(rq):
        a = np.asarray(getattr(rq, n))
        padded[n] = a if a.shape[0] == 1 else _pad_rows(a, rows)
    return dataclasses.replace(rq, **padded)


def _requant_arrays(rq) -> tuple[str, ...]:
    """The per-channel (or shared, one row) arrays of an integer requantizer."""
    if isinstance(rq, ir.Thresholds):
        return ("thresholds", "base", "direction")
    return ("multiplier", "offset", "lo", "hi", "direction")


def _tiled_requant(rq, copies: int):
    """``rq`` for ``copies`` pixels side by side in one word: per-channel arrays repeated
    (lane ``j * C + c`` is channel ``c``); shared arrays (one row) stay as they are."""
    if rq is None or copies == 1:
        return rq
    tiled = {}
    for n in _requant_arrays(rq):
        a = np.asarray(getattr(rq, n))
        tiled[n] = a if a.shape[0] == 1 else np.tile(a, (copies,) + (1,) * (a.ndim - 1))
    return dataclasses.replace(rq, **tiled)


def _out_code(y: ir.Tensor, acc: IntType) -> CodeType:
    """Codes keep their QType; a raw accumulator leaves at its IR width (the host's view),
    or wider if the proved accumulator needs it."""
    if y.kind == "codes":
        return code_of(y.qtype)
    return CodeType(max(y.qtype.bits, acc.bits), True)


def _params(ident: str, cfg: str, arith: dict, chunks: list) -> list[Param]:
    params = [Param(f"{ident}_weights", "weights", cfg, "weights_t", {"chunks": chunks}, [("chunk", 1), ("chunk", 3)])]
    rq = arith["requant"]
    params.append(Param(f"{ident}_requant", "requant", cfg, "requant_t", rq, requant_partitions(rq["kind"])))
    return params


def _unit_fields(arith: dict, **shape) -> dict:
    return {
        **shape,
        "in_code": arith["in_code"].as_dict(),
        "in_zero_point": arith["zero_point"],
        "centred": arith["centred"].as_dict(),
        "weight_code": arith["weight_code"].as_dict(),
        "mac": arith["mac"],
        "acc": arith["acc"].as_dict(),
        "out_code": arith["out_code"].as_dict(),
        "requant": arith["requant"],
        "requant_lanes": arith["requant_lanes"],
        "requant_shared": arith["requant_shared"],
    }


def _window_stream_and_kernel(
    ctx: Context, ident: str, src: Stream, *, hwc, out_hw, kernel, strides, pads, dilations, pad_raw: int,
    depthwise: bool, pixels: int = 1, taps: int = 1,
) -> tuple[Kernel, Stream]:  # fmt: skip
    h, w, c = hwc
    oh, ow = out_hw
    kh, kw = kernel
    words = oh * ow * kh * kw * c // src.lanes // pixels // taps
    out = ctx.stream(f"{ident}_windows", src.code, src.lanes * pixels * taps, words)
    cfg = ctx.config(f"{ident}_swg")
    fields = {
        "code": src.code.as_dict(), "lanes": src.lanes, "channels": c, "in_h": h, "in_w": w, "out_h": oh,
        "out_w": ow, "kh": kh, "kw": kw, "sh": strides[0], "sw": strides[1], "dh": dilations[0],
        "dw": dilations[1], "pad_t": pads[0], "pad_l": pads[1], "pad_raw": pad_raw, "depthwise": depthwise,
        "pixels_per_cycle": pixels, "taps_per_word": taps,
    }  # fmt: skip
    return Kernel("sliding_window", "sliding_window", cfg, fields, [src.name], [out.name]), out


def _pad_raw(code: CodeType, value: int, op: ir.Op, pads) -> int:
    if not any(pads):
        return 0
    if code.bipolar and value == 0:
        raise InputError(
            f"layer '{op.name}' ({op.kind}) pads a bipolar (-1/+1) input with zeros, which one bit cannot "
            "hold; remove the padding or quantize this input to 2 or more bits"
        )
    return int(code.raw(np.array([value]))[0])


def _gearbox(ctx: Context, ident: str, src: Stream, lanes: int) -> tuple[Kernel, Stream]:
    out = ctx.stream(f"{ident}_w{lanes}", src.code, lanes, src.elements // lanes)
    return gearbox_kernel(ctx, ident, src, out), out


def gearbox_kernel(ctx: Context, ident: str, src: Stream, dst: Stream) -> Kernel:
    """A width converter from ``src`` words to ``dst`` words (same elements)."""
    fields = {"in_bits": src.bits, "out_bits": dst.bits, "in_words": src.words, "out_words": dst.words}
    return Kernel("gearbox", "gearbox", ctx.config(f"{ident}_dwc"), fields, [src.name], [dst.name])


def _framed_gearbox(ctx: Context, ident: str, src: Stream, dst: Stream, *, frames: int) -> Kernel:
    """A gearbox run ``frames`` times a sample, each frame ``src.words / frames`` words in and
    ``dst.words / frames`` out: it drops the bits of a frame beyond the output's, and pads the
    output's beyond the input's with zeros (a padded fold's lanes, per pixel)."""
    kernel = gearbox_kernel(ctx, ident, src, dst)
    kernel.fields.update(in_words=src.words // frames, out_words=dst.words // frames)
    kernel.frames = frames
    return kernel


class _Tail(NamedTuple):
    """What follows a unit in its block: streams and kernels (none, or the padded-lane gearbox)."""

    streams: list[Stream]
    kernels: list[Kernel]


def _unit_output(ctx: Context, ident: str, code: CodeType, lanes: int, words: int, out_lanes: int, pixels: int,
                 channels: int) -> tuple[Stream, Stream, _Tail]:  # fmt: skip
    """The stream a matrix or vector unit writes (``lanes`` a word, ``words`` a sample), the
    layer's output and what connects them: the same stream when the unit's lanes are the
    layer's ``out_lanes`` (its kernel's stream_lanes, several pixels a word included), else (``pe`` does not divide the ``channels``, the last fold padded)
    a gearbox framed per pixel that reads the unit's folds and writes the channels in words
    of ``out_lanes``, dropping the padded lanes (accelgen.kernels.mvu.padded_output)."""
    if out_lanes == lanes:
        unit_out = ctx.stream(f"{ident}_out", code, lanes, words)
        return unit_out, unit_out, _Tail([], [])
    unit_out = ctx.stream(f"{ident}_unit", code, lanes, words)
    out = ctx.stream(f"{ident}_out", code, out_lanes, pixels * channels // out_lanes)
    return unit_out, out, _Tail([out], [_framed_gearbox(ctx, ident, unit_out, out, frames=pixels)])


# -- builders --------------------------------------------------------------------------------------


def build_dense(ctx: Context, op: ir.Dense, ident: str) -> Block:
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    matrix = np.asarray(op.weights)
    oc, ic = matrix.shape
    fold = ctx.fold(op)
    _check_legal(op, fold, dense.legal(dense.describe(op, ctx.graph)), op.kind)
    return _mvau_block(ctx, op, ident, x, y, matrix, pixels=1, fold=fold, window=None)


def build_conv(ctx: Context, op: ir.Conv, ident: str) -> Block:
    if conv.is_depthwise(op):
        return build_depthwise(ctx, op, ident)
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    h, w, c = _fm(x)
    oh, ow, oc = _fm(y)
    kh, kw = (int(d) for d in op.weights.shape[2:])
    fold = ctx.fold(op)
    what = op.kind if op.groups == 1 else f"grouped {op.kind}, run with block-diagonal weights"
    spec = conv.describe(op, ctx.graph)
    _check_legal(op, fold, conv.legal(spec), what)
    matrix = conv.dense_weights(op, c)  # columns in (kh, kw, ic) window order
    if conv.is_pointwise(op):
        return _mvau_block(ctx, op, ident, x, y, matrix, pixels=h * w, fold=fold, window=None)
    window = {
        "hwc": (h, w, c), "out_hw": (oh, ow), "kernel": (kh, kw), "strides": op.strides,
        "pads": (op.pads[0], op.pads[1]), "dilations": op.dilations,
    }  # fmt: skip
    return _mvau_block(ctx, op, ident, x, y, matrix, pixels=oh * ow, fold=fold, window=window,
                       feed=conv.word(spec.win, fold.simd, conv.reduction(spec)))  # fmt: skip


def _mvau_block(ctx, op, ident, x, y, matrix, *, pixels, fold: LayerFold, window,
                feed: conv.Word | None = None) -> Block:  # fmt: skip
    """A matrix-vector unit, behind a window generator (``window``: its fields) fed as
    :func:`accelgen.kernels.conv.word` says (``feed``) and a gearbox framed per reduction
    when that word is not ``simd`` elements (``simd`` need not divide the reduction: the
    last word's lanes past it are zero bits, their weights zero columns,
    accelgen.kernels.mvu.recut_input); when ``pe`` does not divide the channels, its last
    fold's padded lanes dropped per pixel by a gearbox (accelgen.kernels.mvu.padded_output)."""
    pe, simd, group = fold.pe, fold.simd, fold.pixels
    rows, cols = matrix.shape
    folds, words = ceil_div(rows, pe), ceil_div(cols, simd)
    arith = _arith(op, x, y, matrix, pe, lanes=pe * group, sf=words,
                   w_qtype=conv.weight_qtype(op) if isinstance(op, ir.Conv) else None, padded=folds * pe,
                   product=fold.requant)  # fmt: skip
    feed = feed or conv.word(None, simd, cols)  # no window generator: whole reductions in words of feed.lanes
    src = ctx.stream(f"{ident}_in", arith["in_code"], feed.lanes, x.elements_per_sample() // feed.lanes)
    kernels, streams = [], [src]
    vectors = src
    if window is not None:
        pad = _pad_raw(arith["in_code"], arith["zero_point"], op, getattr(op, "pads", (0, 0, 0, 0)))
        k, vectors = _window_stream_and_kernel(ctx, ident, src, pad_raw=pad, depthwise=False, pixels=group,
                                               taps=feed.taps, **window)  # fmt: skip
        kernels.append(k)
        streams.append(vectors)
    if feed.gearbox:  # per reduction: its words of feed.elems in, ``words`` words of ``simd`` out
        recut = ctx.stream(f"{ident}_w{simd}", vectors.code, simd, pixels * words)
        kernels.append(_framed_gearbox(ctx, ident, vectors, recut, frames=pixels))  # one pixel's words a frame
        streams.append(recut)
        vectors = recut
    # the layer's words: out_lanes channels of ``group`` pixels (conv.stream_lanes)
    unit_out, out, drop = _unit_output(ctx, ident, arith["out_code"], pe * group, pixels * folds // group,
                                       mvu.out_lanes(rows, pe) * group, pixels, rows)  # fmt: skip
    streams.append(unit_out)
    cfg = ctx.config(f"{ident}_mvau")
    tiles = folds * words
    fields = _unit_fields(arith, matrix_w=words * simd, matrix_h=folds * pe, pixels=pixels, simd=simd, pe=pe,
                          tiles=tiles, pixels_per_cycle=group)  # fmt: skip
    fields["mac"] = mvu.matrix_mac(arith["spec"], pe)  # PE pairs packed per DSP where they fit
    padded = np.pad(_pad_rows(matrix, folds * pe), ((0, 0), (0, words * simd - cols)))  # zero weights: the pad adds 0
    params = _params(ident, cfg, arith, pack_words(padded, arith["weight_code"], simd, pe))
    kernels.append(Kernel("mvau", "mvau", cfg, fields, [vectors.name], [unit_out.name], [p.name for p in params]))
    kernels += drop.kernels
    streams += drop.streams
    return Block(ident, comment_text(op.name), op.kind, op, kernels, params, streams, [Port(op.inputs[0], src)],
                 out, op.outputs[0], folding=_folding(fold))  # fmt: skip


def _folding(fold: LayerFold) -> dict:
    """A block's folding as the trace and report show it (``pixels`` only when above 1,
    ``requant`` only when not the default)."""
    return {"pe": fold.pe, "simd": fold.simd, **({"pixels": fold.pixels} if fold.pixels > 1 else {}),
            **({"requant": fold.requant} if fold.requant != DEFAULT_PRODUCT else {})}  # fmt: skip


def build_depthwise(ctx: Context, op: ir.Conv, ident: str) -> Block:
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    h, w, c = _fm(x)
    oh, ow, _ = _fm(y)
    _, _, kh, kw = op.weights.shape
    taps = kh * kw
    fold = ctx.fold(op)
    spec = depthwise.describe(op, ctx.graph)
    _check_legal(op, fold, depthwise.legal(spec), f"depthwise {op.kind}")
    pe, simd, group = fold.pe, fold.simd, fold.pixels
    word_taps = depthwise.taps(spec, fold)  # > 1: tap words of every channel in convolution order, no gearbox
    # ``group`` pixels side by side (pe == C): a vector unit of group * C lanes, weights tiled
    matrix = np.tile(depthwise.weight_matrix(op), (group, 1))
    lanes = pe * group
    padded = depthwise.padded_window(spec, pe).ic  # C, or the channels of ceil(C / pe) folds
    arith = _arith(op, x, y, matrix, lanes, lanes=lanes, sf=taps // simd, copies=group, padded=padded * group,
                   product=fold.requant)  # fmt: skip
    in_lanes = mvu.out_lanes(c, pe)
    src = ctx.stream(f"{ident}_in", arith["in_code"], in_lanes, h * w * c // in_lanes)
    kernels, streams = [], [src]
    vectors = src
    if in_lanes != pe:  # per pixel: c channels in words of in_lanes, ceil(c / pe) words of pe out (zero codes pad)
        vectors = ctx.stream(f"{ident}_padded", arith["in_code"], pe, h * w * padded // pe)
        kernels.append(_framed_gearbox(ctx, f"{ident}_pad", src, vectors, frames=h * w))
        streams.append(vectors)
    pad = _pad_raw(arith["in_code"], arith["zero_point"], op, op.pads)
    swg, windows = _window_stream_and_kernel(
        ctx, ident, vectors, hwc=(h, w, padded), out_hw=(oh, ow), kernel=(kh, kw), strides=op.strides,
        pads=(op.pads[0], op.pads[1]), dilations=op.dilations, pad_raw=pad, depthwise=word_taps == 1, pixels=group,
        taps=word_taps,
    )  # fmt: skip
    kernels.append(swg)
    streams.append(windows)
    if simd > word_taps:
        dwc, windows = _gearbox(ctx, ident, windows, simd * lanes)
        kernels.append(dwc)
        streams.append(windows)
    # the layer's words: in_lanes channels of ``group`` pixels (depthwise.stream_lanes)
    unit_out, out, drop = _unit_output(ctx, ident, arith["out_code"], lanes, oh * ow * padded // lanes,
                                       in_lanes * group, oh * ow, c)  # fmt: skip
    streams.append(unit_out)
    cfg = ctx.config(f"{ident}_vvau")
    tiles = (padded // pe) * (taps // simd)
    fields = _unit_fields(arith, channels=padded * group, kernel=taps, pixels=oh * ow // group, simd=simd, pe=lanes,
                          tiles=tiles)  # fmt: skip
    words = pack_words(_pad_rows(matrix, padded * group), arith["weight_code"], simd, lanes)
    params = _params(ident, cfg, arith, words)
    kernels.append(Kernel("vvau", "vvau", cfg, fields, [windows.name], [unit_out.name], [p.name for p in params]))
    kernels += drop.kernels
    streams += drop.streams
    return Block(ident, comment_text(op.name), "DepthwiseConv", op, kernels, params, streams,
                 [Port(op.inputs[0], src)], out, op.outputs[0], folding=_folding(fold))  # fmt: skip


def _build_pool(ctx: Context, op: ir.MaxPool | ir.AvgPool, ident: str, *, reduce: str) -> Block:
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    h, w, c = _fm(x)
    oh, ow, _ = _fm(y)
    kh, kw = op.kernel
    fold = ctx.fold(op)
    pads = op.pads
    is_global = oh == ow == 1 and (kh, kw) == (h, w) and not any(pads)
    _check_fold(op, fold, c, None, f"{op.kind} folds channels by pe", pixels_of=None if is_global else ow)
    pe, group = fold.pe, fold.pixels
    lanes = pe * group  # ``group`` pixels side by side (pe == C): a reduction of group * C lanes
    in_code = code_of(x.qtype)
    if pads[0] >= kh or pads[2] >= kh or pads[1] >= kw or pads[3] >= kw:
        raise InputError(f"layer '{op.name}' ({op.kind}): padding {pads} is not smaller than the kernel {op.kernel}")
    if reduce == "MaxReduce":
        zp, centred = 0, IntType(in_code.bits + 1, True)
        value = IntType(2, True) if in_code.bipolar else IntType(in_code.bits, in_code.signed)
        acc, acc_range, out_code = value, None, in_code
        requant = {"kind": "same_code"}
        pad_value = x.qtype.qmin
    else:
        zp = zero_point(x, f"layer '{op.name}'")
        clo, chi = ir.centred_range(x.qtype)
        centred = int_type(clo, chi)
        acc_range = (kh * kw * min(0, clo), kh * kw * max(0, chi))
        acc = signed_type(*acc_range)
        out_code = _out_code(y, acc)
        requant = requant_param(
            _tiled_requant(op.requant, group), channels=c * group, pe=lanes, acc_lo=acc_range[0],
            acc_hi=acc_range[1], out_code=out_code,
        )  # fmt: skip
        pad_value = zp
    src = ctx.stream(f"{ident}_in", in_code, pe, h * w * c // pe)
    streams, kernels = [src], []
    if is_global:
        function, pixels, reader = "global_pool", h * w, src
    else:
        swg, reader = _window_stream_and_kernel(
            ctx, ident, src, hwc=(h, w, c), out_hw=(oh, ow), kernel=(kh, kw), strides=op.strides,
            pads=(pads[0], pads[1]), dilations=(1, 1), pad_raw=_pad_raw(in_code, pad_value, op, pads),
            depthwise=True, pixels=group,
        )  # fmt: skip
        kernels.append(swg)
        streams.append(reader)
        function, pixels = "window_pool", oh * ow // group
    out = ctx.stream(f"{ident}_out", out_code, lanes, oh * ow * c // lanes)
    streams.append(out)
    cfg = ctx.config(f"{ident}_pool")
    fields = {
        "pe": lanes, "channels": c * group, "pixels": pixels, "kernel": kh * kw, "in_code": in_code.as_dict(),
        "in_zero_point": zp, "centred": centred.as_dict(), "acc": acc.as_dict(), "reduce": reduce,
        "out_code": out_code.as_dict(), "requant": requant,
    }  # fmt: skip
    param = Param(f"{ident}_requant", "requant", cfg, "requant_t", requant, requant_partitions(requant["kind"]))
    kernels.append(Kernel(function, "pool", cfg, fields, [reader.name], [out.name], [param.name]))
    return Block(ident, comment_text(op.name), op.kind, op, kernels, [param], streams, [Port(op.inputs[0], src)],
                 out, op.outputs[0], folding=_folding(fold))  # fmt: skip


def build_maxpool(ctx: Context, op: ir.MaxPool, ident: str) -> Block:
    return _build_pool(ctx, op, ident, reduce="MaxReduce")


def build_avgpool(ctx: Context, op: ir.AvgPool, ident: str) -> Block:
    return _build_pool(ctx, op, ident, reduce="SumReduce")


def _elementwise_shape(ctx: Context, op: ir.Op) -> tuple[int, int]:
    y = ctx.tensor(op.outputs[0])
    _, _, c = _fm(y)
    return c, y.elements_per_sample() // c


def build_add(ctx: Context, op: ir.Add, ident: str) -> Block:
    a, b, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    c, pixels = _elementwise_shape(ctx, op)
    fold = ctx.fold(op)
    _check_fold(op, fold, c, None, "Add folds channels by pe")
    pe = fold.pe
    za, zb = zero_point(a, f"layer '{op.name}'"), zero_point(b, f"layer '{op.name}'")
    (alo, ahi), (blo, bhi) = ir.centred_range(a.qtype), ir.centred_range(b.qtype)
    ma, mb = (int(m) for m in op.input_multipliers)
    acc_lo = min(ma * alo, ma * ahi) + min(mb * blo, mb * bhi)
    acc_hi = max(ma * alo, ma * ahi) + max(mb * blo, mb * bhi)
    acc = signed_type(min(acc_lo, 0), max(acc_hi, 0))
    out_code = _out_code(y, acc)
    requant = requant_param(op.requant, channels=c, pe=pe, acc_lo=acc_lo, acc_hi=acc_hi, out_code=out_code,
                            product=fold.requant)  # fmt: skip
    sa = ctx.stream(f"{ident}_a", code_of(a.qtype), pe, pixels * c // pe)
    sb = ctx.stream(f"{ident}_b", code_of(b.qtype), pe, pixels * c // pe)
    out = ctx.stream(f"{ident}_out", out_code, pe, pixels * c // pe)
    cfg = ctx.config(f"{ident}_add")
    fields = {
        "pe": pe, "channels": c, "pixels": pixels, "a_code": code_of(a.qtype).as_dict(), "a_zero_point": za,
        "a_centred": int_type(alo, ahi).as_dict(), "b_code": code_of(b.qtype).as_dict(), "b_zero_point": zb,
        "b_centred": int_type(blo, bhi).as_dict(), "ma": ma, "mb": mb, "acc": acc.as_dict(),
        "out_code": out_code.as_dict(), "requant": requant,
    }  # fmt: skip
    param = Param(f"{ident}_requant", "requant", cfg, "requant_t", requant, requant_partitions(requant["kind"]))
    kernel = Kernel("add", "add", cfg, fields, [sa.name, sb.name], [out.name], [param.name])
    ports = [Port(op.inputs[0], sa), Port(op.inputs[1], sb)]
    return Block(ident, comment_text(op.name), op.kind, op, [kernel], [param], [sa, sb, out], ports, out,
                 op.outputs[0], folding={"pe": pe, "simd": 1})  # fmt: skip


def build_requantize(ctx: Context, op: ir.Requantize, ident: str) -> Block:
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    c, pixels = _elementwise_shape(ctx, op)
    fold = ctx.fold(op)
    _check_fold(op, fold, c, None, "Requantize folds channels by pe")
    pe = fold.pe
    zp = zero_point(x, f"layer '{op.name}'")
    lo, hi = ir.centred_range(x.qtype)
    acc = signed_type(min(lo, 0), max(hi, 0))
    out_code = _out_code(y, acc)
    requant = requant_param(op.requant, channels=c, pe=pe, acc_lo=lo, acc_hi=hi, out_code=out_code,
                            product=fold.requant)  # fmt: skip
    src = ctx.stream(f"{ident}_in", code_of(x.qtype), pe, pixels * c // pe)
    out = ctx.stream(f"{ident}_out", out_code, pe, pixels * c // pe)
    cfg = ctx.config(f"{ident}_requantize")
    fields = {
        "pe": pe, "channels": c, "pixels": pixels, "in_code": code_of(x.qtype).as_dict(), "in_zero_point": zp,
        "centred": int_type(lo, hi).as_dict(), "acc": acc.as_dict(), "out_code": out_code.as_dict(),
        "requant": requant,
    }  # fmt: skip
    param = Param(f"{ident}_requant", "requant", cfg, "requant_t", requant, requant_partitions(requant["kind"]))
    kernel = Kernel("requantize", "requantize", cfg, fields, [src.name], [out.name], [param.name])
    return Block(ident, comment_text(op.name), op.kind, op, [kernel], [param], [src, out], [Port(op.inputs[0], src)],
                 out, op.outputs[0], folding={"pe": pe, "simd": 1})  # fmt: skip


def build_concat(ctx: Context, op: ir.Concat, ident: str) -> Block:
    y = ctx.tensor(op.outputs[0])
    if op.axis not in (-1, len(y.shape) - 1):
        raise InputError(f"layer '{op.name}': Concat along axis {op.axis}; the hardware concatenates channels only")
    ins = [ctx.tensor(t) for t in op.inputs]
    channels = [_fm(t)[2] for t in ins]
    _, pixels = _elementwise_shape(ctx, op)
    lanes = math.gcd(*channels)
    code = code_of(ins[0].qtype)
    ports = [Port(t.name, ctx.stream(f"{ident}_in{i}", code, lanes, pixels * ch // lanes))
             for i, (t, ch) in enumerate(zip(ins, channels))]  # fmt: skip
    streams = [p.stream for p in ports]
    kernels = []
    current, have = ports[0].stream, channels[0]
    for i in range(1, len(ports)):
        have += channels[i]
        nxt = ctx.stream(
            f"{ident}_out" if i == len(ports) - 1 else f"{ident}_part{i}", code, lanes, pixels * have // lanes
        )
        streams.append(nxt)
        fields = {"word_bits": lanes * code.bits, "pixels": pixels, "a_words": current.words // pixels,
                  "b_words": channels[i] // lanes}  # fmt: skip
        kernels.append(Kernel("concat", "concat", ctx.config(f"{ident}_concat"), fields,
                              [current.name, ports[i].stream.name], [nxt.name]))  # fmt: skip
        current = nxt
    return Block(ident, comment_text(op.name), op.kind, op, kernels, [], streams, ports, current, op.outputs[0],
                 folding={"pe": lanes, "simd": 1})  # fmt: skip


def _shared_requant(op: ir.TTDense, t: int) -> ir.Thresholds | ir.MultiplyShift:
    """The per-tensor requantizer after step ``t`` (InputError when it is per channel)."""
    rq = op.mid_requant[t]
    arrays = [rq.thresholds, rq.base, rq.direction] if isinstance(rq, ir.Thresholds) else [
        rq.multiplier, rq.offset, rq.lo, rq.hi, rq.direction]  # fmt: skip
    if isinstance(rq, ir.FloatRequant) or any(np.asarray(a).shape[0] != 1 for a in arrays):
        raise InputError(f"layer '{op.name}' (TTDense): the requantizer after step {t} must be integer and per "
                         "tensor (one set of parameters); quantize the intermediate per tensor")  # fmt: skip
    return rq


def _mid_code(op: ir.TTDense, t: int) -> CodeType:
    q = op.mid_qtypes[t]
    if q.bipolar or any(int(z) != 0 for z in q.zero_point):
        raise InputError(f"layer '{op.name}' (TTDense): the intermediate after step {t} must have zero point 0 "
                         f"and at least 2 levels of codes, not {q.describe()} with zero point {q.zero_point}")  # fmt: skip
    return code_of(q)


def _tt_step_fields(st: tt.Step, unit: tt.StepHardware, last: bool) -> dict:
    rows = st.row_axes or (("", 0, 1),)
    red_sizes, red_strides = [a[2] for a in st.red_axes], list(st.red_strides)
    if len(red_sizes) > 2:
        raise InternalError(f"a TT step reducing over {len(red_sizes)} axes")
    inner = (red_sizes[-1], red_strides[-1]) if red_sizes else (1, 0)
    outer = red_strides[0] if len(red_sizes) == 2 else 0
    n_rows = len(st.row_axes)
    out_rows = list(st.out_strides[:n_rows]) if st.reorder else [0] * n_rows
    return {
        "core": st.core, "in_elems": st.in_elems, "in_lanes": unit.in_lanes, "rows": st.rows, "cols": st.cols,
        "red": st.red, "simd": unit.simd, "pe": unit.pe, "tiles": unit.tiles, "row_sizes": [a[2] for a in rows],
        "row_strides": list(st.row_strides) or [0], "row_out_strides": out_rows or [0], "red_inner": inner[0],
        "red_outer_stride": outer, "red_inner_stride": inner[1],
        "col_out_stride": st.out_strides[-1] if st.reorder and st.col_axes else 1, "last": last,
        "reorder": st.reorder,
    }  # fmt: skip


def build_tt_dense(ctx: Context, op: ir.TTDense, ident: str) -> Block:
    tt.check(op)
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    steps = tt.geometry(op.modes_in, op.modes_out, op.ranks, op.order)
    fold = ctx.fold(op)
    units = tt.step_units(steps, fold, op.name)
    zp = zero_point(x, f"layer '{op.name}'")
    in_code = code_of(x.qtype)
    src = ctx.stream(f"{ident}_in", in_code, units[0].in_lanes, op.in_features // units[0].in_lanes)
    kernels, params, streams = [], [], [src]
    spec = tt.describe(op, ctx.graph)
    for t, (st, unit, ar) in enumerate(zip(steps, units, spec.ariths)):
        last = t == len(steps) - 1
        matrix = tt.core_matrix(st, np.asarray(op.cores[st.core], dtype=np.int64)).T  # (cols, red)
        w_code = _weights_code(op.name, op.core_qtypes[st.core], matrix)
        centred = int_type(*ar.x_range)
        acc_lo, acc_hi = ar.acc_range
        acc = signed_type(acc_lo, acc_hi)
        if last:
            out_code = _out_code(y, acc)
            rq = requant_param(op.requant, channels=op.out_features, pe=unit.pe, acc_lo=acc_lo, acc_hi=acc_hi,
                               out_code=out_code)  # fmt: skip
        else:
            out_code = _mid_code(op, t)
            rq = requant_param(_shared_requant(op, t), channels=1, pe=unit.pe, acc_lo=acc_lo, acc_hi=acc_hi,
                               out_code=out_code)  # fmt: skip
        out = ctx.stream(f"{ident}_out" if last else f"{ident}_s{t}", out_code, unit.pe, st.out_elems // unit.pe)
        if not last:  # one whole state: this step never waits while the next one computes
            out.depth = max(out.depth, units[t + 1].fifo_words)
        streams.append(out)
        cfg = ctx.config(f"{ident}_step{t}")
        fields = {
            **_tt_step_fields(st, unit, last), "step": t, "steps": len(steps), "in_code": src.code.as_dict(),
            "in_zero_point": zp, "centred": centred.as_dict(), "weight_code": w_code.as_dict(),
            "mac": ar.mac, "acc": acc.as_dict(), "out_code": out_code.as_dict(),
            "requant": rq,
        }  # fmt: skip
        chunks = pack_words(matrix, w_code, unit.simd, unit.pe)
        step_params = [Param(f"{ident}_core{st.core}", "weights", cfg, "weights_t", {"chunks": chunks},
                             [("chunk", 1), ("chunk", 3)]),
                       Param(f"{ident}_requant{t}", "requant", cfg, "requant_t", rq, requant_partitions(rq["kind"]))]  # fmt: skip
        params += step_params
        kernels.append(Kernel("tt_step", "tt_step", cfg, fields, [src.name], [out.name], [p.name for p in step_params]))
        src, zp = out, 0
    folding = {"pe": 1, "simd": 1, "steps": [u.pe * u.simd for u in units]}
    return Block(ident, comment_text(op.name), op.kind, op, kernels, params, streams, [Port(op.inputs[0], streams[0])],
                 src, op.outputs[0], folding=folding)  # fmt: skip


BUILDERS: dict[type, Callable[[Context, ir.Op, str], Block]] = {
    ir.Dense: build_dense,
    ir.TTDense: build_tt_dense,
    ir.Conv: build_conv,
    ir.MaxPool: build_maxpool,
    ir.AvgPool: build_avgpool,
    ir.Add: build_add,
    ir.Requantize: build_requantize,
    ir.Concat: build_concat,
}
