"""Lower the integer core to a fully unrolled netlist: plain per-layer dicts for the templates.

Every tensor between layers travels as one unsigned word ``u`` per element with
``code = base + step * u`` (the count of thresholds passed, or the code minus its minimum),
so ``code - zero_point = step * u + (base - zero_point)`` and each product
``weight * (code - zero_point)`` is a constant times ``u`` plus a constant. A constant
times ``u`` is written as signed power-of-two digits (plain binary, or the non-adjacent
form when that has fewer digits); a negative digit uses ``-(u << k) = (~u << k) - const``.
Every neuron is therefore a sum of shifted copies of its inputs or their complements —
all non-negative, so the adder tree is unsigned and as narrow as its exact bounds — plus
one constant that is folded into the requantizer: into the comparator constants of
thresholds, into the offset of a multiply-shift, or added once to a raw accumulator.
Zero weights contribute no term.

Register placement: a layer's logic is a sequence of *units* (adder-tree levels, then
the requantizer); ``levels`` register stages split it into equal parts, the last one at
the layer's output. ``levels = 0`` leaves the layer combinational.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelgen import ir
from accelgen.errors import InternalError
from accelgen.rtl.core import Core

LANE_BITS = (8, 16, 32, 64)


# -- how codes travel on wires -------------------------------------------------------------------


@dataclass(frozen=True)
class Encoding:
    """code[c] = base[c] + step * u[c], u an unsigned ``bits``-wide word per element."""

    size: int
    bits: int
    base: tuple[int, ...]
    step: int

    def base_of(self, c: int) -> int:
        return self.base[c] if len(self.base) > 1 else self.base[0]


def input_encoding(t: ir.Tensor) -> Encoding:
    """The core input: two's-complement or unsigned codes become ``u = code - qmin``."""
    q = t.qtype
    size = t.elements_per_sample()
    if q.bipolar:
        return Encoding(size, 1, (-1,), 2)
    return Encoding(size, q.bits, (q.qmin,), 1)


def lane_bits_for(bits: int) -> int:
    for lane in LANE_BITS:
        if bits <= lane:
            return lane
    raise InternalError(f"no AXI-Stream lane holds {bits} bits")


# -- signed-digit products -----------------------------------------------------------------------


def signed_digits(c: int) -> list[tuple[int, int]]:
    """(shift, sign) digits with sum(sign << shift) == c: binary, or the NAF when shorter."""
    if c == 0:
        return []
    sign = 1 if c > 0 else -1
    m = abs(c)
    binary = [(k, 1) for k in range(m.bit_length()) if m >> k & 1]
    naf, k, n = [], 0, m
    while n:
        if n & 1:
            d = 2 - (n & 3)  # +1 or -1
            naf.append((k, d))
            n -= d
        n >>= 1
        k += 1
    digits = naf if len(naf) < len(binary) else binary
    return [(k, sign * d) for k, d in digits]


# -- adder-tree builder --------------------------------------------------------------------------


@dataclass
class Node:
    """A non-negative value ``raw << shift`` held by the signal ``name`` (``raw <= maximum``)."""

    name: str
    width: int
    maximum: int
    shift: int = 0

    @property
    def constant_zero(self) -> bool:
        return self.maximum == 0


def _width(maximum: int) -> int:
    return max(1, int(maximum).bit_length())


@dataclass
class LayerBuilder:
    """Collects the signals of one layer module in definition order (deterministic names)."""

    signals: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    inverted: dict[str, str] = field(default_factory=dict)
    shared: dict[tuple, Node] = field(default_factory=dict)  # common subexpressions
    share_sums: bool = False
    leaf_bits: int = 0  # bits entering adder trees
    tree_bits: int = 0  # bits leaving them (one sum per neuron)

    def fresh(self, prefix: str) -> str:
        n = self.counters.get(prefix, 0)
        self.counters[prefix] = n + 1
        return f"{prefix}{n}"

    def emit(self, kind: str, name: str, width: int, reg: bool = False, **args: Any) -> str:
        self.signals.append({"kind": kind, "name": name, "width": int(width), "reg": reg, **args})
        return name

    def complement(self, src: str, width: int) -> str:
        """``~src`` as its own wire (a complement must not be widened before inverting)."""
        if src not in self.inverted:
            self.inverted[src] = self.emit("not", f"{src}_n", width, src=src)
        return self.inverted[src]

    # -- sums of shifted terms --------------------------------------------------------------

    def terms(self, coeffs: list[tuple[str, int, int]]) -> tuple[list[Node], int]:
        """Leaves and constant of sum(c * u) for (signal, width, c): non-negative leaves."""
        leaves, const = [], 0
        for src, width, c in coeffs:
            full = (1 << width) - 1
            for k, d in signed_digits(c):
                self.leaf_bits += width
                if d > 0:
                    leaves.append(Node(src, width, full, k))
                else:
                    leaves.append(Node(self.complement(src, width), width, full, k))
                    const -= full << k
        return leaves, const

    def add(self, a: Node, b: Node, reg: bool, prefix: str) -> Node:
        """a + b; with ``share_sums`` the same sum in another neuron is built once.

        Dense binary layers pair alike, so many neurons form the same partial sums. The
        emitted Verilog keeps every neuron's tree whole (Yosys maps a whole tree to one
        compressor and finds the sharing inside it, fewer LUTs than sharing ripple adders);
        the cost model reads the shared view, which is what synthesis ends up with.
        """
        key = ("add", a.name, a.shift, b.name, b.shift, reg)
        if self.share_sums and key in self.shared:
            return self.shared[key]
        low = min(a.shift, b.shift)
        maximum = (a.maximum << (a.shift - low)) + (b.maximum << (b.shift - low))
        width = _width(maximum)
        name = self.fresh(prefix)
        operands = [self._operand(a, low, width), self._operand(b, low, width)]
        self.emit("add", name, width, reg, operands=operands)
        self.shared[key] = Node(name, width, maximum, low)
        return self.shared[key]

    @staticmethod
    def _operand(n: Node, low: int, width: int) -> dict[str, Any]:
        shift = n.shift - low
        return {"name": n.name, "width": n.width, "shift": shift, "pad": width - n.width - shift}

    def copy(self, n: Node, prefix: str) -> Node:
        """``n`` one cycle later (a signal name always denotes one timed value: shareable)."""
        key = ("copy", n.name)
        if key not in self.shared:
            name = self.fresh(prefix)
            self.emit("copy", name, n.width, True, src=n.name)
            self.shared[key] = Node(name, n.width, n.maximum, n.shift)
        return self.shared[key]

    def reduce(
        self, groups: list[list[Node]], registered: set[int], first_level: int, depth: int, prefix: str
    ) -> list[Node]:
        """Balanced adder trees, one per group, over exactly ``depth`` levels.

        Within a level, terms are paired in order of (shift, width) so that operands of like
        magnitude meet and shifted low bits pass through without logic. At a registered
        level every live value is registered, added or not, so all paths see equal latency.
        """
        groups = [[n for n in g if not n.constant_zero] for g in groups]
        for level in range(1, depth + 1):
            reg = (first_level + level) in registered
            nxt = []
            for g in groups:
                g = sorted(g, key=lambda n: (n.shift, n.width, n.name))
                out = [self.add(g[j], g[j + 1], reg, prefix) for j in range(0, len(g) - 1, 2)]
                if len(g) % 2:
                    out.append(self.copy(g[-1], prefix) if reg else g[-1])
                nxt.append(out)
            groups = nxt
        if any(len(g) > 1 for g in groups):
            raise InternalError("adder tree deeper than scheduled")
        self.tree_bits += sum(g[0].width for g in groups if g)
        return [g[0] if g else Node("", 1, 0, 0) for g in groups]


def sources(signal: dict[str, Any]) -> list[str]:
    """Names of the signals one signal reads."""
    names = [o["name"] for o in signal.get("operands", [])]
    if signal.get("src"):
        names.append(signal["src"])
    for bit in signal.get("terms", []):
        if isinstance(bit, list):
            names.extend(lit.lstrip("~") for term in bit for lit in term)
    return names


def prune(signals: list[dict[str, Any]], outputs: list[str]) -> list[dict[str, Any]]:
    """Drop signals no output depends on (inputs with only zero weights, folded comparators)."""
    live = set(outputs)
    for s in reversed(signals):
        if s["name"] in live:
            live.update(sources(s))
    return [s for s in signals if s["name"] in live]


def tree_depth(groups: list[list[Node]]) -> int:
    return max((math.ceil(math.log2(len(g))) for g in groups if len(g) > 1), default=0)


def register_units(units: int, levels: int) -> set[int]:
    """Unit indices (1-based) after which a register stage sits: ``levels`` equal parts."""
    levels = min(levels, units)
    return {-(-k * units // levels) for k in range(1, levels + 1)} if levels else set()


# -- requantizers --------------------------------------------------------------------------------


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def _per(v: np.ndarray, c: int) -> int:
    return int(v[c] if v.size > 1 else v[0])


def _thresholds(
    b: LayerBuilder, rq: ir.Thresholds, sums: list[Node], consts: list[int], reg: bool
) -> tuple[list[str], Encoding]:
    """Comparators against constants, thermometer code -> count; the count is the next ``u``."""
    count = rq.thresholds.shape[1]
    bits = _width(count)
    outs = []
    for c, (s, k) in enumerate(zip(sums, consts)):
        tc = rq.thresholds[c] if rq.thresholds.shape[0] > 1 else rq.thresholds[0]
        d = _per(rq.direction, c)
        flags: list[bool | str] = []
        seen: dict[tuple[str, int], str] = {}
        for t in (int(v) for v in tc):
            flag: bool | tuple[str, int]
            if d > 0:  # acc >= T  <=>  raw >= ceil((T - K) / 2**shift)
                bound = _ceil_div(t - k, 1 << s.shift)
                flag = True if bound <= 0 else False if bound > s.maximum else ("ge", bound)
            else:  # -acc >= T  <=>  raw <= floor((-T - K) / 2**shift)
                bound = (-t - k) >> s.shift
                flag = True if bound >= s.maximum else False if bound < 0 else ("le", bound)
            if isinstance(flag, tuple):
                if flag not in seen:
                    seen[flag] = b.emit("cmp", b.fresh(f"t{c}_"), 1, src=s.name, src_width=s.width,
                                        op=flag[0], value=flag[1])  # fmt: skip
                flags.append(seen[flag])
            else:
                flags.append(flag)
        outs.append(b.emit("count", b.fresh("u"), bits, reg, terms=thermometer_to_binary(flags, bits)))
    base = tuple(int(v) for v in rq.base)
    return outs, Encoding(len(sums), bits, base, int(rq.step))


def thermometer_to_binary(flags: list[bool | str], bits: int) -> list[bool | list[list[str]]]:
    """Per bit of the count: a constant, or an OR of AND terms of literals (``~name`` negated).

    ``flags`` is a thermometer code (flag j implies flag j-1), so the count is at least n
    exactly when flag n-1 is set, and bit ``b`` of the count is set when the count lies in
    [m*2**(b+1) + 2**b, (m+1)*2**(b+1)) for some m: ``flag[lo] & ~flag[hi]``.
    """

    def flag(j: int) -> bool | str:
        return flags[j] if j < len(flags) else False

    out: list[bool | list[list[str]]] = []
    for bit in range(bits):
        period, half = 1 << (bit + 1), 1 << bit
        terms: list[list[str]] = []
        value: bool | list[list[str]] = False
        for m in range(len(flags) // period + 1):
            lo, hi = m * period + half - 1, (m + 1) * period - 1
            pos, neg = flag(lo), flag(hi)
            if lo >= len(flags) or pos is False or neg is True:
                continue
            if pos is True and neg is False:
                value = True
                break
            terms.append(([pos] if pos is not True else []) + ([f"~{neg}"] if neg is not False else []))
        out.append(value if value is True else (terms or False))
    return out


def _multiply_shift(
    b: LayerBuilder, rq: ir.MultiplyShift, sums: list[Node], consts: list[int], out_q: ir.QType,
    registered: set[int], first_unit: int, depth: int, reg: bool,
) -> tuple[list[str], Encoding]:  # fmt: skip
    """clip(floor((d*M*acc + B) / 2**S)): acc*M as a second shift-add tree, one offset add.

    With ``acc = (raw << s) + K`` the argument is ``c*raw + C`` (``c = d*M*2**s``): an
    unsigned tree plus a constant. The constant is raised by ``r * 2**S`` so that the sum
    is non-negative; ``r`` comes off again together with the output's minimum code.
    """
    groups, offsets = [], []
    for c, (s, k) in enumerate(zip(sums, consts)):
        d, m = _per(rq.direction, c), _per(rq.multiplier, c)
        leaves, const = b.terms([] if s.constant_zero else [(s.name, s.width, d * m << s.shift)])
        groups.append(leaves)
        offsets.append(const + d * m * k + _per(rq.offset, c))
    products = b.reduce(groups, registered, first_unit, depth, "p")
    bits = out_q.bits
    outs = []
    for c, (p, const) in enumerate(zip(products, offsets)):
        raise_by = _ceil_div(-const, 1 << rq.shift) if const < 0 else 0
        offset = const + (raise_by << rq.shift)
        total_max = (p.maximum << p.shift) + offset
        q_min, q_max = offset >> rq.shift, total_max >> rq.shift
        lo, hi = _per(rq.lo, c) + raise_by, _per(rq.hi, c) + raise_by
        to_u = -(raise_by + out_q.qmin) % (1 << bits)  # u = q - raise_by - qmin (mod 2**bits)
        name = b.fresh("u")
        if min(max(q_min, lo), hi) == min(max(q_max, lo), hi):  # one output value only
            b.emit("const", name, bits, reg, value=(min(max(q_min, lo), hi) + to_u) % (1 << bits))
        else:
            sum_width = _width(total_max)
            total = b.emit("offset", b.fresh("z"), sum_width, src=p.name, src_width=p.width,
                           src_shift=p.shift, pad=sum_width - p.width - p.shift, offset=offset)  # fmt: skip
            b.emit("clip", name, bits, reg, src=total, msb=sum_width - 1, lsb=rq.shift,
                   q_width=sum_width - rq.shift, lo=lo if lo > q_min else None,
                   hi=hi if hi < q_max else None, add=to_u)  # fmt: skip
        outs.append(name)
    return outs, Encoding(len(sums), bits, (out_q.qmin,), 1)


def _raw_accumulator(b: LayerBuilder, sums: list[Node], consts: list[int], reg: bool) -> tuple[list[str], int]:
    """acc = (raw << shift) + K as a two's-complement word wide enough for every channel."""
    lo = min(consts)
    hi = max((s.maximum << s.shift) + k for s, k in zip(sums, consts))
    width = ir.signed_bits_for(lo, hi)
    outs = []
    for s, k in zip(sums, consts):
        name = b.fresh("acc")
        if s.constant_zero:
            b.emit("const", name, width, reg, value=k % (1 << width))
        else:
            b.emit("offset", name, width, reg, src=s.name, src_width=s.width, src_shift=s.shift,
                   pad=width - s.width - s.shift, offset=k % (1 << width))  # fmt: skip
        outs.append(name)
    return outs, width


# -- one dense layer -----------------------------------------------------------------------------


def lower_dense(
    op: ir.Dense, x: ir.Tensor, out: ir.Tensor, enc: Encoding, levels: int, index: int, share_sums: bool = False
) -> tuple[dict[str, Any], Encoding | None]:
    """The netlist of one dense layer and the encoding of its output (None: raw accumulator)."""
    b = LayerBuilder(share_sums=share_sums)
    zp = np.zeros(enc.size, dtype=np.int64) if x.qtype.bipolar else x.qtype.zero_point_array(enc.size)
    for i in range(enc.size):
        b.emit("input", f"x{i}", enc.bits, index=i)
    groups, consts = [], []
    for w_row in op.weights:
        coeffs, const = [], 0
        for i in np.flatnonzero(w_row):
            w = int(w_row[i])
            coeffs.append((f"x{i}", enc.bits, w * enc.step))
            const += w * (enc.base_of(i) - int(zp[i]))
        leaves, extra = b.terms(coeffs)
        groups.append(leaves)
        consts.append(const + extra)
    depth = tree_depth(groups)
    rq = op.requant
    ms_depth = _multiplier_depth(rq) if isinstance(rq, ir.MultiplyShift) else 0
    units = depth + ms_depth + 1
    registered = register_units(units, levels)
    sums = b.reduce(groups, registered, 0, depth, "s")
    out_reg = units in registered
    out_enc: Encoding | None
    if isinstance(rq, ir.Thresholds):
        outs, out_enc = _thresholds(b, rq, sums, consts, out_reg)
        out_width = out_enc.bits
    elif isinstance(rq, ir.MultiplyShift):
        outs, out_enc = _multiply_shift(b, rq, sums, consts, out.qtype, registered, depth, ms_depth, out_reg)
        out_width = out_enc.bits
    else:
        outs, out_width = _raw_accumulator(b, sums, consts, out_reg)
        out_enc = None
    layer = {
        "index": index,
        "in_size": enc.size,
        "in_bits": enc.bits,
        "out_size": len(outs),
        "out_bits": out_width,
        "signals": prune(b.signals, outs),
        "outputs": outs,
        "registers": len(registered),
        "leaf_bits": b.leaf_bits,
        "tree_bits": b.tree_bits,
        "units": units,
        "tree_depth": depth,
        "requant": rq.kind if rq is not None else "none",
    }
    return layer, out_enc


def _multiplier_depth(rq: ir.MultiplyShift) -> int:
    """Levels of the multiply-shift's tree: the most signed digits of any multiplier."""
    digits = max(len(signed_digits(int(m))) for m in rq.multiplier)
    return math.ceil(math.log2(digits)) if digits > 1 else 0


def lower_core(
    core: Core, levels: list[int], share_sums: bool = False
) -> tuple[list[dict[str, Any]], Encoding, Encoding | None, int]:
    """Netlists of every dense layer: (layers, input encoding, output encoding, acc width).

    The output encoding is None when the last layer emits a raw accumulator of
    ``acc width`` bits.
    """
    dense = core.dense
    if len(levels) != len(dense):
        raise InternalError(f"{len(levels)} pipeline settings for {len(dense)} layers")
    enc_in = input_encoding(core.input)
    enc: Encoding | None = enc_in
    layers = []
    acc_width = 0
    for i, op in enumerate(dense):
        if enc is None:
            raise InternalError("a raw accumulator feeds another layer")
        x, out = core.tensors[op.inputs[0]], core.tensors[op.outputs[0]]
        layer, enc = lower_dense(op, x, out, enc, levels[i], i, share_sums)
        layers.append(layer)
        if enc is None:
            acc_width = layer["out_bits"]
    return layers, enc_in, enc, acc_width
