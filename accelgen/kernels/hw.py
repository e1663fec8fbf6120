"""Cost primitives every kernel's model is built from, and where each figure comes from.

Memories (block RAM, distributed ROM/RAM, FIFOs), multipliers (LUT fabric or DSP48E2),
adders, comparators and accumulator widths. Pure functions of widths and depths.

Sources: Xilinx UG573 (UltraScale memory resources: RAMB18E2), UG574 (UltraScale CLB: LUT6,
distributed RAM, SRL, CARRY8), UG579 (UltraScale DSP48E2), WP486 (INT8 packing in DSP48E2).
Zynq-7000 parts have the same BRAM18 shapes (UG473) and a 25 x 18 DSP48E1 (UG479); the
model uses the UltraScale figures for every board (the Pynq-Z2 estimate is slightly kind).
"""

from __future__ import annotations

import functools
import math

from accelgen.kernels.base import NONE, Cost, Fifo, Hardware, Mac, Memory, Resources, ceil_div

# -- block RAM ------------------------------------------------------------------------------

#: RAMB18E2 port shapes (depth, width), UG573 "Block RAM port aspect ratios": 16K x 1 ...
#: 1K x 18 in true dual port, 512 x 36 in simple dual port (the width ROMs and FIFOs use).
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
#: read latency of a block RAM with its output register enabled (UG573), in cycles
BRAM_READ_LATENCY = 2

# -- distributed memory (LUTs) --------------------------------------------------------------

#: a LUT6 is a 64 x 1 ROM, or in a SLICEM a 64 x 1 RAM (UG574, ROM64X1 / RAM64X1S)
LUT_MEMORY_DEPTH = 64
#: RAM64M8 (UG574): a SLICEM's 8 LUTs form a 64-deep, 7-bit simple-dual-port RAM
LUTRAM_SDP_WIDTH = 7
LUTRAM_SDP_LUTS = 8
#: SRLC32E (UG574): one LUT is a 32-deep shift register; shallow FIFOs are built from them
SRL_DEPTH = 32
#: policy of this model (Vivado's automatic choice as published syntheses show it): a memory
#: at most LUT_MEMORY_MAX_DEPTH deep (a LUT's 32-deep dual-5-input mode, RAM32M / SRLC32E,
#: fully used) or of at most LUT_MEMORY_MAX_BITS bits goes to LUTs, since a BRAM18 spent on it
#: would be mostly empty; everything else to BRAM18. Not 64 deep: FINN's UNSW-NB15 MLP
#: (bench_calibration.py) has its 60- and 64-deep, 128- to 1280-bit-wide weight memories in
#: block RAM (published 44 BRAM18 = 1280 / 36 + 2 x 128 / 36)
LUT_MEMORY_MAX_DEPTH = 32
LUT_MEMORY_MAX_BITS = 1024

# -- streams ---------------------------------------------------------------------------------

#: depth of an hls::stream FIFO between two kernels (Vitis HLS's default depth)
STREAM_FIFO_DEPTH = 2

# -- multipliers -----------------------------------------------------------------------------

#: products with both operands at most this wide are built in LUTs (a 4 x 4 product is
#: ~15 LUTs, far cheaper than a DSP48E2): mac.h's LutMultiply; a bipolar operand is a sign
#: (SignSelect, InputSign, XnorPopcount); everything else is DspMultiply
LUT_MULT_MAX_BITS = 4
#: DSP48E2 multiplier: 27 x 18 bits, two's complement (UG579); 26 / 17 bits of magnitude
DSP_A_BITS = 27
DSP_B_BITS = 18
#: WP486 packs two products that share an operand into one DSP48E2; mac.h's DspPacked does
#: it for the matrix unit's PE pairs (they share the input lane): a * (w1 * 2^K + w0) with
#: K = a_bits + w_bits, when the packed operand (K + w_bits + 1 bits) fits the 27-bit port
#: and the activation the 18-bit one (:func:`packs_pair`)
#: pipeline latency of a DSP48E2 multiply with A/B, M and P registers (UG579)
DSP_LATENCY = 3
#: pipeline stages of a wide product bound to the fabric (requant.h's FabricProduct pins it
#: in its BIND_OP pragma): UG1399's largest latency for ``op=mul impl=fabric``, so that the
#: array of carry-chain rows is cut into as many register stages as HLS allows
FABRIC_MUL_LATENCY = 4

# -- control ---------------------------------------------------------------------------------

#: loop counters, FSM and stream handshakes of one pipelined HLS kernel: four 16-bit
#: counters at one LUT and one FF per bit (this model's estimate, not a vendor figure)
KERNEL_CONTROL = Resources(lut=64, ff=64)


# -- memories --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def bram18_count(width: int, depth: int) -> int:
    """BRAM18s for a ``width`` x ``depth`` memory as Vivado synthesis infers it by default:
    bit-sliced into columns of the shallowest RAMB18E2 aspect ratio that holds every word,
    side by side (UG912, RAM_DECOMP: "a RAM specified as 2K x 36 would often be configured
    as two 2K x 18 block RAMs arranged side by side", the timing-efficient default; the
    depth-wise split with address decoding is the opt-in ``power`` one); deeper than 16K,
    columns of 16K x 1 blocks cascaded in depth (UG573: the cascade is built in).

    Not the densest tiling: a 2304 x 32 memory takes eight 4K x 4 blocks, not five 512 x 36
    blocks with a 5:1 multiplexer per bit. BNN-PYNQ's published CNV block-RAM counts are
    above even this mapping, and far above the densest one (bench_calibration.py).
    """
    if width <= 0 or depth <= 0:
        return 0
    fits = [(d, w) for d, w in BRAM18_SHAPES if d >= depth]
    if fits:
        return ceil_div(width, min(fits)[1])
    deepest = max(d for d, _ in BRAM18_SHAPES)
    return width * ceil_div(depth, deepest)


def in_luts(width: int, depth: int) -> bool:
    """The memory policy: shallow or small memories are distributed (LUT) memory."""
    return depth <= LUT_MEMORY_MAX_DEPTH or width * depth <= LUT_MEMORY_MAX_BITS


# pure functions of widths and depths, cached: the explorer prices thousands of foldings
@functools.lru_cache(maxsize=65536)
def rom(width: int, depth: int) -> Resources:
    """A read-only table (weights, thresholds, requantization parameters).

    Depth 1 is a set of constants wired into the logic (free here); a small table is LUT6
    ROM (``width * ceil(depth / 64)`` LUTs, logic LUTs: no SLICEM needed); else BRAM18.
    """
    if width <= 0 or depth <= 1:
        return NONE
    if in_luts(width, depth):
        return Resources(lut=width * ceil_div(depth, LUT_MEMORY_DEPTH))
    return Resources(bram18=bram18_count(width, depth))


@functools.lru_cache(maxsize=65536)
def ram(width: int, depth: int) -> Resources:
    """A read-write buffer (line buffers, partial results, deep FIFOs).

    Depth 1 is a register; small is RAM64M8 distributed RAM (8 SLICEM LUTs per 7 bits per
    64 words, plus an output register); else BRAM18.
    """
    if width <= 0 or depth <= 0:
        return NONE
    if depth == 1:
        return Resources(ff=width)
    if in_luts(width, depth):
        luts = ceil_div(width, LUTRAM_SDP_WIDTH) * LUTRAM_SDP_LUTS * ceil_div(depth, LUT_MEMORY_DEPTH)
        return Resources(lut=luts, lutram=luts, ff=width)
    return Resources(bram18=bram18_count(width, depth))


@functools.lru_cache(maxsize=65536)
def fifo(width: int, depth: int) -> Resources:
    """A stream FIFO: SRLC32E shift registers up to 32 deep, a buffer beyond; plus two
    pointer/counter registers of ``ceil(log2(depth + 1))`` bits (one LUT, one FF per bit)."""
    if width <= 0 or depth <= 0:
        return NONE
    counter = 2 * max(1, math.ceil(math.log2(depth + 1)))
    control = Resources(lut=counter, ff=counter)
    if depth <= SRL_DEPTH:
        return Resources(lut=width, lutram=width, ff=width) + control
    return ram(width, depth) + control


# -- arithmetic ------------------------------------------------------------------------------


def mac_kind(a_bipolar: bool, a_bits: int, w_bipolar: bool, w_bits: int) -> str:
    """The multiplier mac.h instantiates for a centred activation and a weight (the one
    rule: code generation emits it, the cost model prices it)."""
    if a_bipolar and w_bipolar:
        return "XnorPopcount"
    if w_bipolar:
        return "SignSelect"
    if a_bipolar:
        return "InputSign"
    if a_bits <= LUT_MULT_MAX_BITS and w_bits <= LUT_MULT_MAX_BITS:
        return "LutMultiply"
    return "DspMultiply"  # the matrix unit packs PE pairs of these where they fit (mvu.matrix_mac)


def packs_pair(a_bits: int, w_bits: int) -> bool:
    """Whether mac.h's packed_pair computes two a x w products in one DSP48E2: the packed
    weights ``w1 * 2^K + w0`` (``a_bits + 2 * w_bits + 1`` bits) on the 27-bit port, the
    activation on the 18-bit one."""
    return a_bits + 2 * w_bits + 1 <= DSP_A_BITS and a_bits <= DSP_B_BITS


def mac_resources(m: Mac) -> Resources:
    """``m.count`` products of kind ``m.kind``: a sign (XNOR, conditional negation) is one LUT
    per bit of the other operand; LUT products an array multiplier; DSPs in tiles. Each
    product's operands are registered (``a_bits + w_bits`` FFs) except in DSPs (their A/B
    registers); an XNOR costs no LUT of its own: synthesis merges it into the popcount's
    first compressor level (:func:`popcount`)."""
    if m.kind == "DspMultiply":
        return Resources(dsp=m.count * dsp_tiles(m.a_bits, m.w_bits))
    if m.kind == "DspPacked":  # count / 2 pairs: a DSP, the packing adder and the correction adder each
        pairs = ceil_div(m.count, 2)
        k = m.a_bits + m.w_bits
        return Resources(dsp=pairs, lut=pairs * (m.w_bits + 1 + k), ff=pairs * k)
    if m.kind == "XnorPopcount":
        return Resources(ff=m.count * (m.a_bits + m.w_bits))
    if m.kind == "SignSelect":
        luts = m.a_bits
    elif m.kind == "InputSign":
        luts = m.w_bits
    else:
        luts = lut_multiplier(m.a_bits, m.w_bits)
    return Resources(lut=m.count * luts, ff=m.count * (m.a_bits + m.w_bits))


def memory_resources(m: Memory) -> Resources:
    return (rom(m.width, m.depth) if m.kind == "rom" else ram(m.width, m.depth)) * m.count


def price(h: Hardware) -> Cost:
    """The cost of a layer's hardware description: every part priced by the primitives here."""
    res = h.logic
    for m in h.macs:
        res = res + mac_resources(m)
    for mem in h.memories:
        res = res + memory_resources(mem)
    for f in h.fifos:
        res = res + fifo(f.width, f.depth)
    return Cost(cycles=h.cycles, depth=h.depth, resources=res, multipliers=h.multipliers)


def lut_multiplier(a_bits: int, w_bits: int) -> int:
    """LUTs of one a x b product in the fabric.

    A 1-bit operand: one LUT per bit of the other (AND gates, conditional negation, or one
    XNOR for two bipolar bits). Otherwise an array multiplier whose rows are added on the
    CARRY8 chain: each LUT6 forms a partial-product bit and its sum bit, so b - 1 adders
    of a + 1 bits (a >= b): 4 x 4 -> 15, 3 x 3 -> 8, 2 x 2 -> 3 LUTs.
    """
    a, b = max(a_bits, w_bits), min(a_bits, w_bits)
    if b <= 1:
        return a
    return (b - 1) * (a + 1)


def fabric_multiplier(a_bits: int, b_bits: int) -> Resources:
    """One wide a x b product bound to the fabric (requant.h's FabricProduct), pipelined in
    :data:`FABRIC_MUL_LATENCY` stages.

    LUTs: the array multiplier of :func:`lut_multiplier`, ``(b - 1) * (a + 1)`` for b <= a:
    each row adds one partial product (a LUT6 forms ``x_i & y_j`` and its sum bit with the
    running sum, UG574) on the CARRY8 chain, which adds two operands. Not the ``~a * b / 2``
    of hand-built multipliers that fold two partial-product bits into one LUT6 and add
    three rows at once: this model does not assume synthesis finds them (an upper bound,
    checked by no calibration design yet). FFs: each stage registers the running sum (``a + b``
    bits) and the operand bits its rows have yet to consume (at most ``a + b``).
    """
    return Resources(lut=lut_multiplier(a_bits, b_bits), ff=FABRIC_MUL_LATENCY * 2 * (a_bits + b_bits))


def dsp_tiles(a_bits: int, b_bits: int) -> int:
    """DSP48E2s for one a x b two's-complement product: 26 x 17-bit magnitude tiles."""
    hi, lo = max(a_bits, b_bits), min(a_bits, b_bits)
    return max(1, ceil_div(max(hi - 1, 1), DSP_A_BITS - 1)) * max(1, ceil_div(max(lo - 1, 1), DSP_B_BITS - 1))


@functools.lru_cache(maxsize=65536)
def adder_tree(inputs: int, bits: int) -> Resources:
    """A registered binary adder tree summing ``inputs`` values of ``bits`` bits.

    Level by level, pairs are added by ripple adders on the carry chain (one LUT and one
    FF per result bit); each level's results are one bit wider.
    """
    luts, width, count = 0, bits, inputs
    while count > 1:
        pairs = count // 2
        width += 1
        luts += pairs * width
        count -= pairs
    return Resources(lut=luts, ff=luts)


#: the first level of a popcount: a LUT6 takes three (activation, weight) bit pairs, XNORs
#: them and counts the matches, two LUTs for the two bits of the 0..3 count (UG574: LUT6 is
#: any function of six inputs)
POPCOUNT_GROUP = 3
POPCOUNT_GROUP_LUTS = 2


@functools.lru_cache(maxsize=65536)
def popcount(lanes: int) -> Resources:
    """The XNOR-popcount of ``lanes`` bipolar products (their sum is ``2 * matches - lanes``).

    A compressor tree, not a tree of products: the first level counts matches in groups of
    three (XNOR merged, :data:`POPCOUNT_GROUP_LUTS` LUTs per group), then the 2-bit counts
    are added by a ripple adder tree on the carry chain (one LUT per result bit). Every level
    is registered, as HLS pipelines it (BNN-PYNQ's published designs have more FFs than
    LUTs: pipeline registers at every level).
    """
    if lanes <= 0:
        return NONE
    groups = ceil_div(lanes, POPCOUNT_GROUP)
    tree = adder_tree(groups, 2)
    return Resources(lut=groups * POPCOUNT_GROUP_LUTS + tree.lut, ff=2 * groups + tree.ff)


def tree_levels(inputs: int) -> int:
    return max(0, math.ceil(math.log2(inputs))) if inputs > 1 else 0


def adder(bits: int) -> Resources:
    """A registered ripple-carry adder or accumulator: one LUT and one FF per bit."""
    return Resources(lut=bits, ff=bits)


def comparator_luts(bits: int) -> int:
    """A >= comparator of two ``bits``-bit numbers on the carry chain: two bits per LUT6."""
    return ceil_div(bits, 2)


def mux_luts(inputs: int, bits: int) -> int:
    """A ``inputs``:1 multiplexer of ``bits``-bit words: a tree of LUT6s, each a 4:1 mux
    of one bit (UG574: a LUT6 is any function of six inputs), ``ceil((inputs - 1) / 3)``
    per bit; one input is wiring."""
    return bits * ceil_div(max(inputs - 1, 0), 3)


def const_multiplier_luts(m: int, bits: int) -> int:
    """x * m for a constant m by shift-and-add: one adder of ``bits + bitlen(m)`` bits per
    extra set bit of |m| (a power of two is wiring); a negative m adds a negation."""
    mag = abs(int(m))
    adders = max(bin(mag).count("1") - 1, 0)
    luts = adders * (bits + mag.bit_length())
    if m < 0:
        luts += bits + mag.bit_length()
    return luts


@functools.lru_cache(maxsize=65536)
def gearbox(in_bits: int, out_bits: int) -> Resources:
    """streams.h's width converter (this model's estimate, not a vendor figure).

    When one width is a multiple K of the other it selects slices: widening writes each
    input word into one of K slots of the output register (a 2:1 keep-or-take per output
    bit), narrowing holds the input word and picks one of its K slices (a K:1 mux per output
    bit, four data inputs per LUT6). Otherwise an ``in + out``-bit buffer register and the
    shifters that insert a word at a variable position and drop the one written (one LUT
    per bit per shift stage, the stages a barrel shifter over the words needs).
    """
    width = in_bits + out_bits
    counters = 2 * max(1, math.ceil(math.log2(width + 1)))
    if out_bits % in_bits == 0:
        return Resources(lut=out_bits + counters, ff=out_bits + counters)
    if in_bits % out_bits == 0:
        k = in_bits // out_bits
        return Resources(lut=out_bits * ceil_div(k, 4) + counters, ff=width + counters)
    stages = max(1, math.ceil(math.log2(max(in_bits, out_bits) // max(min(in_bits, out_bits), 1) + 1)))
    return Resources(lut=width * stages + counters, ff=width + counters)


#: streams.h's gearbox: one pipelined iteration from its first word in to its first word out
GEARBOX_LATENCY = 1


#: swg.h computes window coordinates in C ``int``s (32 bits)
SWG_INDEX_BITS = 32


def window_generator(word_bits: int, buffer_words: int, pixels: int = 1, taps: int = 1, banks: int = 1) -> Resources:
    """swg.h's sliding-window generator, beside its line buffer (priced as a Memory): the
    padding select (``inside ? row : pad``, one LUT per output word bit) and the output
    register; the input coordinates ``iy`` and, per pixel of a group or tap of a word,
    ``ix`` (32-bit adders, registered) and their bounds comparisons; the line-buffer address
    ``(slot * W + x) * CF + cf`` (two adders of the address width, registered) per pixel, or
    per bank when tap-parallel, which adds the banks' position counters and a ``banks``-to-1
    select per tap bit (a LUT6 muxes four); the read and emission counters of its one
    pipelined loop, each :data:`KERNEL_CONTROL`, and what schedules them: the read limit
    and the emitted row's last input row (two 32-bit adders, registered) and the row read
    compared with both and with the image height. The line-buffer slots are wrapping counters
    of a few bits (no ``% ROWS`` divider, no DSP; calibration.DSP_PER_WINDOW adds none).
    ``word_bits``: one pixel's (one tap's) word; ``pixels``: pixels emitted per cycle;
    ``taps``: taps per word, read from ``banks`` banks."""
    addr = max(1, (max(buffer_words, 1) - 1).bit_length())
    idx = SWG_INDEX_BITS
    out_bits = word_bits * pixels * taps
    reads = pixels * taps
    addresses = banks if taps > 1 else pixels
    lut = out_bits + (1 + reads) * idx + (2 + 2 * reads) * comparator_luts(idx) + 2 * addr * addresses
    ff = out_bits + (1 + reads) * idx + addr * addresses
    lut += 2 * idx + 3 * comparator_luts(idx)  # the schedule: read limit, last row needed, their comparisons
    ff += 2 * idx
    if taps > 1:
        lut += out_bits * ceil_div(banks - 1, 3) + 2 * idx
        ff += 2 * idx
    return Resources(lut=lut, ff=ff) + KERNEL_CONTROL * 2


def bypass_fifo_depth(extra_elems: int, lanes: int, frame_words: int) -> int:
    """Depth (words of ``lanes`` elements) of a layer's input FIFO that must hold
    ``extra_elems`` elements while the other input's branch fills its windows (the stream
    plumbing's arrival model, accelgen.kernels.streams). Twice the modelled need, since a
    window generator delivers its rows in bursts rather than at the average rate, plus the
    default depth; never more than a whole frame plus the default (which cannot deadlock)."""
    if extra_elems <= 0:
        return STREAM_FIFO_DEPTH
    return min(STREAM_FIFO_DEPTH + ceil_div(2 * extra_elems, lanes), frame_words + STREAM_FIFO_DEPTH)


def input_fifos(in_bits: tuple[int, ...], in_elems: tuple[int, ...], bypass: tuple[int, ...],
                words: tuple[int, ...]) -> tuple[Fifo, ...]:  # fmt: skip
    """The FIFO in front of each input: ``words[i]`` elements per word, the stream's default
    depth, deeper by :func:`bypass_fifo_depth` where the stream plumbing asks (residual forks)."""
    out = []
    for i, (bits, n, word) in enumerate(zip(in_bits, in_elems, words)):
        extra = bypass[i] if i < len(bypass) else 0
        out.append(Fifo(f"input{i}", bits * word, bypass_fifo_depth(extra, word, ceil_div(n, word))))
    return tuple(out)
