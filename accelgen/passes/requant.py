"""Absorb scales into integer requantization: thresholds or an exact multiply-shift.

A layer's output code is a monotone function of its integer accumulator: the float chain
(scale, bias, BatchNorm, ReLU, clip) followed by rounding and clipping. *Thresholds*
store, per channel and output level, the smallest accumulator that reaches the level;
they are exact for any monotone chain (found in float64, and in rational arithmetic on the
model's constants wherever float64 comes near a rounding tie). A *multiply-shift* ``floor((acc*M + B) >> S)`` is
cheaper for wide outputs; it is used only when its own thresholds equal the exact ones on
the layer's whole accumulator range, which is checked in integer arithmetic.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from fractions import Fraction

import numpy as np

from accelgen import ir
from accelgen.config import CompileConfig
from accelgen.errors import InputError, InternalError
from accelgen.numeric import round_mode, to_codes
from accelgen.runtime.numeric import apply_requant

MAX_SHIFT = 48
INT64_SAFE = 1 << 62
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
ADD_MAX_SHIFT = 24


# -- the float reference of one requantization ------------------------------------------------


def _step_size(step: ir.FloatStep) -> int:
    """The number of channels a step's values describe (clip: 2, its bounds)."""
    return step.values.shape[-1] if step.op == "batchnorm" else step.values.size


def _per(vals: np.ndarray, ch: np.ndarray) -> np.ndarray:
    return vals[..., ch] if vals.shape[-1] > 1 else vals[..., 0]


def pre_rounding(fr: ir.FloatRequant, value: np.ndarray, ch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the float chain's value divided by the output scale, before rounding; a bound on the
    magnitudes of the terms it sums, in the same unit) for real accumulator values ``value``
    of channels ``ch``, in float64: it errs by a few units in the last place of the bound."""
    v = np.asarray(value, dtype=np.float64)
    size = np.abs(v)
    for step in fr.steps:
        vals = step.values
        if step.op == "mul":
            v = v * _per(vals, ch)
            size = size * np.abs(_per(vals, ch))
        elif step.op == "add":
            v = v + _per(vals, ch)
            size = size + np.abs(_per(vals, ch))
        elif step.op == "batchnorm":
            gamma, beta, mean, var, eps = _per(vals, ch)
            mul = gamma / np.sqrt(var + eps)
            v = (v - mean) * mul + beta
            size = (size + np.abs(mean)) * np.abs(mul) + np.abs(beta)
        elif step.op == "relu":
            v = np.maximum(v, 0.0)
        elif step.op == "clip":
            v = np.clip(v, vals[0], vals[1])
        elif step.op == "round":
            v = round_mode(v, step.mode)
        else:
            raise InternalError(f"unknown float step {step.op}")
    divisor = _divisor(fr, ch)
    return v / divisor, size / np.abs(divisor)


def _divisor(fr: ir.FloatRequant, ch: np.ndarray) -> np.ndarray:
    if fr.divisor is not None:
        return np.float64(fr.divisor)
    return _per(np.asarray(fr.out_qtype.scale, dtype=np.float64), ch)


def eval_float_requant(fr: ir.FloatRequant, value: np.ndarray, ch: np.ndarray) -> np.ndarray:
    """Codes the float chain gives for real accumulator values ``value`` of channels ``ch``."""
    q = fr.out_qtype
    z = _per(np.asarray(q.zero_point, dtype=np.float64), ch)
    codes = to_codes(pre_rounding(fr, value, ch)[0], z, q.qmin, q.qmax, fr.rounding, fr.zero_point_after_rounding)
    return codes.astype(np.int64)


def eval_float32_requant(
    f32: ir.Float32Multiply, acc: np.ndarray, ch: np.ndarray, zero_point: np.ndarray
) -> np.ndarray:
    """Codes onnxruntime's float32 requantization gives for integer accumulators ``acc``."""
    bias = f32.bias[ch] if f32.bias.size > 1 else f32.bias[0]
    mult = f32.multiplier[ch] if f32.multiplier.size > 1 else f32.multiplier[0]
    value = (np.asarray(acc, dtype=np.int64) + bias).astype(np.float32) * np.asarray(mult, dtype=np.float32)
    z = zero_point[ch] if zero_point.size > 1 else zero_point[0]
    codes = np.rint(value.astype(np.float32)).astype(np.int64) + z
    return np.clip(codes, f32.lo, f32.hi)


def eval_float32_sum(f32: ir.Float32Sum, a_codes: np.ndarray, b_codes: np.ndarray) -> np.ndarray:
    """Codes onnxruntime's QLinearAdd gives for input codes ``a`` and ``b`` (float32, fused multiply-add)."""
    f = np.float32
    inner = (np.asarray(b_codes, np.float64) * float(f(f32.ratio_b)) + float(f(f32.offset))).astype(f)
    value = (np.asarray(a_codes, np.float64) * float(f(f32.ratio_a)) + inner.astype(np.float64)).astype(f)
    return np.clip(np.rint(value).astype(np.int64), f32.lo, f32.hi)


def chain_direction(fr: ir.FloatRequant, acc_scale: np.ndarray, channels: int) -> np.ndarray:
    """+1 where the chain increases with the accumulator, -1 where it decreases (per channel)."""
    sign = np.sign(np.broadcast_to(acc_scale, (channels,))).astype(np.int64)
    for step in fr.steps:
        if step.op == "mul":
            sign = sign * np.sign(np.broadcast_to(step.values, (channels,))).astype(np.int64)
        elif step.op == "batchnorm":
            sign = sign * np.sign(np.broadcast_to(step.values[0], (channels,))).astype(np.int64)
    return np.where(sign < 0, -1, 1).astype(np.int64)


def levels(q: ir.QType) -> tuple[int, int, int]:
    """(base, step, count): output = base + step * (number of thresholds passed)."""
    if q.bipolar:
        return -1, 2, 1
    return q.qmin, 1, q.qmax - q.qmin


# -- accumulator ranges ------------------------------------------------------------------------


def _weighted_range(weights: np.ndarray, xlo: int, xhi: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the range of the final sum (accelgen.ir.sum_ranges)."""
    return ir.sum_ranges(weights, xlo, xhi)


def acc_range_and_scale(graph: ir.Graph, op: ir.Op) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel accumulator range (lo, hi) and the real value of one accumulator step."""
    x = graph.tensors[op.inputs[0]]
    xq = x.qtype
    s_in = np.asarray(xq.scale, dtype=np.float64)
    if isinstance(op, (ir.Conv, ir.Dense)):
        padded = isinstance(op, ir.Conv) and any(op.pads)
        lo, hi = _weighted_range(op.weights, *ir.centred_range(xq, padded))
        scale = s_in[0] * np.asarray(op.w_qtype.scale, dtype=np.float64)
        return lo, hi, scale
    if isinstance(op, ir.AvgPool):
        k = op.kernel[0] * op.kernel[1]
        xlo, xhi = ir.centred_range(xq, any(op.pads))
        return np.array([k * xlo]), np.array([k * xhi]), s_in / k
    if isinstance(op, ir.Requantize):
        xlo, xhi = ir.centred_range(xq)
        return np.array([xlo]), np.array([xhi]), s_in
    if isinstance(op, ir.TTDense):
        lo, hi, scale = tt_step_ranges(op, xq)[-1]
        return np.array([lo]), np.array([hi]), np.array([scale])
    raise InternalError(f"no accumulator range for {op.kind}")


def exact_unit(graph: ir.Graph, op: ir.Op) -> list[Fraction] | None:
    """The real value of one accumulator step per channel, exactly (as acc_range_and_scale's
    float64 one), or None (a TT layer)."""
    s_in = Fraction(float(graph.tensors[op.inputs[0]].qtype.scale[0]))
    if isinstance(op, (ir.Conv, ir.Dense)):
        return [s_in * Fraction(float(s)) for s in op.w_qtype.scale]
    if isinstance(op, ir.AvgPool):
        return [s_in / (op.kernel[0] * op.kernel[1])]
    if isinstance(op, ir.Requantize):
        return [s_in]
    return None


def tt_step_ranges(op: ir.TTDense, xq: ir.QType) -> list[tuple[int, int, float]]:
    """Per contraction step of a TT layer: the range of its integer sums and their unit.

    Interval arithmetic: step t sums products of the previous state (the input's
    ``code - zero_point``, or the codes of ``mid_qtypes[t - 1]``) with core ``order[t]``
    over the indices it contracts; each output element's range is the sum of the
    products' ranges, and the step's range the hull over its output elements.
    """
    d = len(op.modes_in)
    lo, hi = ir.centred_range(xq)
    unit = float(xq.scale[0])
    contracted: set[int] = set()
    out = []
    for t, k in enumerate(op.order):
        core = np.asarray(op.cores[k], dtype=np.int64)
        summed = [1] + ([0] if k - 1 in contracted else []) + ([3] if k + 1 in contracted else [])
        kept = [a for a in range(4) if a not in summed]
        cols = np.transpose(core, kept + summed).reshape(-1, int(np.prod([core.shape[a] for a in summed])))
        clo, chi = _weighted_range(cols, lo, hi)
        unit *= float(op.core_qtypes[k].scale[0])
        out.append((int(clo.min()), int(chi.max()), unit))
        contracted.add(k)
        if t < d - 1:
            q = op.mid_qtypes[t]
            lo, hi, unit = q.qmin, q.qmax, float(q.scale[0])
    return out


def _solve_tt_steps(graph: ir.Graph, op: ir.TTDense, config: CompileConfig) -> tuple[ir.Requant, ...]:
    """Integer requantizers of a TT layer's intermediate states (exact, like a layer's)."""
    ranges = tt_step_ranges(op, graph.tensors[op.inputs[0]].qtype)
    out = []
    for t, fr in enumerate(op.mid_requant):
        if not isinstance(fr, ir.FloatRequant):
            out.append(fr)
            continue
        lo, hi, unit = ranges[t]
        out.append(_solve_float(op, fr, np.array([lo]), np.array([hi]), np.array([unit]), config))
    return tuple(out)


# -- thresholds --------------------------------------------------------------------------------


def search_thresholds(fn, lo: np.ndarray, hi: np.ndarray, q: ir.QType) -> np.ndarray:
    """Smallest a in [lo, hi+1] with fn(a, c) >= level, for every channel and level.

    ``fn(a, c)`` must be non-decreasing in ``a``; a value of hi+1 means "never reached".
    Vectorised binary search over all (channel, level) pairs at once.
    """
    base, step, count = levels(q)
    channels = lo.size
    targets = base + step * (1 + np.arange(count, dtype=np.int64))
    a = np.repeat(lo[:, None], count, axis=1).astype(np.int64)
    b = np.repeat(hi[:, None] + 1, count, axis=1).astype(np.int64)
    ch = np.repeat(np.arange(channels)[:, None], count, axis=1)
    tgt = np.broadcast_to(targets, (channels, count))
    while True:
        open_ = a < b
        if not open_.any():
            return a
        mid = (a + b) // 2
        ge = fn(mid[open_], ch[open_]) >= tgt[open_]
        b_new, a_new = b[open_], a[open_]
        b_new = np.where(ge, mid[open_], b_new)
        a_new = np.where(ge, a_new, mid[open_] + 1)
        b[open_] = b_new
        a[open_] = a_new


# -- exact thresholds --------------------------------------------------------------------------
#
# The float64 chain rounds: where its value lies within a few units in its last place of a
# rounding tie, its code may be one off the real numbers' (a BatchNorm epsilon of 2**-60
# vanishes in var + epsilon, putting exact ties where the reals have none). Every threshold
# whose accumulator, or the one below, is that near a tie is decided again in rational
# arithmetic on the model's constants: values p + q / sqrt(v) (one BatchNorm per chain).

#: a float64 value within this fraction of its terms' magnitudes of a tie is decided exactly
#: (float64 errs by ~1e-16 of them)
TIE_MARGIN = 1e-9


def _cmp(x: tuple, r: Fraction) -> int:
    """The sign of x - r for x = (p, q, v), the real p + q / sqrt(v) (v > 0)."""
    p, q, v = x
    a = p - r
    sign_a = (a > 0) - (a < 0)
    if q == 0 or sign_a == 0:
        return sign_a if q == 0 else (q > 0) - (q < 0)
    if (a > 0) == (q > 0):
        return sign_a
    d = a * a * v - q * q  # |a| against |q| / sqrt(v)
    return sign_a * ((d > 0) - (d < 0))


def _exact_round(y: tuple, mode: str) -> int | None:
    """y = (p, q, v) rounded with ``mode`` (None for modes not decided here)."""
    p, q, v = y
    k = math.floor(float(p) + float(q) / math.sqrt(float(v)))
    while _cmp(y, Fraction(k)) < 0:
        k -= 1
    while _cmp(y, Fraction(k + 1)) >= 0:
        k += 1
    if mode == "FLOOR":
        return k
    if mode == "CEIL":
        return k if _cmp(y, Fraction(k)) == 0 else k + 1
    if mode == "HALF_EVEN":
        half = _cmp(y, k + Fraction(1, 2))
        return k + 1 if half > 0 or (half == 0 and k % 2) else k
    return None


def exact_code(fr: ir.FloatRequant, value: Fraction, ch: int) -> int | None:
    """The code of the real accumulator value ``value`` of channel ``ch``, in exact arithmetic
    (None for chains it does not decide: a rounding step, two BatchNorms, a rare mode)."""
    x = (value, Fraction(0), Fraction(1))
    for step in fr.steps:
        vals = step.values
        if step.op in ("mul", "add"):
            c = Fraction(float(_per(vals, ch)))
            x = (x[0] * c, x[1] * c, x[2]) if step.op == "mul" else (x[0] + c, x[1], x[2])
        elif step.op == "batchnorm":
            gamma, beta, mean, var, eps = (Fraction(float(c)) for c in _per(vals, ch))
            if x[1] != 0 or var + eps <= 0:
                return None
            x = (beta, (x[0] - mean) * gamma, var + eps)
        elif step.op == "relu":
            x = x if _cmp(x, Fraction(0)) >= 0 else (Fraction(0), Fraction(0), Fraction(1))
        elif step.op == "clip":
            lo, hi = (Fraction(float(c)) if math.isfinite(c) else None for c in vals[:2])
            if lo is not None and _cmp(x, lo) < 0:
                x = (lo, Fraction(0), Fraction(1))
            elif hi is not None and _cmp(x, hi) > 0:
                x = (hi, Fraction(0), Fraction(1))
        else:
            return None
    q = fr.out_qtype
    d = Fraction(float(_divisor(fr, ch)))
    z = int(_per(np.asarray(q.zero_point, dtype=np.int64), ch))
    shift, offset = (0, z) if fr.zero_point_after_rounding else (z, 0)
    y = (x[0] / d + shift, x[1] / d, x[2])
    lo, hi = q.qmin - offset, q.qmax - offset
    if _cmp(y, Fraction(lo)) <= 0:
        return lo + offset
    if _cmp(y, Fraction(hi)) >= 0:
        return hi + offset
    k = _exact_round(y, fr.rounding)
    return None if k is None else k + offset


def near_tie(fr: ir.FloatRequant, value: np.ndarray, ch: np.ndarray) -> np.ndarray:
    """Where the float64 chain on real accumulator values ``value`` (channels ``ch``) comes
    within TIE_MARGIN of a rounding tie: where its code is not certain."""
    t, size = pre_rounding(fr, value, ch)
    z = _per(np.asarray(fr.out_qtype.zero_point, dtype=np.float64), ch)
    t = t if fr.zero_point_after_rounding else t + z
    return np.abs(t - (np.floor(t) + 0.5)) <= TIE_MARGIN * (size + np.abs(z) + 1.0)


def exact_thresholds(fr: ir.FloatRequant, T: np.ndarray, lo, hi, direction, scale, unit) -> np.ndarray:
    """``T`` (from the float64 chain on the direction-adjusted accumulator range [lo, hi], one
    accumulator step being ``scale`` in float64 and ``unit`` exactly, per channel; a TT
    layer's float64 unit stands for its exact one) with every threshold next to a near-tie
    decided in exact arithmetic."""
    base, step, count = levels(fr.out_qtype)
    channels = T.shape[0]
    ch = np.repeat(np.arange(channels)[:, None], count, axis=1)
    lo_c, hi_c = lo[:, None], hi[:, None]
    flagged = np.zeros(T.shape, dtype=bool)
    for a in (T, T - 1):
        near = near_tie(fr, (direction[ch] * a).astype(np.float64) * scale[ch], ch)
        flagged |= near & (a >= lo_c) & (a <= hi_c)
    T = T.copy()
    for c, j in zip(*np.nonzero(flagged)):
        level, c = base + step * (int(j) + 1), int(c)

        def code(a: int, c: int = c) -> int:
            got = exact_code(fr, int(direction[c]) * a * Fraction(unit[c]), c)
            if got is None:
                raise _Undecided
            return got

        a = int(T[c, j])
        try:
            while a > lo[c] and code(a - 1) >= level:
                a -= 1
            while a <= hi[c] and code(a) < level:
                a += 1
        except _Undecided:
            continue
        T[c, j] = a
    return T


class _Undecided(Exception):
    """exact_code does not decide this chain: the float64 threshold stands."""


# -- multiply-shift ----------------------------------------------------------------------------


def _spread_excess(M: np.ndarray, T: np.ndarray, vlev: np.ndarray, rel: np.ndarray, shift: int) -> np.ndarray:
    """Per channel: spread of ``v*2**S - M*T_v`` over the relevant levels, minus (M - 1).

    Level v needs ``v*2**S - M*T_v <= B <= v*2**S - M*(T_v - 1) - 1``; one B satisfies every
    level iff the largest lower bound is at most the smallest upper bound, i.e. iff this
    excess is <= 0. As a function of M it is convex (a max of lines minus a min of lines),
    so the valid M form an interval.
    """
    r = (vlev << shift)[None, :] - M[:, None] * T
    top = np.where(rel, r, _INT64_MIN).max(axis=1)
    bottom = np.where(rel, r, _INT64_MAX).min(axis=1)
    return np.where(rel.any(axis=1), top - bottom - (M - 1), 0)


def _fit_multipliers(T, vlev, rel, first, last, shift: int) -> np.ndarray | None:
    """A valid multiplier per channel at this shift, or None if some channel has none.

    Tries the slope of the thresholds first, then the minimiser of the convex excess
    (bisection on its forward difference) within a factor of two of the slope.
    """
    rows = np.arange(T.shape[0])
    t0, t1 = T[rows, first], T[rows, last]
    span = np.maximum(t1 - t0, 1)
    guess = np.where(t1 > t0, np.rint((vlev[last] - vlev[first]) * float(1 << shift) / span), 1)
    guess = np.maximum(guess.astype(np.int64), 1)
    excess = _spread_excess(guess, T, vlev, rel, shift)
    if np.all(excess <= 0):
        return guess
    lo, hi = np.maximum(guess // 2, 1), 2 * guess + 2
    n = T.shape[0]
    pairs_t, pairs_rel = np.concatenate([T, T]), np.concatenate([rel, rel])  # the excess at M and M + 1 in one pass
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        both = _spread_excess(np.concatenate([mid + 1, mid]), pairs_t, vlev, pairs_rel, shift)
        rising = both[:n] >= both[n:]
        hi = np.where(rising & (lo < hi), mid, hi)
        lo = np.where(~rising & (lo < hi), mid + 1, lo)
    best = np.where(excess <= 0, guess, lo)
    return best if np.all(_spread_excess(best, T, vlev, rel, shift) <= 0) else None


def fit_multiply_shift(T: np.ndarray, lo: np.ndarray, hi: np.ndarray, q: ir.QType, max_bits: int):
    """Find M, B (per channel) and one shift S with floor((a*M + B) / 2**S) == thresholds.

    ``T`` are thresholds on the direction-adjusted accumulator with range [lo, hi]. For a
    level v the floor reaches v exactly from a = T_v on iff
    ``v*2**S - M*T_v <= B < v*2**S - M*(T_v - 1)`` (see :func:`_spread_excess`); B is then
    the largest lower bound. A fit at shift S also fits at S+1, so the smallest shift is
    found by bisection. Returns (M, B, S, out_lo, out_hi), or None when no multiplier of
    ``max_bits`` bits is exact.
    """
    base, step, count = levels(q)
    if step != 1:
        return None
    vlev = base + 1 + np.arange(count, dtype=np.int64)
    out_lo = base + (T <= lo[:, None]).sum(axis=1)
    out_hi = base + (T <= hi[:, None]).sum(axis=1)
    rel = (T > lo[:, None]) & (T <= hi[:, None])
    first = np.argmax(rel, axis=1)
    last = T.shape[1] - 1 - np.argmax(rel[:, ::-1], axis=1)

    @functools.cache
    def attempt(shift: int):
        mults = _fit_multipliers(T, vlev, rel, first, last, shift)
        if mults is None:
            return None
        mults = np.where(rel.any(axis=1), mults, 0)
        r = (vlev << shift)[None, :] - mults[:, None] * T
        offs = np.where(rel.any(axis=1), np.where(rel, r, _INT64_MIN).max(axis=1), out_lo << shift)
        return mults, offs

    if attempt(MAX_SHIFT) is None:
        return None
    lo_s, hi_s = 0, MAX_SHIFT
    while lo_s < hi_s:
        mid = (lo_s + hi_s) // 2
        if attempt(mid) is None:
            lo_s = mid + 1
        else:
            hi_s = mid
    mults, offs = attempt(lo_s)
    if int(mults.max()).bit_length() > max_bits - 1:
        return None
    span = int(np.maximum(np.abs(lo), np.abs(hi)).max()) + 1
    if span * int(mults.max()) + int(np.abs(offs).max()) >= INT64_SAFE:
        return None
    return mults.astype(np.int64), offs.astype(np.int64), lo_s, out_lo.astype(np.int64), out_hi.astype(np.int64)


# -- the pass ----------------------------------------------------------------------------------


def _choose(op: ir.Op, T, lo, hi, direction, q: ir.QType, config: CompileConfig, note: str):
    """Pick thresholds or multiply-shift for one layer under the configured policy."""
    base, step, _ = levels(q)
    lo_b = np.broadcast_to(lo, (T.shape[0],))
    hi_b = np.broadcast_to(hi, (T.shape[0],))
    T = np.clip(T, lo_b[:, None], hi_b[:, None] + 1)
    thresholds = ir.Thresholds(thresholds=T, base=np.full(1, base, np.int64), direction=direction, step=step, reason="")
    policy = config.requant
    if policy == "thresholds" or (policy == "auto" and q.bits <= config.threshold_max_bits):
        why = f"{q.describe()} output: {T.shape[1]} comparator(s) per channel" if policy == "auto" else "requested"
        return dataclasses.replace(thresholds, reason=why + note)
    fit = fit_multiply_shift(T, lo_b, hi_b, q, config.max_multiplier_bits)
    if fit is None:
        if policy == "multiply_shift":
            raise InputError(
                f"layer '{op.source}': no multiply-shift with a multiplier of at most "
                f"{config.max_multiplier_bits} bits reproduces the float reference on the whole "
                "accumulator range; use --requant thresholds (exact for any scale) for this model"
            )
        return dataclasses.replace(thresholds, reason="no exact multiply-shift exists; thresholds are exact" + note)
    m, b, s, olo, ohi = fit
    ms = ir.MultiplyShift(multiplier=m, offset=b, shift=s, lo=olo, hi=ohi, direction=direction,
                          reason=f"exact on the accumulator range [{int(lo_b.min())}, {int(hi_b.max())}]" + note)  # fmt: skip
    return ms


def _solve_monotone(graph: ir.Graph, op: ir.Op, config: CompileConfig):
    fr: ir.FloatRequant = op.requant
    lo, hi, scale = acc_range_and_scale(graph, op)
    f32 = fr.float32 if config.arithmetic == "reference" else None
    if isinstance(f32, ir.Float32Sum):  # QLinearAdd with a constant operand (a Requantize)
        return _solve_constant_sum(graph, op, f32, config)
    sizes = [_step_size(s) for s in fr.steps] + ([f32.bias.size, f32.multiplier.size] if f32 else [])
    channels = max(lo.size, scale.size, *sizes, len(fr.out_qtype.scale))
    lo = np.broadcast_to(lo, (channels,)).astype(np.int64)
    hi = np.broadcast_to(hi, (channels,)).astype(np.int64)
    scale_b = np.broadcast_to(scale, (channels,))
    if f32 is not None:  # positive float32 multipliers: non-decreasing in the accumulator
        direction = np.ones(channels, dtype=np.int64)
        zp = np.asarray(fr.out_qtype.zero_point, dtype=np.int64)

        def fn(a: np.ndarray, ch: np.ndarray) -> np.ndarray:
            return eval_float32_requant(f32, a, ch, zp)

        note = "; onnxruntime's float32 requantization"
        lo_d = np.where(direction > 0, lo, -hi)
        hi_d = np.where(direction > 0, hi, -lo)
        T = search_thresholds(fn, lo_d, hi_d, fr.out_qtype)
        return _choose(op, T, lo_d, hi_d, direction, fr.out_qtype, config, note)
    return _solve_float(op, fr, lo, hi, scale_b, config, exact_unit(graph, op))


def _solve_float(op: ir.Op, fr: ir.FloatRequant, lo, hi, scale, config: CompileConfig, unit=None):
    """Thresholds (or an exact multiply-shift) of the float chain ``fr`` on the range [lo, hi]."""
    sizes = [_step_size(s) for s in fr.steps]
    channels = max(lo.size, scale.size, *sizes, len(fr.out_qtype.scale))
    lo = np.broadcast_to(lo, (channels,)).astype(np.int64)
    hi = np.broadcast_to(hi, (channels,)).astype(np.int64)
    scale_b = np.broadcast_to(scale, (channels,))
    direction = chain_direction(fr, scale_b, channels)

    def fn(a: np.ndarray, ch: np.ndarray) -> np.ndarray:
        acc = direction[ch] * a
        return eval_float_requant(fr, acc.astype(np.float64) * scale_b[ch], ch)

    lo_d = np.where(direction > 0, lo, -hi)
    hi_d = np.where(direction > 0, hi, -lo)
    T = search_thresholds(fn, lo_d, hi_d, fr.out_qtype)
    unit = scale_b.tolist() if unit is None else np.broadcast_to(np.array(unit, dtype=object), (channels,))
    T = exact_thresholds(fr, T, lo_d, hi_d, direction, scale_b, unit)
    return _choose(op, T, lo_d, hi_d, direction, fr.out_qtype, config, "")


def _solve_constant_sum(graph: ir.Graph, op: ir.Op, f32: ir.Float32Sum, config: CompileConfig):
    """onnxruntime's QLinearAdd of codes and a per-channel constant, as a per-channel requantizer."""
    fr: ir.FloatRequant = op.requant
    lo, hi, _ = acc_range_and_scale(graph, op)
    const = np.asarray(f32.const, dtype=np.int64).reshape(-1)
    channels = max(const.size, len(fr.out_qtype.scale))
    lo = np.broadcast_to(lo, (channels,)).astype(np.int64)
    hi = np.broadcast_to(hi, (channels,)).astype(np.int64)
    z_data = f32.zero_points[1 - f32.const_input]

    def fn(acc: np.ndarray, ch: np.ndarray) -> np.ndarray:
        data, c = acc + z_data, (const[ch] if const.size > 1 else const[0])
        return eval_float32_sum(f32, c, data) if f32.const_input == 0 else eval_float32_sum(f32, data, c)

    T = search_thresholds(fn, lo, hi, fr.out_qtype)
    direction = np.ones(channels, dtype=np.int64)
    return _choose(op, T, lo, hi, direction, fr.out_qtype, config, "; onnxruntime's float32 QLinearAdd")


def _solve_add(graph: ir.Graph, op: ir.Add, config: CompileConfig):
    """Pick integer input multipliers so one accumulator orders every input pair exactly."""
    fr: ir.FloatRequant = op.requant
    qa, qb = (graph.tensors[t].qtype for t in op.inputs)
    alo, ahi = ir.centred_range(qa)
    blo, bhi = ir.centred_range(qb)
    xa, xb = np.meshgrid(np.arange(alo, ahi + 1), np.arange(blo, bhi + 1), indexing="ij")
    if qa.bipolar:
        xa = np.where(xa == 0, -1, xa)
    if qb.bipolar:
        xb = np.where(xb == 0, -1, xb)
    sa, sb = qa.scale[0], qb.scale[0]
    f32 = fr.float32 if config.arithmetic == "reference" else None
    if isinstance(f32, ir.Float32Sum):  # onnxruntime's QLinearAdd arithmetic on the raw codes
        ref = eval_float32_sum(f32, xa + f32.zero_points[0], xb + f32.zero_points[1]).reshape(-1)
    else:
        real = sa * xa.astype(np.float64) + sb * xb.astype(np.float64)
        zero = np.zeros(real.shape, dtype=np.int64)
        ref = eval_float_requant(fr, real, zero).reshape(-1)
        for i in np.flatnonzero(near_tie(fr, real, zero)):  # decided again in exact arithmetic
            a, b = int(xa.reshape(-1)[i]), int(xb.reshape(-1)[i])
            code = exact_code(fr, Fraction(float(sa)) * a + Fraction(float(sb)) * b, 0)
            ref[i] = ref[i] if code is None else code
    smin = min(sa, sb)
    direction = chain_direction(fr, np.array([1.0]), 1)
    for shift in range(0, ADD_MAX_SHIFT + 1):
        ma = int(round(sa / smin * (1 << shift)))
        mb = int(round(sb / smin * (1 << shift)))
        if max(ma, mb) >= 1 << 31:
            break  # scales too far apart for one integer accumulator: no ratio will do
        acc = (direction[0] * (ma * xa + mb * xb)).reshape(-1)
        order = np.argsort(acc, kind="stable")
        acc_s, ref_s = acc[order], ref[order]
        if np.any(np.diff(ref_s) < 0):
            continue  # not monotone in this accumulator
        same = np.diff(acc_s) == 0
        if np.any(same & (np.diff(ref_s) != 0)):
            continue  # two input pairs with one accumulator but different outputs
        base, step, count = levels(fr.out_qtype)
        targets = base + step * (1 + np.arange(count))
        lo, hi = int(acc_s[0]), int(acc_s[-1])
        idx = np.searchsorted(ref_s, targets, side="left")
        T = np.where(idx < acc_s.size, acc_s[np.minimum(idx, acc_s.size - 1)], hi + 1)[None, :]
        note = f"; inputs weighted {ma}:{mb}"
        rq = _choose(op, T.astype(np.int64), np.array([lo]), np.array([hi]), direction, fr.out_qtype, config, note)
        return rq, (ma, mb)
    raise InputError(
        f"residual Add '{op.source}': the input scales {sa} and {sb} have no integer ratio of "
        f"up to {ADD_MAX_SHIFT} bits that reproduces the float sum exactly; quantize both "
        "branches with related (e.g. equal or power-of-two) scales"
    )


def integer_requant(graph: ir.Graph, config: CompileConfig) -> tuple[ir.Graph, bool]:
    """Replace every FloatRequant by an integer Thresholds or MultiplyShift requantizer."""
    ops = []
    changed = False
    for op in graph.ops:
        if isinstance(op, ir.REQUANT_OPS) and isinstance(op.requant, ir.FloatRequant):
            if isinstance(op, ir.Add):
                rq, mults = _solve_add(graph, op, config)
                op = op.replace(requant=rq, input_multipliers=mults)
            else:
                op = op.replace(requant=_solve_monotone(graph, op, config))
            changed = True
        if isinstance(op, ir.TTDense) and any(isinstance(rq, ir.FloatRequant) for rq in op.mid_requant):
            op = op.replace(mid_requant=_solve_tt_steps(graph, op, config))
            changed = True
        ops.append(op)
    return graph.copy(ops=ops), changed


def remove_identity_requant(graph: ir.Graph, config: CompileConfig) -> tuple[ir.Graph, bool]:
    """Drop every Requantize that maps every code to itself onto the same QType (one sweep:
    its readers read its input instead)."""
    rename: dict[str, str] = {}
    ops = []
    for op in graph.ops:
        inputs = tuple(rename.get(t, t) for t in op.inputs)
        if isinstance(op, ir.Requantize) and op.outputs[0] not in graph.outputs:
            src, dst = graph.tensors[inputs[0]], graph.tensors[op.outputs[0]]
            if ir._qkey(src.qtype) == ir._qkey(dst.qtype) and _is_identity(op.requant, src.qtype):
                rename[op.outputs[0]] = inputs[0]
                continue
        ops.append(op if inputs == op.inputs else op.replace(inputs=inputs))
    if not rename:
        return graph, False
    tensors = {k: v for k, v in graph.tensors.items() if k not in rename}
    return graph.copy(ops=ops, tensors=tensors), True


def _is_identity(rq: ir.Requant, q: ir.QType) -> bool:
    """Whether ``rq`` maps every code of ``q`` (minus its zero point) back to that code."""
    codes = np.arange(q.qmin, q.qmax + 1, dtype=np.int64)
    zp = int(q.zero_point[0])
    return bool(np.array_equal(apply_requant((codes - zp)[:, None], rq), codes[:, None]))
