"""Each kernel's cost model against cases worked out by hand in the comments below.

The IR ops are built directly (no ONNX), so every width and range is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from accelgen import ir
from accelgen.kernels import add, conv, dense, depthwise, hw, kernel_for, mvu, pool, requant, streams
from accelgen.kernels.base import Cost, Fifo, Mac, Memory, Resources, divisors, fold_problems, foldings
from accelgen.plan import LayerFold

U4, S4, U8, S8 = ir.QType(4, False), ir.QType(4, True), ir.QType(8, False), ir.QType(8, True)


def codes(name: str, shape: tuple, q: ir.QType) -> ir.Tensor:
    return ir.Tensor(name, (None, *shape), "codes", q, "NHWC" if len(shape) == 3 else "")


def graph(ops: list[ir.Op], tensors: list[ir.Tensor], inputs=("x",), outputs=("y",)) -> ir.Graph:
    return ir.Graph("t", {t.name: t for t in tensors}, list(ops), list(inputs), list(outputs))


def thresholds(channels: int, levels: int, base=(0,), seed: int = 0) -> ir.Thresholds:
    t = np.sort(np.random.default_rng(seed).integers(-500, 500, (channels, levels)), axis=1)
    return ir.Thresholds(t, np.asarray(base, np.int64), np.ones(1, np.int64))


def mul_shift(multipliers, offsets, hi: int) -> ir.MultiplyShift:
    m = np.asarray(multipliers, np.int64)
    return ir.MultiplyShift(m, np.asarray(offsets, np.int64), 20, np.zeros(m.size, np.int64),
                            np.full(m.size, hi, np.int64), np.ones(m.size, np.int64))  # fmt: skip


# -- primitives ---------------------------------------------------------------------------


def test_bram18_aspect_ratios():
    assert hw.bram18_count(4, 4096) == 1  # 4K x 4
    assert hw.bram18_count(8, 4096) == 2  # two 4K x 4 (or two 2K x 9)
    assert hw.bram18_count(9, 2048) == 1  # 2K x 9
    assert hw.bram18_count(36, 512) == 1  # 512 x 36 (simple dual port)
    assert hw.bram18_count(72, 512) == 2
    assert hw.bram18_count(1, 16384) == 1 and hw.bram18_count(1, 16385) == 2
    assert hw.bram18_count(40, 100) == 2  # 512 x 36 twice beats 1K x 18 three times
    assert hw.bram18_count(0, 100) == 0
    # deep memories are bit-sliced, never split in depth behind a multiplexer: 2304 x 32 in the
    # shallowest shape holding 2304 words (4K x 4): 8 blocks, not 5 x (512 x 36) and a 5:1 mux
    assert hw.bram18_count(32, 2304) == 8
    assert hw.bram18_count(18, 1000) == 1 and hw.bram18_count(19, 1000) == 2  # 1K x 18
    # deeper than 16K: 16K x 1 columns cascaded, two per bit for 18432 words
    assert hw.bram18_count(32, 18432) == 32 * 2
    assert hw.bram18_count(4, 32768) == 4 * 2


def test_memory_policy_luts_or_bram():
    assert hw.rom(36, 32) == Resources(lut=36)  # <= 64 deep: one LUT6 per bit
    assert hw.rom(4, 200) == Resources(lut=4 * 4)  # 800 bits <= 1 Kib: 4 bits x ceil(200 / 64)
    assert hw.rom(16, 100) == Resources(bram18=1)  # 1600 bits, 100 deep: a 1K x 18
    assert hw.rom(8, 2048) == Resources(bram18=1)  # 2K x 9
    assert hw.rom(64, 1) == Resources()  # constants
    assert hw.ram(14, 64) == Resources(lut=16, lutram=16, ff=14)  # two RAM64M8 (7 bits each)
    assert hw.ram(8, 1) == Resources(ff=8)
    # a depth-2 stream FIFO of 16 bits: 16 SRLs + two 2-bit counters (ceil(log2 3) = 2)
    assert hw.fifo(16, 2) == Resources(lut=20, lutram=16, ff=20)


def test_multipliers_luts_and_dsps():
    assert hw.lut_multiplier(4, 4) == 15  # 3 adders of 5 bits
    assert hw.lut_multiplier(3, 2) == 4
    assert hw.lut_multiplier(2, 2) == 3
    assert hw.lut_multiplier(1, 8) == 8 and hw.lut_multiplier(1, 1) == 1
    # the multiplier mac.h instantiates: narrow LUT products, a bipolar operand a sign, else DSPs
    assert hw.mac_kind(False, 4, False, 4) == "LutMultiply" and hw.mac_kind(False, 5, False, 4) == "DspMultiply"
    assert hw.mac_kind(False, 8, True, 1) == "SignSelect" and hw.mac_kind(True, 1, False, 8) == "InputSign"
    assert hw.mac_kind(True, 1, True, 1) == "XnorPopcount"
    assert hw.mac_kind(False, 1, False, 8) == "DspMultiply"  # a {0, 1} activation is not a sign
    assert hw.dsp_tiles(8, 8) == 1 and hw.dsp_tiles(27, 18) == 1
    assert hw.dsp_tiles(28, 18) == 2  # 27 magnitude bits need two 26-bit A tiles
    assert hw.dsp_tiles(22, 12) == 1 and hw.dsp_tiles(20, 24) == 2 and hw.dsp_tiles(32, 32) == 4


def test_accumulator_range_from_the_weight_values():
    # uint4 x int4, rows of 64 weights at the extremes: [-7680, 6720] -> 14 bits
    rows = np.array([[-8] * 64, [7] * 64])
    assert mvu.acc_range(rows, 0, 15) == (-7680, 6720)
    # the weights' values, not their type: 36 weights of 1 in [-128, 127]-centred inputs
    assert mvu.acc_range(np.ones((3, 36), dtype=np.int64), -128, 127) == (-4608, 4572)
    # mixed signs bound every partial sum: max sums the positive products, min the negative ones
    assert mvu.acc_range(np.array([[2, -3]]), -1, 1) == (-5, 5)


def test_popcount_is_a_compressor_tree():
    # 64 bipolar lanes: 22 groups of three (XNOR + 2-bit count, 2 LUTs each: 44 LUTs, 44 FFs), then
    # a registered ripple tree over 22 values of 2 bits: 11 x 3 + 5 x 4 + 3 x 5 + 1 x 6 + 1 x 7 = 81
    tree = 11 * 3 + 5 * 4 + 3 * 5 + 1 * 6 + 1 * 7
    assert hw.adder_tree(22, 2).lut == tree
    assert hw.popcount(64) == Resources(lut=44 + tree, ff=44 + tree)
    assert hw.popcount(3) == Resources(lut=2, ff=2)  # one group: no tree
    assert hw.popcount(0) == Resources()
    # the XNOR costs no LUT of its own (it is in the first compressor level); its operands are registered
    assert hw.mac_resources(Mac("XnorPopcount", 64, 1, 1)) == Resources(ff=64 * 2)
    # against the old model (an XNOR LUT per lane, then a ripple tree over 64 2-bit products):
    # 64 + 246 = 310 LUTs; the compressor tree is 125
    assert 64 + hw.adder_tree(64, 2).lut == 310 and hw.popcount(64).lut == 125


def test_adder_tree_and_constants():
    assert hw.adder_tree(8, 8) == Resources(lut=4 * 9 + 2 * 10 + 11, ff=67)
    assert hw.adder_tree(3, 8) == Resources(lut=9 + 10, ff=19)
    assert hw.adder_tree(1, 8) == Resources()
    assert hw.const_multiplier_luts(1, 8) == 0 and hw.const_multiplier_luts(4, 8) == 0
    assert hw.const_multiplier_luts(3, 8) == 10  # x + 2x: one adder of 8 + 2 bits
    assert hw.const_multiplier_luts(7, 8) == 2 * 11


def test_requant_summaries_read_the_ir():
    # per-channel thresholds (32, 15) of 14-bit entries; shared base and direction
    assert requant.describe(thresholds(32, 15), 14, 4) == requant.RequantSpec("thresholds", 15, 15 * 14)
    # varying base adds the output width per channel
    assert requant.describe(thresholds(4, 3, base=(0, 1, 0, 2)), 10, 2).channel_bits == 3 * 10 + 2
    assert requant.describe(thresholds(1, 15), 14, 4).channel_bits == 0  # one shared table: constants
    # multipliers up to 2000 (11 bits + sign = 12), offsets in [-3, 9] (5 bits)
    ms = requant.describe(mul_shift([1000, 2000], [-3, 9], 255), 22, 8)
    assert (ms.kind, ms.multiplier_bits, ms.channel_bits) == ("multiply_shift", 12, 12 + 5)
    assert requant.describe(None, 14, 14) == requant.NO_REQUANT


def test_shared_requantizers_by_hand():
    """10 lanes finished once every 4 cycles share ceil(10 / 4) = 3 multiply-shift units in 4 steps."""
    ms = requant.RequantSpec("multiply_shift", 0, 45, 12)
    rq = requant.units(ms, 10, 4)
    assert (rq.units, rq.shared, rq.steps) == (3, True, 4)
    assert not requant.units(ms, 10, 1).shared  # one cycle per word: one unit per lane
    assert not requant.units(requant.RequantSpec("thresholds", 15, 0), 10, 4).shared  # no DSP to save
    res, depth = requant.shared_cost(ms, 20, 8, rq, folds=2)
    # a unit: one DSP (20 x 12 bits), its 32-bit offset adder (32 LUT + 32 FF), two 32-bit clip
    # comparators (16 LUTs each), 8 LUTs of clip select and its 8-bit output register;
    # its table: 45 bits x (2 folds x 4 steps) deep, a LUT ROM (45 LUTs); its 4:1 bank mux: 20 LUTs
    unit = Resources(lut=32 + 32 + 8 + 45 + 20, ff=32 + 8, dsp=1)
    # the bank and the output word: 10 x (20 + 8) FFs, an enable LUT per lane; step (3 bits),
    # fold (1 bit) and busy registers
    assert res == unit * 3 + Resources(lut=10, ff=10 * 28) + Resources(lut=5, ff=5)
    assert depth == hw.DSP_LATENCY + 2 + 4  # the last lane leaves 4 steps after its word


# -- kernels ----------------------------------------------------------------------------


def dense_layer() -> tuple[ir.Dense, ir.Graph]:
    x, y = codes("x", (64,), U4), codes("y", (32,), U4)
    weights = np.full((32, 64), -8, np.int64)
    weights[1] = 7  # the accumulator range comes from the weight values: rows at both extremes
    op = ir.Dense("fc", ("x",), ("y",), weights=weights, w_qtype=S4, requant=thresholds(32, 15))
    return op, graph([op], [x, y])


def test_dense_cost_by_hand():
    op, g = dense_layer()
    spec = dense.describe(op, g)
    assert (spec.arith.acc_bits, spec.arith.product_bits, spec.arith.out_bits) == (14, 8, 4)
    # pe: the fewest lanes for each number of folds, ceil(32 / n) (the divisors, and 3, 5, 6, 7, 11 padded);
    # simd likewise for each number of input words up to 16, ceil(64 / n) (the divisors, and 5, 6, 7, 10,
    # 11, 13, 22 with the last word padded: the 4-bit weights have a zero)
    assert dense.legal(spec) == {"pe": [1, 2, 3, 4, 5, 6, 7, 8, 11, 16, 32],
                                 "simd": [1, 2, 4, 5, 6, 7, 8, 10, 11, 13, 16, 22, 32, 64]}  # fmt: skip
    c = dense.cost(spec, LayerFold(pe=4, simd=8))
    assert c.cycles == (64 // 8) * (32 // 4) == 64
    lut = (
        32 * 15  # 32 LUT multipliers 4 x 4
        + 4 * (4 * 9 + 2 * 10 + 11)  # 4 adder trees over 8 products of 8 bits
        + 4 * 14  # 4 accumulators of 14 bits
        + 4 * (15 * 7 + 15)  # 4 threshold units: 15 comparators of 14 bits + encoder
        + 4 * 210  # 4 threshold tables: 15 x 14 bits x 8 channels each: LUT ROM
        + 64  # kernel control
        + 5 * 8  # input buffer for the 8 output passes: 32 bits x 8 words, RAM64M8 x 5
        + 36  # input FIFO: 32 SRLs + 4 counter bits
    )
    ff = 32 * 8 + 4 * 67 + 4 * 14 + 4 * 4 + 64 + 32 + 36
    # 4 weight ROMs, 32 bits x 64 words: above 32 deep and 1024 bits, one BRAM18 each
    assert c.resources == Resources(lut=lut, ff=ff, bram18=4, lutram=40 + 32)
    assert lut == 2264 and ff == 728
    # depth: 8 input words + BRAM read 2 + LUT multiply 1 + 3 tree levels + accumulate 1 + thresholds 2
    assert c.depth == 8 + 9
    assert c.multipliers == 32
    assert dense.multiplier(spec).macs == 64 * 32 and dense.multiplier(spec).unit == {"lut": 15.0}


def test_dense_padded_fold_by_hand():
    # pe 11 of 32 outputs: 3 folds of 11 lanes (one padded), 8 input words per fold; a gearbox reads
    # the unit's 44-bit words and writes 2 words of 16 lanes (64 bits) per vector
    op, g = dense_layer()
    spec = dense.describe(op, g)
    h = dense.hardware(spec, LayerFold(pe=11, simd=8))
    assert h.cycles == 8 * 3 and h.multipliers == 11 * 8
    assert Memory("weights", "rom", 32, 24, 11) in h.memories and Fifo("unit_output", 44, 2) in h.fifos
    # gearbox 44 -> 64 bits: neither a multiple of the other, one shift stage over its 108-bit
    # buffer (108 LUTs, 108 FFs) and two 7-bit counters, plus its kernel control
    gearbox = Resources(lut=108 + 14 + 64, ff=108 + 14 + 64)
    assert mvu.padded_output(spec.arith, 32, 11, 8) == ((Fifo("unit_output", 44, 2),), ((44, 64),), gearbox, 9)
    assert h.gearboxes == ((44, 64),) and dense.hardware(spec, LayerFold(pe=8, simd=8)).gearboxes == ()
    # its first 16-lane word needs the unit's second word, 8 cycles after the first, + its register
    assert h.depth == dense.hardware(spec, LayerFold(pe=8, simd=8)).depth + 8 + 1
    assert dense.stream_lanes(spec, LayerFold(pe=11, simd=8)) == ((8,), 16)
    assert dense.stream_lanes(spec, LayerFold(pe=8, simd=8)) == ((8,), 8)


def test_dense_wide_products_pack_two_pes_per_dsp():
    # mac.h's DspPacked: PEs 2p and 2p + 1 share each input lane, one DSP48E2 per pair and lane
    # (uint8 -> 9 signed bits, int8 weights: 9 + 2 * 8 + 1 = 26 bits on the 27-bit port);
    # one PE alone, or the odd last one, takes a DSP per product
    x, y = codes("x", (16,), U8), codes("y", (8,), U8)
    op = ir.Dense("fc", ("x",), ("y",), weights=np.zeros((8, 16), np.int64), w_qtype=S8, requant=thresholds(1, 255))
    spec = dense.describe(op, graph([op], [x, y]))
    assert spec.arith.mac == "DspMultiply"
    assert dense.cost(spec, LayerFold(pe=4, simd=2)).resources.dsp == 2 * 2
    assert dense.cost(spec, LayerFold(pe=1, simd=2)).resources.dsp == 2
    assert dense.cost(spec, LayerFold(pe=8, simd=1)).multipliers == 8
    assert dense.multiplier(spec).unit == {"dsp": 0.5}
    wide = ir.Dense("fc", ("x",), ("y",), weights=np.zeros((8, 16), np.int64), w_qtype=S8, requant=thresholds(1, 255))
    x12 = codes("x", (16,), ir.QType(12, True))  # 12 + 2 * 8 + 1 = 29 bits: no pair fits one DSP
    spec12 = dense.describe(wide, graph([wide], [x12, y]))
    assert dense.cost(spec12, LayerFold(pe=4, simd=2)).resources.dsp == 8
    assert dense.multiplier(spec12).unit == {"dsp": 1.0}


def test_a_zero_point_widens_the_product_to_the_generated_multiplier():
    # uint4 codes with zero point 3 are centred to [-3, 12]: 5 bits, so mac.h's LutMultiply (<= 4 bits)
    # does not apply and the generated unit is DspMultiply; the cost model prices DSPs, not LUTs
    u4_zp = ir.QType(4, False, zero_point=(3,))
    x, y = codes("x", (16,), u4_zp), codes("y", (8,), U8)
    op = ir.Dense("fc", ("x",), ("y",), weights=np.zeros((8, 16), np.int64), w_qtype=S4, requant=thresholds(1, 255))
    spec = dense.describe(op, graph([op], [x, y]))
    assert (spec.arith.a_bits, spec.arith.mac) == (5, "DspMultiply")
    assert dense.cost(spec, LayerFold(pe=2, simd=4)).resources.dsp == 4  # one PE pair packed per lane


def conv_layer(groups: int = 1, kernel=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1), ic=4, oc=8, hw_in=8, rq=None):
    oh = (hw_in + pads[0] + pads[2] - kernel[0]) // strides[0] + 1
    x, y = codes("x", (hw_in, hw_in, ic), U8), codes("y", (oh, oh, oc), U8)
    w = np.full((oc, ic // groups, *kernel), -128, np.int64)
    w[1] = 127  # the accumulator range comes from the weight values: rows at both extremes
    rq = rq if rq is not None else mul_shift(np.arange(1000, 1000 + 125 * oc, 125), np.arange(oc), 255)
    op = ir.Conv("conv", ("x",), ("y",), weights=w, w_qtype=S8, groups=groups, strides=strides, pads=pads, requant=rq)
    return op, graph([op], [x, y])


def test_conv_cost_by_hand():
    op, g = conv_layer()
    assert kernel_for(op) is conv
    spec = conv.describe(op, g)
    assert spec.arith.acc_bits == 22 and spec.arith.requant.multiplier_bits == 12  # 1875 < 2**11
    # simd: channels of one tap (1, 2, 4), three taps of a kernel row (12), the whole 3x3 window (36),
    # and the other divisors of 36 (3, 6, 9, 18) through a gearbox after the window generator, as are
    # the fewest lanes for the other word counts up to 16, ceil(36 / n) (5, 8: the last word padded)
    assert conv.legal(spec) == {"pe": [1, 2, 3, 4, 8], "simd": [1, 2, 3, 4, 5, 6, 8, 9, 12, 18, 36],
                                "pixels": [1, 2, 4, 8],
                                "pixels_pe": 8, "pixels_simd": [1, 2, 4], "requant": ["dsp", "fabric"]}  # fmt: skip
    c = conv.cost(spec, LayerFold(pe=2, simd=4))
    # the first window waits for 2 whole rows of 8 one-word pixels (padding 1 above); then the unit
    # computes 8 rows of 8 windows of 9 words in 8/2 passes (its emissions, 8*8*9, are faster) while
    # the window generator reads each next row (8 words, in the line buffer's fourth row): hidden
    assert c.cycles == 2 * 8 + 8 * (8 * 9 * (4 // 4) * (8 // 2)) == 2320
    # products: 4 DSPs (the PE pair packed, per lane); requantization: 22 x 12 bits = one DSP per
    # requantizer, and the 2 PEs' words are finished once every 9 cycles: one requantizer, 2 steps
    assert c.resources.dsp == 4 + 1
    # line buffer: 3 + 1 whole rows of 8 one-word pixels (4 channels) -> 32 bits x 32 words (5 RAM64M8 = 40
    # LUTs); the window vector kept for 4 passes, 32 bits x 9 words (40); input and window FIFOs 32
    # SRLs each. Weights (32 bits x 36 words: above 32 deep and 1024 bits) one BRAM18 per PE.
    assert c.resources.lutram == 40 + 40 + 32 + 32 and c.resources.bram18 == 2
    # first window: 2 whole rows of 8 pixels, 4 channels: 64 entries = 16 words; 9 tap words;
    # pipeline: BRAM 2 + DSP 3 + 2 tree levels + accumulate 1 + multiply-shift 3 + 2, + 2 shared steps
    assert c.depth == 16 + 9 + 13 + 2
    assert conv.multiplier(spec).macs == 8 * 8 * 8 * 4 * 9


def test_tap_parallel_conv_by_hand():
    op, g = conv_layer()  # 8x8x4 -> 8x8x8, 3x3, padding 1
    spec = conv.describe(op, g)
    # simd 12: three taps of a kernel row (4 channels each) a word, 3 words a window; input words of 4 channels
    hw12 = conv.hardware(spec, LayerFold(pe=2, simd=12))
    assert conv.word(spec.win, 12, 36) == conv.Word(lanes=4, taps=3, simd=12) and not conv.word(spec.win, 12, 36).gearbox
    # the first window's 2 rows, then 8 rows of 8 windows x 3 words x 4 passes, the next row read meanwhile
    assert hw12.cycles == 2 * 8 + 8 * (8 * 3 * (8 // 2)) == 784
    buffers = [m for m in hw12.memories if m.role == "line_buffer"]
    # x split in 3 banks (three taps one column apart), each 3 + 1 rows (a window's and the next row's)
    # x ceil(8 / 3) positions of one 32-bit word
    assert [(m.width, m.depth, m.count) for m in buffers] == [(32, 4 * 3, 3)]
    assert [(f.width, f.depth) for f in hw12.fifos][0][0] == 4 * 8  # the input stream: 4 channels a word
    assert hw12.fifos[-1].width == 12 * 8  # the window stream: 12 elements a word
    assert hw12.macs[0].count == 2 * 12
    # simd 36: the whole window a word; every row slot a memory of its own as well
    hw36 = conv.hardware(spec, LayerFold(pe=8, simd=36))
    # one word a window: emitting a row (8 cycles) takes as long as reading one, so after the first
    # window's 2 rows the 8 output rows follow back to back, each row read while the previous is emitted
    assert hw36.cycles == 2 * 8 + 8 * 8 == 80
    assert [(m.width, m.depth, m.count) for m in hw36.memories if m.role == "line_buffer"] == [(32, 3, 9 + 3)]
    # first window: 2 rows x 8 pixels of one 4-channel word; 1 word a window; the pipeline of
    # test_conv_cost_by_hand with a 36-input adder tree (6 levels, not 2)
    assert hw36.depth == 16 + 1 + (13 - 2 + 6)
    # several pixels per cycle stay at one tap a word
    assert fold_problems(conv.legal(spec), LayerFold(pe=8, simd=12, pixels=2))


def test_conv_simd_through_a_gearbox_by_hand():
    op, g = conv_layer()  # 8x8x4 -> 8x8x8, 3x3, padding 1: 36 window elements
    spec = conv.describe(op, g)
    # simd 6: the smallest window word of at least 6 elements is three taps of a row (12), re-cut in two
    feed = conv.word(spec.win, 6, 36)
    assert (feed.lanes, feed.taps, feed.elems, feed.gearbox) == (4, 3, 12, True)
    assert conv.word(spec.win, 3, 36) == conv.Word(lanes=4, taps=1, simd=3)  # 4 channels re-cut into 3s
    assert conv.word(spec.win, 18, 36) == conv.Word(lanes=4, taps=9, simd=18)  # the whole window in halves
    hw6 = conv.hardware(spec, LayerFold(pe=2, simd=6))
    # the first window's 2 rows of 8 one-word pixels, then 8 rows of 8 windows x 6 words x 4 passes (the
    # generator's 3 words a window are faster); the next row read meanwhile
    assert hw6.cycles == 2 * 8 + 8 * (8 * 6 * (8 // 2)) == 1552
    # the input stream (4 channels), the window stream (12 elements), the gearbox's stream (6 elements)
    assert [(f.role, f.width) for f in hw6.fifos] == [("input0", 4 * 8), ("windows", 12 * 8), ("simd_words", 6 * 8)]
    assert hw6.macs[0].count == 2 * 6
    # the line buffer as at simd 12 (3 banks of 3 + 1 rows x ceil(8 / 3) positions)
    assert [(m.width, m.depth, m.count) for m in hw6.memories if m.role == "line_buffer"] == [(32, 4 * 3, 3)]
    # its logic: the window generator's at simd 12 and the unit's at simd 6, plus a 96 -> 48-bit gearbox
    hw12 = conv.hardware(spec, LayerFold(pe=2, simd=12))
    gen = spec.win.generator(4, 8, 1, 3)[2]
    unit = {s: mvu.logic(spec.arith, 2, s, 8, 1, h.requantizers[0])[0] for s, h in ((6, hw6), (12, hw12))}
    assert hw6.logic == unit[6] + gen + hw.gearbox(96, 48) and hw12.logic == unit[12] + gen
    # first window: 16 words; 6 words a window; the unit's pipeline; the gearbox's one cycle
    assert hw6.depth == 16 + 6 + mvu.logic(spec.arith, 2, 6, 8, 1, hw6.requantizers[0])[1] + hw.GEARBOX_LATENCY
    assert fold_problems(conv.legal(spec), LayerFold(pe=8, simd=6, pixels=2))  # one pixel a cycle


def test_strided_conv_pays_for_its_input_reads():
    op, g = conv_layer(kernel=(1, 1), strides=(2, 2), pads=(0, 0, 0, 0))
    spec = conv.describe(op, g)
    # reads 8*8 pixels x 1 word = 64; an output row's 4 windows (1 tap x 1 word x 1 pass) are emitted
    # while the next 2 rows are read (the line buffer holds 1 + 2 rows): the reads alone
    assert conv.cost(spec, LayerFold(pe=8, simd=4)).cycles == 64
    # a 1x1 convolution with stride 1 and no padding reads the map directly: no window generator
    op, g = conv_layer(kernel=(1, 1), pads=(0, 0, 0, 0))
    spec = conv.describe(op, g)
    c = conv.cost(spec, LayerFold(pe=8, simd=4))
    assert spec.pointwise and c.cycles == 8 * 8 and conv.lag(spec) == 4


def test_depthwise_cost_by_hand():
    op, g = conv_layer(groups=8, ic=8, oc=8, hw_in=6, rq=thresholds(8, 15))
    assert kernel_for(op) is depthwise
    spec = depthwise.describe(op, g)
    # pe: the fewest lanes for each number of channel folds (3 lanes: 3 folds, the last one padded)
    assert depthwise.legal(spec) == {"pe": [1, 2, 3, 4, 8], "simd": [1, 3, 9], "simd_at_pe": {8: [1, 3, 9]},
                                     "pixels": [1, 2, 3, 6], "pixels_pe": 8, "pixels_simd": [1]}  # fmt: skip
    c = depthwise.cost(spec, LayerFold(pe=4, simd=3))
    # the first window's 2 rows of 6 pixels x 2 words, then one tap word per cycle: 6*6 windows x 9
    # taps x 2 words, each next row (12 words) read meanwhile (the unit's 6*6 * 2 * 9/3 = 216 cycles
    # are faster than the window generator's emission)
    assert c.cycles == 2 * 6 * 2 + 6 * 6 * 9 * 2 == 672
    assert c.resources.dsp == 12  # 8-bit products: one DSP each
    # line buffer: 3 + 1 whole rows of 6 pixels x 2 words of 4 channels: 32 bits x 48 words (above 32
    # deep and 1024 bits: one BRAM18); input and window FIFOs: 4 channels x 8 bits = 32 SRLs each;
    # 3 taps gathered: a 96-bit FIFO
    assert c.resources.lutram == 32 + 32 + 96 and c.resources.bram18 == 1
    # so simd > 1 buys nothing here: the same cycles at simd = 1, with fewer multipliers
    assert depthwise.cost(spec, LayerFold(pe=4, simd=1)).cycles == 672
    # pe 3 of 8 channels: the generator and the unit run on 9 channels (3 folds of 3 lanes); each
    # pixel's 8 channels arrive in words of 4 (the smallest divisor of 8 above 3) and a gearbox
    # re-cuts them into 3 words of 3, the last padded; another one drops the padded lane at the
    # output: 2 rows of 6 pixels x 3 words, then 6*6 windows x 9 taps x 3 words
    hw3 = depthwise.hardware(spec, LayerFold(pe=3, simd=1))
    assert hw3.cycles == 2 * 6 * 3 + 6 * 6 * 9 * 3 == 1008
    assert hw3.gearboxes == ((4 * 8, 3 * 8), (3 * 8, 4 * 8))
    assert [f.width for f in hw3.fifos] == [4 * 8, 3 * 8, 3 * 8, 3 * 8]  # input, padded input, windows, unit output
    assert [(m.width, m.depth) for m in hw3.memories if m.role == "line_buffer"] == [(3 * 8, 4 * 6 * 3)]
    assert depthwise.stream_lanes(spec, LayerFold(pe=3, simd=1)) == ((4,), 4)
    assert hw3.macs[0].count == 3 and hw3.macs[0].kind == "DspMultiply"


def test_tap_parallel_depthwise_by_hand():
    op, g = conv_layer(groups=8, ic=8, oc=8, hw_in=6, rq=thresholds(8, 15))  # 6x6x8, 3x3, padding 1
    spec = depthwise.describe(op, g)
    # every channel, 3 taps of a kernel row a word: words of 8 channels, the generator in convolution
    # order at 3 taps a word, no gearbox: it reads the first output row's 2 input rows (padding 1 on
    # top), then emits 6 rows of 6 windows x 3 words while it reads the rest (6 words a row, ahead)
    hw3 = depthwise.hardware(spec, LayerFold(pe=8, simd=3))
    assert depthwise.taps(spec, LayerFold(pe=8, simd=3)) == 3 and depthwise.taps(spec, LayerFold(pe=4, simd=3)) == 1
    assert hw3.cycles == 2 * 6 + 6 * (6 * 3) == 120
    # x split in 3 banks (three taps one column apart), each 3 + 1 rows (a window's and the next
    # output row's, stride 1) x 6 / 3 positions of one 64-bit word
    assert [(m.width, m.depth, m.count) for m in hw3.memories if m.role == "line_buffer"] == [(64, 4 * 2, 3)]
    assert [f.width for f in hw3.fifos] == [8 * 8, 3 * 8 * 8]  # the input stream, the window stream: no tap_words
    assert hw3.macs[0].count == 8 * 3
    # the whole window a word: one word a window, every row slot a memory of its own too: 4 slots x 3
    # banks of 6 / 3 positions
    hw9 = depthwise.hardware(spec, LayerFold(pe=8, simd=9))
    assert hw9.cycles == 2 * 6 + 6 * 6 == 48
    assert [(m.width, m.depth, m.count) for m in hw9.memories if m.role == "line_buffer"] == [(64, 2, 4 * 3)]
    # several pixels per cycle stay at one tap a word
    assert fold_problems(depthwise.legal(spec), LayerFold(pe=8, simd=3, pixels=2))
    assert fold_problems(depthwise.legal(spec), LayerFold(pe=8, simd=1, pixels=2)) == []
    # tap words only: a 10x4 kernel takes 1, 2, 4 taps of a row or 1, 2, 5, 10 whole rows at every
    # channel, any divisor of 40 below it (the output map's shape does not enter)
    op, g = conv_layer(groups=4, ic=4, oc=4, hw_in=12, kernel=(10, 4), pads=(0, 0, 0, 0), rq=thresholds(4, 15))
    legal = depthwise.legal(depthwise.describe(op, g))
    assert legal["simd"] == [1, 2, 4, 5, 8, 10, 20, 40] and legal["simd_at_pe"] == {4: [1, 2, 4, 8, 20, 40]}
    assert fold_problems(legal, LayerFold(pe=2, simd=5)) == []
    assert fold_problems(legal, LayerFold(pe=4, simd=5)) == ["simd=5 with pe=4 (legal at that pe: 1, 2, 4, 8, 20, 40)"]
    assert LayerFold(4, 5) not in foldings(legal) and LayerFold(4, 40) in foldings(legal)


def test_pool_cost_by_hand():
    x, y = codes("x", (8, 8, 16), U8), codes("y", (4, 4, 16), U8)
    op = ir.MaxPool("pool", ("x",), ("y",), kernel=(2, 2), strides=(2, 2))
    assert kernel_for(op) is pool
    spec = pool.describe(op, graph([op], [x, y]))
    assert pool.legal(spec) == {"pe": [1, 2, 4, 8, 16], "simd": [1], "pixels": [1, 2, 4], "pixels_pe": 16}
    c = pool.cost(spec, LayerFold(pe=4))
    # the window generator reads the first window's 2 rows of 8 pixels x 4 words, then emits 4 rows of
    # 4 windows x 4 taps x 4 words (64 cycles a row) while it reads the next 2 rows (64 words)
    assert c.cycles == 2 * 8 * 4 + 4 * (4 * 4 * 4) == 320
    # line buffer 2 + 2 rows x 8 pixels x 4 words of 32 bits = 128 words (one BRAM18);
    # 4 comparators (4 + 8 LUTs, 8 FFs); reduction control 64; 4 accumulator registers of 8 bits;
    # input and window FIFOs (32 SRLs + 4 counter bits each); the window generator: padding select
    # (32 LUTs) and output register (32 FFs), two 32-bit coordinate adders (registered), four 32-bit
    # bounds comparisons (16 LUTs each), two 7-bit address adders (128 words; registered: 7 FFs), the
    # control of its read and emission counters (2 x 64) and their schedule: the read limit and the
    # last row needed (two 32-bit adders, registered) and three 32-bit comparisons of the row read
    swg_lut = 32 + 2 * 32 + 4 * 16 + 2 * 7 + 2 * 64 + 2 * 32 + 3 * 16
    swg_ff = 32 + 2 * 32 + 7 + 2 * 64 + 2 * 32
    assert hw.window_generator(32, 128) == Resources(lut=swg_lut, ff=swg_ff)
    lut = 4 * 12 + 64 + swg_lut + 2 * 36
    ff = 4 * 8 + 64 + swg_ff + 4 * 8 + 2 * 36
    assert c.resources == Resources(lut=lut, ff=ff, bram18=1, lutram=2 * 32)
    # an overlapping 3x3 / 2 window visits 9 taps per output: 16 outputs x 9 > 64 inputs
    y2 = codes("y", (4, 4, 16), U8)
    op2 = ir.MaxPool("pool", ("x",), ("y",), kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1))
    spec2 = pool.describe(op2, graph([op2], [x, y2]))
    # the first window's 2 rows (padding 1 above), then 4 rows of 4 windows x 9 taps, each row's 2 new
    # rows (16 words) read while the previous one is emitted (36 cycles)
    assert pool.cost(spec2, LayerFold(pe=16)).cycles == 2 * 8 + 4 * (4 * 9) == 160


def test_global_average_pool_sums_in_accumulator_width():
    x, y = codes("x", (4, 4, 16), U8), codes("y", (1, 1, 16), U8)
    op = ir.AvgPool("gap", ("x",), ("y",), kernel=(4, 4), strides=(4, 4), requant=thresholds(1, 255))
    spec = pool.describe(op, graph([op], [x, y]))
    assert spec.acc_bits == 13  # 16 x 255 = 4080 < 2**12
    assert pool.lag(spec) == 4 * 4 * 16  # the only window is the whole input


def test_add_cost_by_hand():
    a, b, y = codes("a", (4, 4, 16), U8), codes("b", (4, 4, 16), U8), codes("y", (4, 4, 16), U8)
    op = ir.Add("add", ("a", "b"), ("y",), input_multipliers=(1, 3), requant=mul_shift([5], [0], 255))
    spec = add.describe(op, graph([op], [a, b, y], inputs=("a", "b")))
    assert spec.acc_bits == 11  # 1 * 255 + 3 * 255 = 1020 < 2**10
    c = add.cost(spec, LayerFold(pe=2))
    assert c.cycles == 16 * (16 // 2)
    # per PE: 11-bit adder + x*3 (one 10-bit adder); multiply-shift: 11 x 4 bits in one DSP, a 15-bit
    # offset adder, two 15-bit clip comparators (8 LUTs each) and the 8-bit output; control; two FIFOs
    lut = 2 * (11 + 10) + 2 * (15 + 16 + 8) + 64 + 2 * (16 + 4)
    ff = 2 * 11 + 2 * (15 + 8) + 64 + 2 * (16 + 4)
    assert c.resources == Resources(lut=lut, ff=ff, dsp=2, lutram=2 * 16)


def test_divisors():
    assert divisors(12) == [1, 2, 3, 4, 6, 12] and divisors(1) == [1] and divisors(7) == [1, 7]


# -- stream plumbing ------------------------------------------------------------------------


def residual_graph() -> ir.Graph:
    ms = mul_shift([3], [0], 255)
    w = np.zeros((2, 2, 3, 3), np.int64)
    ops = [
        ir.Conv("a", ("x",), ("t1",), weights=w, w_qtype=S8, pads=(1, 1, 1, 1), requant=ms),
        ir.Conv("b", ("t1",), ("t2",), weights=w, w_qtype=S8, pads=(1, 1, 1, 1), requant=ms),
        ir.Add("add", ("x", "t2"), ("y",), requant=ms),
    ]
    tensors = [codes(n, (4, 4, 2), U8) for n in ("x", "t1", "t2", "y")]
    return graph(ops, tensors)


def test_bypass_fifo_of_a_residual_add():
    g = residual_graph()
    specs = {op.name: kernel_for(op).describe(op, g) for op in g.ops}
    lag = {name: kernel_for(g.op(name)).lag for name in specs}
    # each 3x3 conv (pad 1) reads 2 whole rows of 4 pixels x 2 channels before its first window: 16 of
    # 32 elements; the skip input must hold what arrives while both convs fill: 2 x 16 = 32 elements
    assert conv.lag(specs["a"]) == 16
    assert streams.bypass_depths(g, specs, lambda s: lag[s.name](s)) == {"add": (32, 0)}
    # its FIFO (2-channel words): twice that, plus the default depth, capped at a frame plus 2
    assert hw.bypass_fifo_depth(32, 2, 16) == 18 and hw.bypass_fifo_depth(4, 2, 16) == 2 + 4


def test_frame_latency_of_one_dense_layer():
    op, g = dense_layer()
    spec = dense.describe(op, g)
    cost = dense.cost(spec, LayerFold(pe=4, simd=8))
    # the first output after the layer's depth, the last one II cycles later
    assert streams.frame_latency(g, {"fc": spec}, {"fc": cost}, dense.lag) == 17 + 64
    slow = Cost(cycles=1000, depth=5, resources=Resources())
    assert streams.frame_latency(g, {"fc": spec}, {"fc": slow}, dense.lag) == 1005


@pytest.mark.parametrize("fold", [LayerFold(1, 1), LayerFold(32, 64)])
def test_extreme_foldings(fold):
    op, g = dense_layer()
    c = dense.cost(dense.describe(op, g), fold)
    assert c.cycles == (64 // fold.simd) * (32 // fold.pe) and c.multipliers == fold.pe * fold.simd
    if fold.pe == 32:  # fully unrolled: weights are constants, no input buffer
        assert c.resources.bram18 == 0 and c.cycles == 1
    else:  # 4 bits x 2048 words: one 4K x 4 BRAM18
        assert c.resources.bram18 == 1
