"""The cost model prices exactly what code generation instantiates (issue: one definition
per layer type).

Over random configurations of every kernel (bit widths incl. bipolar and zero points, shapes,
kernels, strides, padding, dilation, groups, foldings, residual forks and concatenations), the
generated design (accelgen.codegen.connect.build_design: the fields the HLS templates render) is
read back here into multipliers, memories, FIFOs and loop trip counts, independently of the
kernel modules, and compared with the kernel's own description (``kernel.hardware(spec, fold)``)
that the explorer prices.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from accelgen import ir
from accelgen.codegen.connect import build_design
from accelgen.errors import InputError
from accelgen.kernels import conv, kernel_for, plumbing
from accelgen.kernels.base import divisors, simd_values
from accelgen.kernels.streams import layer_specs
from accelgen.plan import FoldingPlan, LayerFold

MVU_FUNCTIONS = ("mvau", "vvau", "tt_step")


# -- what the generated design instantiates, read from the template fields ---------------------


def _bits(code: dict) -> int:
    return code["bits"]


def instantiated(design, block) -> dict:
    """Multipliers, memories, FIFOs and cycles of one layer's generated kernels."""
    streams = {s.name: s for s in design.streams}
    kernels = [k for k in design.kernels if k in block.kernels]
    macs, memories, fifos, trips, requantizers, gearboxes, converting = [], [], [], [], [], [], []
    swg = None
    for k in kernels:
        f = k.fields
        fifos += [(streams[n].bits, streams[n].depth) for n in k.inputs]
        if k.function in MVU_FUNCTIONS:
            a_bits = 1 if f["in_code"]["bipolar"] else _bits(f["centred"])
            group = f.get("pixels_per_cycle", 1)  # the matrix unit's pixels side by side
            lanes, w_bits = f["simd"] * group, _bits(f["weight_code"])
            if f["mac"] == "DspPacked":  # mvau.h: PE pairs share a DSP, an odd last PE multiplies alone
                macs.append(("DspPacked", 2 * (f["pe"] // 2) * lanes, a_bits, w_bits))
                if f["pe"] % 2:
                    macs.append(("DspMultiply", lanes, a_bits, w_bits))
            else:
                macs.append((f["mac"], f["pe"] * lanes, a_bits, w_bits))
            memories.append(("weights", "rom", f["simd"] * _bits(f["weight_code"]), f["tiles"], f["pe"]))
        if k.function in ("mvau", "vvau"):  # mvau.h: REQUANT_LANES requantizers for the word's lanes
            word_lanes, units = f["pe"] * f.get("pixels_per_cycle", 1), f["requant_lanes"]
            kind = {"pass_through": "none"}.get(f["requant"]["kind"], f["requant"]["kind"])
            requantizers.append((kind, word_lanes, units, f["requant"].get("product", "dsp")))
            folds = f["matrix_h"] // f["pe"] if k.function == "mvau" else f["channels"] // f["pe"]
            if units < word_lanes:  # SharedRequant: ceil(lanes / units) steps within a word's SF cycles
                assert -(-word_lanes // units) <= f["tiles"] // folds
        if k.function == "mvau":
            sf, nf = f["matrix_w"] // f["simd"], f["matrix_h"] // f["pe"]
            if nf > 1:
                memories.append(("input_vector", "ram", f["simd"] * _bits(f["in_code"]), sf, 1))
            trips.append(f["pixels"] // f["pixels_per_cycle"] * f["tiles"])
        elif k.function == "vvau":
            trips.append(f["pixels"] * f["tiles"])
        elif k.function == "sliding_window":
            cf = f["channels"] // f["lanes"]
            rows = (f["kh"] - 1) * f["dh"] + 1 + f["sh"]  # swg.h's BUFFER_ROWS: a window's rows and SH more
            group, taps = f["pixels_per_cycle"], f["taps_per_word"]
            # swg.h: x partitioned cyclically by PPC * SW (pixels per cycle) or COLS * DW (COLS taps of a
            # kernel row per word), row slots each their own memory when a word takes several kernel rows
            cols = min(taps, f["kw"])
            banks = group * f["sw"] if group > 1 else cols * f["dw"] if cols > 1 else 1
            slots = rows if taps > f["kw"] else 1
            depth = rows // slots * -(-f["in_w"] // banks) * cf
            memories.append(("line_buffer", "ram", f["lanes"] * _bits(f["code"]), depth, banks * slots))
            swg = f
        elif k.function == "global_pool":
            groups = f["channels"] // f["pe"]
            if groups >= 4:  # pool.h: a RAM from GLOBAL_POOL_RAM_GROUPS groups up, else a shift register
                memories.append(("accumulators", "ram", f["pe"] * _bits(f["acc"]), groups, 1))
            trips.append(f["pixels"] * groups + groups)
        elif k.function == "window_pool":
            trips.append(f["pixels"] * (f["channels"] // f["pe"]) * f["kernel"])
        elif k.function in ("add", "requantize"):
            trips.append(f["pixels"] * (f["channels"] // f["pe"]))
            kind = {"pass_through": "none"}.get(f["requant"]["kind"], f["requant"]["kind"])  # one per lane
            requantizers.append((kind, f["pe"], f["pe"], f["requant"].get("product", "dsp")))
        elif k.function == "upsample_nearest":
            if f["in_w"] * f["fw"] > 1:  # rows of one pixel repeat from the shift register alone
                memories.append(("line_buffer", "ram", f["word_bits"], f["in_w"] * f["words_per_pixel"], 1))
            trips.append(f["in_h"] * f["fh"] * f["in_w"] * f["fw"] * f["words_per_pixel"])
        elif k.function == "concat":
            trips.append(f["pixels"] * (f["a_words"] + f["b_words"]))
        elif k.function == "gearbox":  # inside a layer: tap words (depthwise), simd words (conv), padded lanes dropped per pixel
            gearboxes.append((f["in_bits"], f["out_bits"]))
            converting.append(k.frames * gearbox_iterations(f))
    busy = max(trips, default=0)
    cycles = swg_iterations(swg, busy) if swg else busy
    assert all(n <= cycles for n in converting), f"a gearbox takes {converting} cycles, the layer {cycles}"
    return {"macs": Counter(macs), "memories": Counter(memories), "fifos": Counter(fifos), "cycles": cycles,
            "requantizers": Counter(requantizers), "gearboxes": Counter(gearboxes)}  # fmt: skip


def gearbox_iterations(f: dict) -> int:
    """streams.h gearbox's loop run from its template fields, one frame: each iteration reads
    a word while fewer than an output word's bits are held (and input is left) and writes one
    when a word's bits are held or the input is exhausted (gearbox_widen / gearbox_narrow take
    the same iterations)."""
    have = nin = nout = i = 0
    while nout < f["out_words"]:
        if have < f["out_bits"] and nin < f["in_words"]:
            have, nin = have + f["in_bits"], nin + 1
        if have >= f["out_bits"] or nin == f["in_words"]:
            have, nout = max(have - f["out_bits"], 0), nout + 1
        i += 1
    return i


def swg_iterations(f: dict, busy: int) -> int:
    """swg.h's sample loop run word by word from its template fields: each iteration reads
    a word if its row's slot is free (the row below the emitted output row's top + BUFFER_ROWS,
    any row once all are emitted) and emits one if every input row the output row needs is
    in; the unit reading the windows (``busy`` cycles a frame) holds each output row for
    ``busy / OUT_H`` cycles when slower than its emissions."""
    cf = f["channels"] // f["lanes"]
    extent = (f["kh"] - 1) * f["dh"] + 1
    rows, ih, oh = extent + f["sh"], f["in_h"], f["out_h"]
    row_words = f["in_w"] * cf
    emits = f["out_w"] // f["pixels_per_cycle"] * f["kh"] * f["kw"] // f["taps_per_word"] * cf
    hold = max(emits, busy // oh)
    read, oy, emitted, i = 0, 0, 0, 0  # words read, output row, its cycles so far, iterations
    while read < ih * row_words or oy < oh:
        top = oy * f["sh"] - f["pad_t"]
        done_rows = read // row_words
        can_read = read < ih * row_words and (oy == oh or done_rows < top + rows)
        can_emit = oy < oh and done_rows > min(top + extent - 1, ih - 1)
        read += can_read
        if can_emit:
            emitted += 1
            if emitted == hold:
                oy, emitted = oy + 1, 0
        i += 1
    return i


def priced(hardware, tt: bool = False) -> dict:
    memories = [(m.role, m.kind, m.width, m.depth, m.count) for m in hardware.memories]
    if tt:  # the TT state and reorder buffers live inside tt.h's step; compare the weight ROMs
        memories = [m for m in memories if m[0] == "weights"]
    return {
        "macs": Counter((m.kind, m.count, m.a_bits, m.w_bits) for m in hardware.macs),
        "memories": Counter(memories),
        "fifos": Counter((f.width, f.depth) for f in hardware.fifos),
        "cycles": hardware.cycles,
        "requantizers": Counter((r.kind, r.lanes, r.units, r.product) for r in hardware.requantizers),
        "gearboxes": Counter(hardware.gearboxes),
    }


def generated_plumbing(design) -> dict:
    """The kernels outside every layer's block (forks, width converters, AXI-Stream adapters)
    and the streams they read, read from the generated design's template fields."""
    streams = {s.name: s for s in design.streams}
    layer_kernels = {id(k) for b in design.blocks if b.op is not None for k in b.kernels}
    kinds: Counter = Counter()
    fifos: Counter = Counter()
    for k in design.kernels:
        if id(k) in layer_kernels:
            continue
        f = k.fields
        if k.function == "gearbox":
            kinds[("gearbox", f["in_bits"], f["out_bits"])] += 1
        elif k.function == "duplicate":
            kinds[("duplicate", f["word_bits"])] += 1
        elif k.function in ("axis_read", "axis_write"):
            kinds[(k.function, f["bus"], f["field_bits"])] += 1
        else:
            raise AssertionError(f"unexpected plumbing kernel {k.function}")
        fifos.update((streams[n].bits, streams[n].depth) for n in k.inputs if n in streams)
    return {"kernels": kinds, "fifos": fifos}


def priced_plumbing(p) -> dict:
    kinds = Counter(("gearbox", a, b) for a, b in p.gearboxes)
    kinds.update(("duplicate", w) for w in p.duplicates)
    kinds.update(("axis_read", bus, f) for bus, f in p.reads)
    kinds.update(("axis_write", bus, f) for bus, f in p.writes)
    return {"kernels": kinds, "fifos": Counter((f.width, f.depth) for f in p.fifos)}


def check_design(graph: ir.Graph, plan: FoldingPlan, bus_bits: int = 64) -> int:
    """Every layer of ``graph`` under ``plan``: generated == priced, and the plumbing around
    them too. Returns the layers checked."""
    design = build_design(graph, plan, top="t", bus_bits=bus_bits)
    specs = layer_specs(graph)
    predicted = plumbing.plumbing(graph, specs, plan.layers, bus_bits)
    assert generated_plumbing(design) == priced_plumbing(predicted)
    checked = 0
    for block in design.blocks:
        if block.op is None:
            continue
        kernel = kernel_for(block.op)
        hardware = kernel.hardware(specs[block.op.name], plan.fold(block.op.name))
        got, want = instantiated(design, block), priced(hardware, tt=isinstance(block.op, ir.TTDense))
        if isinstance(block.op, ir.TTDense):
            got.pop("cycles"), want.pop("cycles")
        assert got == want, f"{block.op.name}: generated {got} but priced {want}"
        checked += 1
    return checked


# -- random layers ------------------------------------------------------------------------------


def random_qtype(rng, *, allow_bipolar: bool = True, weights: bool = False) -> ir.QType:
    if allow_bipolar and rng.random() < 0.15:
        return ir.QType(1, True, bipolar=True)
    bits = int(rng.integers(1 if not weights else 2, 9))
    signed = bool(rng.random() < 0.5) if bits > 1 else False
    q = ir.QType(bits, signed)
    if not weights and not signed and rng.random() < 0.4:
        q = ir.QType(bits, False, zero_point=(int(rng.integers(q.qmin, q.qmax + 1)),))
    return q


def codes(name: str, shape: tuple, q: ir.QType) -> ir.Tensor:
    return ir.Tensor(name, (None, *shape), "codes", q, "NHWC" if len(shape) == 3 else "")


def random_weights(rng, shape, q: ir.QType) -> np.ndarray:
    if q.bipolar:
        return rng.choice([-1, 1], size=shape).astype(np.int64)
    return rng.integers(q.qmin, q.qmax + 1, size=shape).astype(np.int64)


def mul_shift(rng, channels: int, out: ir.QType) -> ir.MultiplyShift:
    m = rng.integers(1, 4000, channels).astype(np.int64)
    return ir.MultiplyShift(m, rng.integers(-50, 50, channels).astype(np.int64), 16, np.full(channels, out.qmin),
                            np.full(channels, out.qmax), np.ones(channels, np.int64))  # fmt: skip


def random_fold(rng, legal: dict) -> LayerFold:
    """A legal folding; for a window kernel, several pixels per cycle a third of the time
    (at a ``pixels_simd``), and a tap-parallel ``simd`` (beyond ``pixels_simd``) 60% of the
    rest (where there is one), a ``simd`` that pads the last word (no divisor of the
    reduction) a quarter (where there is one); a ``pe`` with its own ``simd`` values (``simd_at_pe``: a
    depthwise layer at every channel, tap words) half the time; a multiply-shift
    requantizer's product in DSPs or in the fabric (``requant``) by the parity of the shape
    drawn (no extra draw: the shapes other checks count stay those of their seeds)."""
    fold = _random_shape(rng, legal)
    products = legal.get("requant", ["dsp"])
    return dataclasses.replace(fold, requant=products[(fold.pe + fold.simd + fold.pixels) % len(products)])


def _random_shape(rng, legal: dict) -> LayerFold:
    pixels = [p for p in legal.get("pixels", [1]) if p > 1]
    pixels_simd = legal.get("pixels_simd", legal["simd"])
    if pixels and rng.random() < 0.35:
        return LayerFold(legal["pixels_pe"], int(rng.choice(pixels_simd)), pixels=int(rng.choice(pixels)))
    at_pe = legal.get("simd_at_pe", {})
    pe = int(rng.choice(list(at_pe))) if at_pe and rng.random() < 0.5 else int(rng.choice(legal["pe"]))
    simds = simd_values(legal, pe)
    whole = [s for s in simds if max(simds) % s == 0]  # divisors of the reduction (the largest simd)
    taps, padded = [s for s in whole if s not in pixels_simd], [s for s in simds if s not in whole]
    draw = rng.random()  # one draw, as before padded simd: the other shapes keep their seeds' odds
    simd = rng.choice(taps) if taps and draw < 0.6 else rng.choice(padded) if padded and draw < 0.85 else rng.choice(whole)
    return LayerFold(pe, int(simd))


def plan_for(rng, graph: ir.Graph) -> FoldingPlan:
    specs = layer_specs(graph)
    folds = {}
    for op in graph.integer_ops():
        folds[op.name] = random_fold(rng, kernel_for(op).legal(specs[op.name]))
    return FoldingPlan(folds)


def conv_shape(rng) -> dict:
    k = int(rng.integers(1, 4))
    return {
        "kernel": (k, int(rng.integers(1, 4))),
        "strides": (int(rng.integers(1, 3)), int(rng.integers(1, 3))),
        "pads": tuple(int(rng.integers(0, 2)) for _ in range(4)),
        "dilations": (int(rng.integers(1, 3)), int(rng.integers(1, 3))),
    }


def out_hw(h: int, w: int, kernel, strides, pads, dilations=(1, 1)) -> tuple[int, int]:
    eh, ew = (kernel[0] - 1) * dilations[0] + 1, (kernel[1] - 1) * dilations[1] + 1
    return (h + pads[0] + pads[2] - eh) // strides[0] + 1, (w + pads[1] + pads[3] - ew) // strides[1] + 1


def random_dense(rng) -> ir.Graph:
    n_in, n_out = int(rng.choice([3, 8, 12, 16, 30])), int(rng.choice([2, 4, 6, 10, 16]))
    xq, wq, yq = random_qtype(rng), random_qtype(rng, weights=True), ir.QType(8, False)
    op = ir.Dense("fc", ("x",), ("y",), weights=random_weights(rng, (n_out, n_in), wq), w_qtype=wq,
                  requant=mul_shift(rng, n_out, yq))  # fmt: skip
    return ir.Graph("t", {"x": codes("x", (n_in,), xq), "y": codes("y", (n_out,), yq)}, [op], ["x"], ["y"])


def random_conv(rng, channels=(1, 2, 3, 4, 6, 8), kinds=("dense", "depthwise", "grouped")) -> ir.Graph:
    h, w = int(rng.integers(3, 9)), int(rng.integers(3, 9))
    ic = int(rng.choice(list(channels)))
    kind = rng.choice(list(kinds))
    groups = ic if kind == "depthwise" else (int(rng.choice(divisors(ic))) if kind == "grouped" else 1)
    oc = ic if kind == "depthwise" else groups * int(rng.integers(1, 4))
    shape = conv_shape(rng)
    oh, ow = out_hw(h, w, **shape)
    if oh < 1 or ow < 1:
        shape = {"kernel": (1, 1), "strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1)}
        oh, ow = h, w
    xq, wq, yq = random_qtype(rng), random_qtype(rng, weights=True), ir.QType(8, True)
    weights = random_weights(rng, (oc, ic // groups, *shape["kernel"]), wq)
    op = ir.Conv("conv", ("x",), ("y",), weights=weights, w_qtype=wq, groups=groups, strides=shape["strides"],
                 pads=shape["pads"], dilations=shape["dilations"], requant=mul_shift(rng, oc, yq))  # fmt: skip
    tensors = {"x": codes("x", (h, w, ic), xq), "y": codes("y", (oh, ow, oc), yq)}
    return ir.Graph("t", tensors, [op], ["x"], ["y"])


def random_pool(rng) -> ir.Graph:
    h, w, c = int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.choice([1, 2, 4, 6]))
    xq = ir.QType(int(rng.integers(2, 9)), bool(rng.random() < 0.5))
    if rng.random() < 0.3:
        kernel, strides, pads = (h, w), (1, 1), (0, 0, 0, 0)
    else:
        k = int(rng.integers(2, 4))
        kernel, strides = (min(k, h), min(k, w)), (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pads = (0, 0, 0, 0) if rng.random() < 0.5 else (1, 1, 1, 1) if min(kernel) > 1 else (0, 0, 0, 0)
    oh, ow = out_hw(h, w, kernel, strides, pads)
    if rng.random() < 0.5:
        op = ir.MaxPool("pool", ("x",), ("y",), kernel=kernel, strides=strides, pads=pads)
        yq = xq
    else:
        yq = ir.QType(8, True)
        op = ir.AvgPool("pool", ("x",), ("y",), kernel=kernel, strides=strides, pads=pads,
                        requant=mul_shift(rng, 1, yq))  # fmt: skip
    tensors = {"x": codes("x", (h, w, c), xq), "y": codes("y", (oh, ow, c), yq)}
    return ir.Graph("t", tensors, [op], ["x"], ["y"])


def random_residual(rng) -> ir.Graph:
    """x -> conv (3x3, pad 1) -> conv -> add(x, .) or concat(x, .): a fork with a bypass FIFO."""
    h, w, c = int(rng.integers(3, 7)), int(rng.integers(3, 7)), int(rng.choice([2, 4, 5]))
    q = ir.QType(8, True)
    ops = []
    for i, (src, dst) in enumerate((("x", "t1"), ("t1", "t2"))):
        weights = random_weights(rng, (c, c, 3, 3), ir.QType(4, True))
        ops.append(ir.Conv(f"conv{i}", (src,), (dst,), weights=weights, w_qtype=ir.QType(4, True), pads=(1, 1, 1, 1),
                           requant=mul_shift(rng, c, q)))  # fmt: skip
    out_c = c
    if rng.random() < 0.5:
        ops.append(ir.Add("join", ("x", "t2"), ("y",), input_multipliers=(1, int(rng.integers(1, 4))),
                          requant=mul_shift(rng, c, q)))  # fmt: skip
    else:
        ops.append(ir.Concat("join", ("x", "t2"), ("y",), axis=-1))
        out_c = 2 * c
    tensors = {n: codes(n, (h, w, c), q) for n in ("x", "t1", "t2")}
    tensors["y"] = codes("y", (h, w, out_c), q)
    return ir.Graph("t", tensors, ops, ["x"], ["y"])


def random_resize(rng) -> ir.Graph:
    h, w, c = int(rng.integers(1, 7)), int(rng.integers(1, 7)), int(rng.choice([1, 2, 3, 4, 8]))
    fh, fw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    q = random_qtype(rng)
    op = ir.Resize("up", ("x",), ("y",), factors=(fh, fw))
    tensors = {"x": codes("x", (h, w, c), q), "y": codes("y", (h * fh, w * fw, c), q)}
    return ir.Graph("t", tensors, [op], ["x"], ["y"])


def random_requantize(rng) -> ir.Graph:
    h, w, c = int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.choice([1, 2, 3, 4, 8]))
    xq, yq = random_qtype(rng, allow_bipolar=False), ir.QType(int(rng.integers(2, 9)), True)
    op = ir.Requantize("rq", ("x",), ("y",), requant=mul_shift(rng, c, yq))
    tensors = {"x": codes("x", (h, w, c), xq), "y": codes("y", (h, w, c), yq)}
    return ir.Graph("t", tensors, [op], ["x"], ["y"])


def random_chain(rng) -> ir.Graph:
    """Two to four dense layers: differently folded neighbours read through width converters,
    and the last hidden tensor sometimes also a second output (a fork to an output port)."""
    widths = [int(rng.choice([4, 6, 8, 12, 16])) for _ in range(int(rng.integers(3, 6)))]
    qs = [random_qtype(rng, allow_bipolar=False) for _ in widths[:-1]] + [ir.QType(8, False)]
    tensors, ops = {}, []
    for i, (n, q) in enumerate(zip(widths, qs)):
        tensors[f"t{i}"] = codes(f"t{i}", (n,), q)
    for i in range(len(widths) - 1):
        wq = random_qtype(rng, weights=True)
        ops.append(ir.Dense(f"fc{i}", (f"t{i}",), (f"t{i + 1}",), weights=random_weights(rng, (widths[i + 1], widths[i]), wq),
                            w_qtype=wq, requant=mul_shift(rng, widths[i + 1], qs[i + 1])))  # fmt: skip
    outputs = [f"t{len(widths) - 1}"]
    if len(widths) > 3 and rng.random() < 0.5:
        outputs.insert(0, f"t{len(widths) - 2}")
    return ir.Graph("t", tensors, ops, ["t0"], outputs)


GENERATORS = {
    "chain": random_chain, "conv": random_conv, "dense": random_dense, "pool": random_pool,
    # depthwise convolutions of channel counts with padded folds below every channel (pe = ceil(C / n))
    "depthwise": lambda rng: random_conv(rng, channels=(3, 5, 7, 10, 12), kinds=("depthwise",)),
    "requantize": random_requantize, "residual": random_residual, "resize": random_resize,
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_the_cost_model_prices_what_codegen_instantiates(kind):
    rng = np.random.default_rng(sum(map(ord, kind)))
    checked = grouped = tapped = rowed = dw_tapped = dw_rowed = padded = dw_padded = geared = padded_simd = 0
    for _ in range(80):
        graph = GENERATORS[kind](rng)
        plan = plan_for(rng, graph)
        try:
            checked += check_design(graph, plan, bus_bits=int(rng.choice([16, 32, 64])))
            grouped += sum(f.pixels > 1 for f in plan.layers.values())
            tapped += sum(tap_parallel(graph, op, plan.fold(op.name)) for op in graph.integer_ops())
            rowed += sum(tap_parallel(graph, op, plan.fold(op.name), rows=True) for op in graph.integer_ops())
            dw_tapped += sum(depthwise_taps(graph, op, plan.fold(op.name)) for op in graph.integer_ops())
            dw_rowed += sum(depthwise_taps(graph, op, plan.fold(op.name), rows=True) for op in graph.integer_ops())
            padded += sum(padded_fold(graph, op, plan.fold(op.name)) for op in graph.integer_ops())
            dw_padded += sum(padded_fold(graph, op, plan.fold(op.name), depthwise=True) for op in graph.integer_ops())
            geared += sum(through_gearbox(graph, op, plan.fold(op.name)) for op in graph.integer_ops())
            padded_simd += sum(padded_words(graph, op, plan.fold(op.name)) for op in graph.integer_ops())
        except InputError as e:  # a configuration the hardware refuses (e.g. padding a bipolar input)
            assert "bipolar" in str(e)
    assert checked >= 40
    if kind in ("conv", "pool", "residual"):  # window kernels: several pixels per cycle checked too
        assert grouped >= 5
    if kind in ("conv", "residual"):  # dense convolutions: several taps a word checked too
        assert tapped >= 5 and rowed >= 5
        assert geared >= 3  # and at a simd that is no window word: through a gearbox
    if kind == "conv":  # depthwise convolutions at every channel: several taps a word, whole rows too
        assert dw_tapped >= 5 and dw_rowed >= 3
    if kind == "depthwise":  # below every channel at a pe that pads the last fold
        assert dw_padded >= 5
    if kind in ("chain", "conv", "dense", "residual"):  # matrix units whose pe does not divide the channels
        assert padded >= (3 if kind == "conv" else 5)
        assert padded_simd >= 5  # and whose simd does not divide the reduction: its last word padded


def padded_words(graph: ir.Graph, op: ir.Op, fold: LayerFold) -> bool:
    """A dense layer or convolution (not depthwise) whose ``simd`` does not divide its
    reduction (in_features; KH*KW*IC): the last word of each reduction padded."""
    if isinstance(op, ir.Dense):
        return int(op.weights.shape[1]) % fold.simd != 0
    if not isinstance(op, ir.Conv) or conv.is_depthwise(op):
        return False
    ic, (kh, kw) = graph.tensors[op.inputs[0]].shape[-1], (int(d) for d in op.weights.shape[2:])
    return (kh * kw * ic) % fold.simd != 0


def padded_fold(graph: ir.Graph, op: ir.Op, fold: LayerFold, depthwise: bool = False) -> bool:
    """A dense layer or convolution (not depthwise; ``depthwise``: a depthwise convolution)
    whose ``pe`` does not divide its output channels."""
    if depthwise:
        return isinstance(op, ir.Conv) and conv.is_depthwise(op) and int(op.weights.shape[0]) % fold.pe != 0
    matrix = isinstance(op, ir.Dense) or (isinstance(op, ir.Conv) and not conv.is_depthwise(op))
    return matrix and int(op.weights.shape[0]) % fold.pe != 0


def tap_parallel(graph: ir.Graph, op: ir.Op, fold: LayerFold, rows: bool = False) -> bool:
    """A dense convolution folded beyond its input channels (several kernel taps a word),
    or (``rows``) beyond a kernel row's taps (whole kernel rows a word)."""
    if not isinstance(op, ir.Conv) or op.groups != 1:
        return False
    return fold.simd > graph.tensors[op.inputs[0]].shape[-1] * (int(op.weights.shape[3]) if rows else 1)


def through_gearbox(graph: ir.Graph, op: ir.Op, fold: LayerFold) -> bool:
    """A dense convolution whose ``simd`` is neither a divisor of its input channels nor
    all of them at a tap word (a divisor of KW, or KW times a divisor of KH): the window
    generator's words reach the unit through a gearbox."""
    if not isinstance(op, ir.Conv) or op.groups != 1:
        return False
    ic, (kh, kw) = graph.tensors[op.inputs[0]].shape[-1], (int(d) for d in op.weights.shape[2:])
    tap_words = [ic * t for t in range(1, kh * kw + 1) if kw % t == 0 or (t % kw == 0 and kh % (t // kw) == 0)]
    return ic % fold.simd != 0 and fold.simd not in tap_words


def depthwise_taps(graph: ir.Graph, op: ir.Op, fold: LayerFold, rows: bool = False) -> bool:
    """A depthwise convolution at every channel with several kernel taps a word, or (``rows``)
    whole kernel rows a word."""
    if not isinstance(op, ir.Conv) or op.groups == 1 or op.groups != int(op.weights.shape[0]):
        return False
    at_all = fold.pe == graph.tensors[op.inputs[0]].shape[-1] and fold.simd > 1
    return at_all and (not rows or fold.simd > int(op.weights.shape[3]))


def test_a_tensor_train_layer_prices_its_steps_as_generated():
    from accelgen.pipeline import compile_model  # noqa: PLC0415
    from tests.tt_models import tt_model  # noqa: PLC0415

    model, _ = tt_model((4, 4, 2), (3, 2, 2), (1, 3, 2, 1), seed=3)
    graph = compile_model(model).graph
    op = next(op for op in graph.integer_ops() if isinstance(op, ir.TTDense))
    legal = kernel_for(op).legal(layer_specs(graph)[op.name])
    rng = np.random.default_rng(5)
    picks = [0, len(legal["steps"]) - 1, *rng.integers(0, len(legal["steps"]), 4)]
    for steps in (legal["steps"][i] for i in picks):
        assert check_design(graph, FoldingPlan({op.name: LayerFold(1, 1, tuple(steps))})) == 1


def test_the_check_fails_when_codegen_and_cost_disagree(monkeypatch):
    """The comparison can fail: a description priced with the wrong multiplier kind is caught."""
    from accelgen.kernels import hw  # noqa: PLC0415

    q8 = ir.QType(8, True)
    op = ir.Dense("fc", ("x",), ("y",), weights=np.ones((4, 8), np.int64), w_qtype=q8,
                  requant=mul_shift(np.random.default_rng(0), 4, ir.QType(8, False)))  # fmt: skip
    graph = ir.Graph("t", {"x": codes("x", (8,), q8), "y": codes("y", (4,), ir.QType(8, False))}, [op], ["x"], ["y"])
    with monkeypatch.context() as m:
        m.setattr(hw, "mac_kind", lambda *a: "LutMultiply")  # the cost side alone believes in LUT products
        hardware = kernel_for(op).hardware(layer_specs(graph)["fc"], LayerFold(2, 4))
    design = build_design(graph, FoldingPlan({"fc": LayerFold(2, 4)}), top="t")
    block = next(b for b in design.blocks if b.op is not None)
    assert instantiated(design, block)["macs"] == Counter({("DspPacked", 8, 8, 8): 1})  # 2 PEs: 4 pairs
    assert priced(hardware)["macs"] != instantiated(design, block)["macs"]


def test_the_explorers_overhead_is_the_plumbing_its_plan_generates():
    """End to end: the plan the explorer picks, built, instantiates exactly the plumbing the
    explorer's whole-design estimate carries (shell aside)."""
    from accelgen import dse  # noqa: PLC0415
    from accelgen.boards import get_board  # noqa: PLC0415
    from accelgen.kernels import shell  # noqa: PLC0415

    rng = np.random.default_rng(11)
    checked = 0
    for gen in (random_chain, random_residual, random_chain, random_conv):
        graph = gen(rng)
        e = dse.explore(graph, get_board("zcu104"))
        plan = e.plan()
        design = build_design(graph, plan, top="t", bus_bits=e.interface.bus_bits)
        predicted = plumbing.plumbing(graph, layer_specs(graph), plan.layers, e.interface.bus_bits)
        assert generated_plumbing(design) == priced_plumbing(predicted)
        assert e.overhead == shell.overhead("zynqmp", e.interface, predicted.resources(), shell.windows(graph))
        checked += len(predicted.gearboxes) + len(predicted.duplicates)
    assert checked >= 8  # width converters between layers and at the ports, and a fork


def test_shared_requantizers_are_read_back_and_priced():
    """A 3x3 convolution of one input channel (SF = 9) at 16 channels x 4 pixels: the 64 lanes
    share ceil(64 / 9) = 8 multiply-shift requantizers (REQUANT_LANES read from the generated
    configuration) in ceil(64 / 8) = 8 steps: no cycle more per frame, 8 more of latency, and
    56 fewer requantizer DSPs than one per lane; a cost side that believed in one per lane
    is caught."""
    from accelgen.kernels import hw, requant  # noqa: PLC0415
    from accelgen.kernels.base import Requantizers  # noqa: PLC0415

    rng = np.random.default_rng(3)
    xq, wq, yq = ir.QType(8, False), ir.QType(8, True), ir.QType(8, True)
    op = ir.Conv("conv", ("x",), ("y",), weights=random_weights(rng, (16, 1, 3, 3), wq), w_qtype=wq,
                 pads=(1, 1, 1, 1), requant=mul_shift(rng, 16, yq))  # fmt: skip
    graph = ir.Graph("t", {"x": codes("x", (8, 8, 1), xq), "y": codes("y", (8, 8, 16), yq)}, [op], ["x"], ["y"])
    fold = LayerFold(16, 1, pixels=4)
    plan = FoldingPlan({"conv": fold})
    design = build_design(graph, plan, top="t")
    block = next(b for b in design.blocks if b.op is not None)
    mvau = next(k for k in block.kernels if k.function == "mvau")
    assert (mvau.fields["requant_lanes"], mvau.fields["requant_shared"]) == (8, True)
    assert mvau.fields["requant"]["nf_store"] == 8  # one fold x 8 steps per requantizer
    assert check_design(graph, plan) == 1
    spec = layer_specs(graph)["conv"]
    shared = kernel_for(op).hardware(spec, fold)
    assert shared.requantizers == (Requantizers("multiply_shift", 64, 8),)
    ar = spec.arith
    per_lane, _ = requant.cost(ar.requant, ar.acc_bits, ar.out_bits, 16, 16, 4)
    tile = hw.dsp_tiles(ar.acc_bits, ar.requant.multiplier_bits)
    mac_dsps = sum(hw.mac_resources(m).dsp for m in shared.macs)
    assert per_lane.dsp == 64 * tile and hw.price(shared).resources.dsp == mac_dsps + 8 * tile
    with pytest.MonkeyPatch.context() as m:  # the cost side alone keeps one requantizer per lane
        m.setattr(requant, "units", lambda spec, lanes, sf, product: Requantizers(spec.kind, lanes, lanes, product))
        unshared = kernel_for(op).hardware(spec, fold)
    assert priced(unshared) != instantiated(design, block)
    assert (unshared.cycles, unshared.depth) == (shared.cycles, shared.depth - 8)
