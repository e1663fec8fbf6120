"""Rounding, code ranges and requantizers: the integer arithmetic shared by every backend.

Part of the standalone runtime: numpy only, Python >= 3.8, no import from the compiler.
"""

from __future__ import annotations

import threading

import numpy as np

ROUNDING_MODES = ("HALF_EVEN", "HALF_UP", "HALF_DOWN", "FLOOR", "CEIL", "UP", "DOWN", "BIPOLAR")


def round_mode(x: np.ndarray, mode: str, out=None) -> np.ndarray:
    """Round with one of the QONNX rounding modes (HALF_EVEN is ONNX QuantizeLinear's);
    into ``out`` when given (an array of the result's shape and dtype; may be ``x``).

    ``BIPOLAR`` maps x >= 0 to +1 and x < 0 to -1 (BipolarQuant).
    """
    if mode == "HALF_EVEN":
        return np.round(x, out=out)
    if mode == "FLOOR":
        return np.floor(x, out=out)
    if mode == "CEIL":
        return np.ceil(x, out=out)
    if mode == "DOWN":
        return np.trunc(x, out=out)
    if mode == "UP":
        r = np.sign(x) * np.ceil(np.abs(x))
    elif mode == "HALF_UP":
        r = np.sign(x) * np.floor(np.abs(x) + 0.5)
    elif mode == "HALF_DOWN":
        r = np.sign(x) * np.ceil(np.abs(x) - 0.5)
    elif mode == "BIPOLAR":
        r = np.where(x >= 0, 1.0, -1.0)
    else:
        raise ValueError(f"unsupported rounding mode {mode}")
    if out is None:
        return r
    np.copyto(out, r)
    return out


try:  # numpy's clip ufunc, without np.clip's Python wrapper (microseconds per call)
    from numpy._core.umath import clip as _CLIP
except ImportError:  # numpy < 2
    from numpy.core.umath import clip as _CLIP


def to_codes(
    scaled,
    zero_point,
    qmin: int,
    qmax: int,
    mode: str,
    zero_point_after_rounding: bool = False,
    integral_zp=False,
    out=None,
):
    """Integer codes of values already divided by their scale, clipped to [qmin, qmax].

    QONNX Quant rounds ``scaled + zero_point``; ONNX QuantizeLinear (and the QLinear* ops)
    round ``scaled`` and add the zero point after (``zero_point_after_rounding``). With an
    odd zero point the two differ on exact ties. ``integral_zp``: the caller knows every zero
    point is an integer; then the codes are in range without the final clip (every rounding
    mode is monotone and keeps integers, so a value clipped to integer bounds rounds within
    them). ``out``: every step written into it (an array of the result's shape and dtype; may
    be ``scaled``), else into new arrays.
    """
    if zero_point_after_rounding:
        codes = round_mode(_CLIP(scaled, qmin - zero_point, qmax - zero_point, out=out), mode, out)
        codes = np.add(codes, zero_point, out=out)
    else:
        codes = round_mode(_CLIP(np.add(scaled, zero_point, out=out), qmin, qmax, out=out), mode, out)
    return codes if integral_zp else _CLIP(codes, qmin, qmax, out=out)


def qrange(q) -> tuple:
    """(qmin, qmax) of a quantization type (an IR QType or its JSON form)."""
    if q.bipolar:
        return -1, 1
    narrow = 1 if q.narrow else 0
    if q.signed:
        return -(1 << (q.bits - 1)) + narrow, (1 << (q.bits - 1)) - 1
    return 0, (1 << q.bits) - 1 - narrow


def _per_channel(v: np.ndarray, n: int) -> np.ndarray:
    v = np.asarray(v)
    return np.broadcast_to(v, (n,)) if v.size == 1 else v


#: integers of magnitude below these are exact in float64 / float32
FLOAT64_EXACT = 1 << 53
FLOAT32_EXACT = 1 << 24
#: largest lookup table, or number of buckets, a prepared threshold requantizer builds (a
#: plan lives as long as its op: at most a few 4 MB tables per threshold layer)
LUT_ENTRIES = 1 << 19
#: most distinct thresholds per bucket a bucketed threshold search compares against
MAX_COMPARES = 4


def _compact(v: np.ndarray):
    """A per-channel vector as one scalar of its dtype when all its entries are equal (numpy's
    broadcasting of a short trailing vector is several times slower than a scalar)."""
    return v.reshape(-1)[0] if v.size and np.all(v == v.reshape(-1)[0]) else v


def _widen(a: np.ndarray, channels: int):
    """``a`` (channel axis last) as (rows, k * channels), k consecutive rows side by side, and k.

    numpy broadcasts a short per-channel vector over a trailing axis several times slower than
    over a long one; with k rows folded into one, element (r, i) is still channel
    i % channels, so the same per-channel vector tiled k times gives the same elementwise
    results (k: a power of two dividing the number of rows, up to about 1024 elements).
    """
    channels = max(1, channels)
    rows = a.size // channels
    k = 1
    while k * channels < 1024 and rows % (2 * k) == 0:
        k *= 2
    return a.reshape(rows // k, k * channels), k


#: the largest temporary kept for reuse, per role and thread
SCRATCH_MAX_BYTES = 64 << 20
#: the most scratch views remembered per thread (see _Scratch.views)
VIEWS_KEPT = 64


def _count(shape) -> int:
    """The number of elements of ``shape`` (Python integers: np.prod costs microseconds)."""
    n = 1
    for d in shape:
        n *= int(d)
    return n


class _Scratch(threading.local):
    """Reusable temporaries by role, one set per thread.

    The interpreter's large temporaries (a padded input, a window matrix, a product matrix)
    are taken from here instead of being allocated per op: freeing and reallocating arrays of
    megabytes makes the C allocator return the memory to the system and fault it back in page
    by page on the next op (measured: half the time of a small CNN's batch). A buffer never
    outlives the op that takes it: nothing taken from here is returned or kept.
    """

    def __init__(self) -> None:
        self.buffers: dict = {}
        #: the arrays taken, by (role, shape, dtype): the same again is most common (the
        #: same op on the next batch of the same size); views of a role's buffer, or of the
        #: smaller one it replaced (kept alive by the view: at most VIEWS_KEPT of them)
        self.views: dict = {}
        #: where the running op's output may go: a dict {tensor name: buffer} kept for one
        #: graph, and the tensor's name; set by the interpreter for outputs that never leave
        #: a run (see ``output``)
        self.slot = None

    def take(self, role: str, shape: tuple, dtype) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype`` (contents undefined) for ``role``."""
        key = (role, shape, dtype)
        view = self.views.get(key)
        if view is not None:
            return view
        dt = np.dtype(dtype)
        size = _count(shape) * dt.itemsize
        if size > SCRATCH_MAX_BYTES:  # not kept: its allocation is small beside its use
            return np.empty(shape, dtype=dt)
        buf = self.buffers.get(role)
        if buf is None or buf.nbytes < size:
            buf = self.buffers[role] = np.empty(max(size, 1), dtype=np.uint8)
        view = buf[:size].view(dt).reshape(shape)
        if len(self.views) >= VIEWS_KEPT:
            self.views.clear()
        self.views[key] = view
        return view

    def output(self, shape: tuple, dtype) -> np.ndarray:
        """An array for an op's output: the buffer its tensor had in the graph's last run when
        the interpreter has opened a slot for it (taken once: a second array the op asks for
        is new), else a new array."""
        slot, self.slot = self.slot, None
        if slot is None:
            return np.empty(shape, dtype=dtype)
        arena, name = slot
        buf = arena.get(name)
        if buf is not None and buf.shape == tuple(shape) and buf.dtype == dtype:
            return buf
        dtype = np.dtype(dtype)
        if _count(shape) * dtype.itemsize > SCRATCH_MAX_BYTES:
            return np.empty(shape, dtype=dtype)
        buf = arena[name] = np.empty(shape, dtype=dtype)
        return buf


SCRATCH = _Scratch()


#: elements per block of a requantizer's work: a block's temporaries stay in cache (measured
#: 2x faster than whole-tensor passes on 737,280 accumulators)
BLOCK = 1 << 15


def _in_blocks(fn, wide: np.ndarray, dtype=np.int64, tiled=None, k: int = 1) -> np.ndarray:
    """``fn(block, out, *constants)`` (elementwise along rows, writing its result into
    ``out``) applied to blocks of rows of the 2-D ``wide`` (``k`` rows folded into one by
    :func:`_widen`); the result in ``dtype``. The constants are ``tiled``'s, as arrays of the
    block's shape (see :class:`_Tiled`)."""
    rows, width = wide.shape
    step = max(1, BLOCK // max(1, width))
    out = SCRATCH.output(wide.shape, dtype)
    consts = () if tiled is None else tiled(k, min(step, rows))
    if rows <= step:  # one block
        fn(wide, out, *consts)
        return out
    for s in range(0, rows, step):
        blk = wide[s : s + step]
        n = blk.shape[0]
        fn(blk, out[s : s + step], *(c[:n] if np.ndim(c) == 2 and n < step else c for c in consts))
    return out


def _clip(x, lo, hi, out) -> None:
    """``out = min(max(x, lo), hi)``, elementwise, for bounds that are both scalars or both
    per-element vectors (see :func:`_bounds`).

    numpy's clip ufunc for scalar bounds; np.maximum / np.minimum for vectors (measured on
    23,552 elements, numpy 2: the clip ufunc 3 us with scalars and 25 us with vectors;
    np.maximum and np.minimum 9 us each with a scalar, under 5 us with a vector)."""
    if not (isinstance(lo, np.ndarray) and lo.ndim) and not (isinstance(hi, np.ndarray) and hi.ndim):
        _CLIP(x, lo, hi, out=out)
    else:
        np.maximum(x, lo, out=out)
        np.minimum(out, hi, out=out)


def _bounds(lo, hi) -> tuple:
    """Clip bounds for :func:`_clip`: both compacted to scalars when each is one value, else
    both per-channel vectors (a scalar against a vector broadcast to it)."""
    lo, hi = _compact(np.asarray(lo)), _compact(np.asarray(hi))
    if np.ndim(lo) == np.ndim(hi):
        return lo, hi
    shape = np.shape(hi) if np.ndim(lo) == 0 else np.shape(lo)
    return np.broadcast_to(lo, shape).copy(), np.broadcast_to(hi, shape).copy()


def _relaxed_bounds(lo: np.ndarray, hi: np.ndarray, reach_lo, reach_hi) -> tuple:
    """Per-channel clip bounds (int64) made one value each where the values cannot tell:
    every lo_c replaced by L = min lo when, for each channel, lo_c = L or no value of the
    channel lies below lo_c (``reach_lo[c] >= lo_c``): then max(y, L) = max(y, lo_c); hi
    likewise with H = max hi. Either side is left as it was otherwise."""
    low, high = int(lo.min()), int(hi.max())
    if all(int(b) == low or int(r) >= int(b) for b, r in zip(lo, reach_lo)):
        lo = np.full_like(lo, low)
    if all(int(b) == high or int(r) <= int(b) for b, r in zip(hi, reach_hi)):
        hi = np.full_like(hi, high)
    return lo, hi


def _floor_clip(y, lo, hi, out) -> None:
    """``out = clip(floor(y), lo, hi)`` for float ``y`` (changed) and integer ``lo``, ``hi``
    (from :func:`_bounds`): the codes, integers in [lo, hi], exact in ``out``'s dtype
    (float32 or int64).

    The clip after the cast, on the narrower float32 when that is the output (a float64
    integer below 2**24 in magnitude, or beyond it clipped to such bounds, casts to the
    float32 of the same order, and the bounds are exact in float32: the same codes); a
    separate cast (measured: faster than a ufunc casting its output)."""
    np.floor(y, out=y)
    if out.dtype == np.float32:
        np.copyto(out, y, casting="same_kind")
        y = out
    _clip(y, lo, hi, y)
    if y is not out:
        np.copyto(out, y, casting="unsafe")


def _codes_dtype(lo, hi):
    """float32 for codes whose every value in [min lo, max hi] is exact in it (the
    interpreter's integer tensors may be held as float32: see ``interpreter.evaluate_ops``),
    else int64."""
    bound = max((abs(int(v)) for v in np.concatenate([np.ravel(lo), np.ravel(hi)])), default=0)
    return np.float32 if bound < FLOAT32_EXACT else np.int64


#: the most shapes of constants a _Tiled keeps
TILED_KEPT = 4


class _Tiled:
    """Per-channel vectors tiled for :func:`_widen` (scalars and None stay as they are),
    once per k; with ``rows``, as contiguous arrays of ``rows`` such rows.

    numpy's arithmetic between an array and a vector broadcast over its rows costs about
    twice that between two contiguous arrays of the same shape (measured on 23,552 float64
    elements, numpy 2: 8.5 us against 4.4 us; 3 us with a scalar): the full arrays are
    worth their memory (a block's worth per constant, see :func:`_in_blocks`; at most
    ``TILED_KEPT`` shapes are kept, the batch sizes of a graph's recent runs).
    """

    def __init__(self, *vectors) -> None:
        self.vectors, self.by_k = vectors, {}

    def __call__(self, k: int, rows: int | None = None) -> tuple:
        got = self.by_k.get((k, rows))
        if got is None:
            got = tuple(v if np.ndim(v) == 0 or k == 1 else np.tile(v, k) for v in self.vectors)
            if rows is not None:
                got = tuple(
                    v if np.ndim(v) == 0 else np.ascontiguousarray(np.broadcast_to(v, (rows, v.size))) for v in got
                )
            if len(self.by_k) >= TILED_KEPT:
                self.by_k.clear()
            self.by_k[(k, rows)] = got
        return got


def _broadcast(v, channels: int):
    """A scalar, or a per-channel vector of ``channels`` entries (a one-entry vector repeated)."""
    v = np.asarray(v)
    if v.ndim == 0:
        return v[()]
    return np.broadcast_to(v, (channels,)) if v.size == 1 else v


def _loop_thresholds(acc, T, b, d, step):
    """The per-channel reference loop (unsorted or astronomically spread thresholds only)."""
    out = np.empty(acc.shape, dtype=np.int64)
    for c in range(acc.shape[-1]):
        tc = T[c] if T.shape[0] > 1 else T[0]
        out[..., c] = b[c] + step * np.searchsorted(tc, d[c] * acc[..., c], side="right")
    return out


def _blocks(widths, k: int):
    """Start of each channel's block of keys (multiples of 2**k) and the total key range."""
    starts, pos = [], 0
    for w in widths:
        starts.append(pos)
        pos = ((pos + w + (1 << k) - 1) >> k) << k
    return starts, pos


def _narrowest_slope(u: np.ndarray, slope: float) -> tuple:
    """(a, spread): the slope a, near ``slope``, that minimises the spread of
    a * p - count(U <= p) over the distinct thresholds U and the values just below them (a
    maximum of linear functions of a minus a minimum of them, convex, so a ternary search
    finds it), and that spread. (Only a candidate: whatever line results is checked in
    float32 at every threshold.)"""
    points = np.concatenate([u, u - 1]).astype(np.float64)
    counts = np.searchsorted(u, points, side="right")

    def spread(a: float) -> float:
        d = points * a - counts
        return float(d.max() - d.min())

    lo, hi = slope / 2, slope * 2
    for _ in range(40):  # (the bracket shrinks to 1e-7 of itself)
        a1, a2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        if spread(a1) < spread(a2):
            hi = a2
        else:
            lo = a1
    best = (lo + hi) / 2
    return best, spread(best)


class _Estimate:
    """count(T_c <= v) from an affine estimate, corrected by comparisons.

    Over channel c's distinct thresholds U_1 < ... < U_M (the count of T_c <= v is the
    number of thresholds at the distinct ones <= v: a table), the estimate
    ``e(v) = clip(trunc(v * a_c + b_c), 0, M)`` (in float32, from v in float64: every
    integer accumulator converts to float64, then float32, by rounding; the row offset of
    channel c is folded into b_c and the clip bounds) is non-decreasing in v, as the count
    u(v) of distinct thresholds <= v is: every step (the roundings, the product with
    a_c >= 0, the sum, trunc, clip) is monotone. If e - u lies in [lo, hi] at every U_i and
    U_i - 1, it does for every v: between two distinct thresholds t < t', u is constant and
    e lies between e(t) and e(t' - 1); below the first and from the last on, the clip and
    monotonicity bound it likewise. With e - u in {0, 1} (the estimate raised by half a
    level or so, tried first), u = e - [v < U_e]; with e - u in {-1, 0, 1},
    u = e - [v < U_e] + [v >= U_(e+1)] (U_0 = -inf, U_(M+1) = +inf), read from tables
    indexed by the row offset plus e. This is checked once, at every threshold, with the
    same float operations the runtime uses (numpy applies them element by element, the same
    whatever the layout). The thresholds are below 2**53 - 1 in magnitude, so comparing them
    in float64 to an accumulator (float, or int64 rounded to float64: monotone, and U and
    U - 1 are exact) gives the integer comparison.

    With a bound on |v| (``acc_bound``), the clip is replaced by guard entries: each row is
    extended on both sides by copies of its first and last entries, as far as trunc(v * a_c
    + b_c) reaches for |v| <= acc_bound (computed with the same operations at the two ends;
    monotone, so no v in between reaches further): reading a copy is reading the clipped
    index. Six to nine passes over the accumulator, against the bucketed search's gathers
    from tables of megabytes.
    """

    #: the most guard entries a row may need on either side, and the most entries of all
    #: rows with their guards (a plan lives as long as its op; as for LUT_ENTRIES)
    MAX_GUARD = 1 << 14
    MAX_GUARDED_ENTRIES = LUT_ENTRIES

    @classmethod
    def build(cls, T, base, step: int, channels: int, negate, acc_bound=None):
        """The estimate for sorted int64 thresholds ``T`` (one row per channel, or one shared
        row) of the accumulator times ``negate`` (the directions, or None), or None when it
        does not hold or the thresholds are too large."""
        if T.shape[0] not in (1, channels) or int(np.abs(T).max()) >= FLOAT64_EXACT - 1:
            return None
        rows = [np.unique(t, return_counts=True) for t in np.broadcast_to(T, (channels, T.shape[1]))]
        # the line through the second and the last but one distinct thresholds first (the
        # first and last levels are often cut short by the clipped range), then through the
        # first and the last; one comparison first, then two
        candidates = [(bounds, inner) for bounds in ((0, 1), (-1, 1)) for inner in (True, False)]
        for (low, high), inner in candidates:
            self = cls._fit(rows, channels, inner, low, high, acc_bound)
            if self is not None:
                break
        else:
            return None
        size = channels * self.width
        self.t_lo, self.t_hi = np.full(size, np.inf), np.full(size, np.inf)
        codes = np.zeros(size, dtype=np.int64)
        base = _per_channel(base, channels)
        for c, (u, counts) in enumerate(rows):
            m, row = len(u), c * self.width + self.guard
            start, end = row - self.guard, (c + 1) * self.width
            self.t_lo[start : row + 1] = -np.inf  # (left guards: copies of entry 0)
            self.t_lo[row + 1 : row + m + 1] = u
            self.t_lo[row + m + 1 : end] = u[-1]  # (right guards: copies of entry M)
            self.t_hi[start:row] = u[0]
            self.t_hi[row : row + m] = u
            level = base[c] + step * np.concatenate([[0], np.cumsum(counts)])
            codes[start:row] = level[0]
            codes[row : row + m + 1] = level
            codes[row + m + 1 : end] = level[-1]
        self.out_dtype = _codes_dtype(codes.min(), codes.max())
        self.codes = codes.astype(self.out_dtype)  # base + step * count(T_c <= U_u) at row + u
        self.tiled = _Tiled(_compact(self.a), _compact(self.b), self.lo, self.hi, negate)
        return self

    @classmethod
    def _fit(cls, rows, channels: int, inner: bool, low: int, high: int, acc_bound, narrowest: bool = False):
        """The estimate for e - u in [low, high], or None. The line is raised so that its
        distance to the count at the thresholds (before trunc) is centred in
        [low, high + 1): trunc then lands in [low, high] with the widest margin. With
        ``narrowest``, its slope is the one that makes that distance's spread least (see
        :func:`_narrowest_slope`)."""
        self = cls()
        self.one_sided = low == 0
        ms = [len(u) for u, _ in rows]
        slope, offset = np.zeros(channels), np.zeros(channels)
        for c, (u, _) in enumerate(rows):
            m = ms[c]
            i0, i1 = (1, m - 2) if inner and m > 3 else (0, m - 1)
            span = float(u[i1] - u[i0])
            slope[c] = (i1 - i0) / span if span > 0 else 0.0
            if narrowest and slope[c] > 0:
                slope[c], spread = _narrowest_slope(u, slope[c])
                if spread >= high - low + 1:  # no line fits this channel: stop early
                    return None
            offset[c] = i0 + 1.0 - float(u[i0]) * slope[c]  # e(U_i) ~ i
            points = np.concatenate([u, u - 1])
            d = points * slope[c] + offset[c] - np.searchsorted(u, points, side="right")
            offset[c] += (low + high + 1) / 2 - (d.max() + d.min()) / 2
        self.guard, self.width = 0, max(ms) + 2
        if acc_bound is not None:  # the guards the unshifted estimate needs, and a margin
            ends = np.array([-float(acc_bound), float(acc_bound)])
            reach = [
                self._index(ends, np.float32(slope[c]), np.float32(offset[c]), None, None) for c in range(channels)
            ]
            self.guard = max(0, *(max(-int(r[0]), int(r[1]) - m) for r, m in zip(reach, ms))) + 2
            if self.guard > cls.MAX_GUARD or channels * (max(ms) + 2 + 2 * self.guard) > cls.MAX_GUARDED_ENTRIES:
                self.guard = 0
            self.width = max(ms) + 2 + 2 * self.guard
        rows_at = np.arange(channels) * self.width + self.guard
        self.a = slope.astype(np.float32)
        self.b = (offset + rows_at).astype(np.float32)
        lo, hi = rows_at.astype(np.float32), (rows_at + np.array(ms)).astype(np.float32)
        for c, (u, _) in enumerate(rows):
            points = np.concatenate([u, u - 1]).astype(np.float64)
            e = self._index(points, self.a[c], self.b[c], lo[c], hi[c]) - rows_at[c]
            error = e - np.searchsorted(u, points, side="right")
            if error.min() < low or error.max() > high:
                return None
            if self.guard:  # the shifted estimate within its guards at both ends of |v|
                r = self._index(np.array([-float(acc_bound), float(acc_bound)]), self.a[c], self.b[c], None, None)
                if r[0] < rows_at[c] - self.guard or r[1] >= (c + 1) * self.width:
                    return None
        self.lo, self.hi = (None, None) if self.guard else (_compact(lo), _compact(hi))
        return self

    @staticmethod
    def _index(v, a, b, lo, hi):
        if v.dtype.kind != "f":
            v = v.astype(np.float64)  # (then to float32: the same two roundings as for floats)
        y = np.multiply(v, a, dtype=np.float32)
        y += b
        if lo is not None:
            _clip(y, lo, hi, y)
        return y.astype(np.intp)

    def __call__(self, v, k: int):
        mode = "clip"  # (every index is in range: clipped, or within the guards; and numpy
        # buffers a gather into ``out`` in its default mode)

        def codes(blk, out, *tiled):
            *tiled, negate = tiled
            if negate is not None:
                blk = blk * negate
            idx = self._index(blk, *tiled)
            if not self.one_sided:
                above = blk >= np.take(self.t_hi, idx, mode=mode)
            idx -= blk < np.take(self.t_lo, idx, mode=mode)
            if not self.one_sided:
                idx += above
            np.take(self.codes, idx, out=out, mode=mode)

        return _in_blocks(codes, v, self.out_dtype, self.tiled, k)


#: the most distinct thresholds per row for which _AffineCodes searches the narrowest line
NARROWEST_MAX_LEVELS = 32


class _AffineCodes:
    """Codes base_c + step * count(T_c <= v) with the count an exact affine estimate: no
    table, no gather.

    When every row's thresholds are distinct (one level each) and the estimate of
    :class:`_Estimate` is exact at every threshold and the value below it (error bounds
    [0, 0], checked with the same float32 operations), it is exact for every v (the monotone
    argument of :class:`_Estimate`, the clip covering both ends): the count is
    trunc(clip(v * a_c + b_c)) - r_c, r_c the row's offset folded into b_c and the clip. The
    codes step * trunc(...) + (base_c - step * r_c) are then computed in float32, exact while
    every such integer is below 2**24 in magnitude (checked): a handful of passes over the
    accumulator (measured 3x faster than the lookup table's clip, cast and gather).

    With ``acc_range`` (least and greatest accumulator of each channel), thresholds at or
    below the least are counted by every accumulator (their levels join the base) and those
    above the greatest by none (dropped): the same codes over the range, and often the
    repeats that thresholds clipped to the range have gone.
    """

    @classmethod
    def build(cls, T, base, step: int, channels: int, acc_range=None):
        """The codes for sorted int64 thresholds ``T`` (one row per channel, or one shared row)
        of a non-negated accumulator, or None when no exact estimate exists."""
        if T.shape[0] not in (1, channels) or int(np.abs(T).max()) >= FLOAT32_EXACT:
            return None
        full = np.broadcast_to(T, (channels, T.shape[1]))
        base = np.array(_per_channel(base, channels), dtype=np.int64)
        if acc_range is not None:
            least, greatest = (np.array(v, dtype=object) for v in acc_range)
            base = base + step * np.array([int((t <= a).sum()) for t, a in zip(full, least)], dtype=np.int64)
            full = [t[(t > a) & (t <= b)] for t, a, b in zip(full, least, greatest)]
        if any(len(t) == 0 for t in full):
            return None
        rows = [np.unique(t, return_counts=True) for t in full]
        if any(int(counts.max()) > 1 for _, counts in rows):
            return None
        # (the narrowest line only for up to NARROWEST_MAX_LEVELS levels: its search costs a
        # millisecond a row at 255, where no fixture model's rows fit exactly)
        few = max(len(u) for u, _ in rows) <= NARROWEST_MAX_LEVELS
        for inner, narrowest in ((True, False), (False, False), (False, True))[: 3 if few else 2]:
            fit = _Estimate._fit(rows, channels, inner, 0, 0, None, narrowest)
            if fit is not None:
                break
        else:
            return None
        rows_at = np.arange(channels) * fit.width
        offsets = base - step * rows_at
        ends = [int(offsets.min()), int(offsets.max()), step * (channels * fit.width), int(fit.b.max())]
        if max(abs(v) for v in ends) + abs(step) * channels * fit.width >= FLOAT32_EXACT:
            return None
        self = cls()
        self.step = step
        self.tiled = _Tiled(
            _compact(fit.a), _compact(fit.b), *_bounds(fit.lo, fit.hi), _compact(offsets.astype(np.float32))
        )
        return self

    def __call__(self, blk, out, a, b, lo, hi, offsets) -> None:
        if blk.dtype.kind != "f":
            blk = blk.astype(np.float64)  # (then to float32: the roundings the fit checked)
        np.multiply(blk, a, out=out, dtype=np.float32)  # (as in _Estimate._index)
        out += b
        _clip(out, lo, hi, out)
        np.trunc(out, out=out)
        if self.step != 1:
            out *= self.step
        out += offsets


class PreparedThresholds:
    """A threshold requantizer prepared once for ``channels`` channels (channel axis last).

    Every channel c's thresholds lie in [lo_c, hi_c] (their first and last, sorted), so
    count(T_c <= v) is unchanged when v is clipped to [lo_c - 1, hi_c]: below lo_c it is 0
    either way, from hi_c on it is L. After clipping, ``u = v - (lo_c - 1)`` lies in
    [0, W_c] (W_c = hi_c - lo_c + 1) and channel c's block of keys starts at
    ``start_c >= sum_{c' < c} (W_c' + 1)`` (rounded up to a multiple of the bucket width for
    the bucketed search): the blocks are disjoint and ascending, so one
    sorted array of every channel's shifted thresholds serves all channels with one
    ``np.searchsorted``, whose right-side count in channel c's block is the c * L thresholds
    of the earlier blocks (all below start_c) plus count(T_c <= v). When the total key range
    is small, a table of the final codes indexed by the key replaces the search (the table
    is filled by the same count, channel by channel, once). All key arithmetic is int64 and
    its range is checked against 2**62 in Python integers; unsorted thresholds (never
    produced by the compiler) fall back to the per-channel loop.
    """

    def __init__(
        self,
        thresholds,
        base,
        direction,
        step: int,
        channels: int,
        lut_entries: int = LUT_ENTRIES,
        acc_bound=None,
        acc_range=None,
    ):
        # shared thresholds (one row) stay one block whose lo, hi and shift broadcast over
        # the channels
        T = np.asarray(thresholds, dtype=np.int64)
        self.T, self.step, self.channels = T, int(step), channels
        self.b = _per_channel(np.asarray(base, dtype=np.int64), channels)
        self.d = _per_channel(np.asarray(direction, dtype=np.int64), channels)
        self.negate = None if np.all(self.d == 1) else self.d
        self.mode = "loop"
        L = T.shape[1]
        if L == 0:
            self.mode = "const"
            return
        if not np.all(np.diff(T, axis=1) >= 0):
            return
        lo = [int(t) - 1 for t in T[:, 0]]
        hi = [int(t) for t in T[:, -1]]
        if min(lo) < -(1 << 63):
            return
        widths = [h - lo_c + 1 for lo_c, h in zip(lo, hi)]  # W_c + 1 keys per block
        # the bucket exponent k: the smallest whose table of (total key range) / 2**k buckets
        # fits (0: a lookup table); when that is not 0, as large as the smallest gap between
        # distinct thresholds of a row allows (buckets of 2**k <= that gap hold one distinct
        # threshold each: one compare, and the smallest tables)
        k, (starts, total) = 0, _blocks(widths, 0)
        while (total >> k) > lut_entries and k < 61:
            k += 1
            starts, total = _blocks(widths, k)
        gaps = np.diff(T, axis=1)
        gaps = gaps[gaps > 0]
        k_gap = min(int(gaps.min()).bit_length() - 1 if gaps.size else 40, 40)
        # (a lookup table that fits is preferred: one gather; measured 2-5x faster)
        if k > 0 and k_gap > k and _blocks(widths, k_gap)[1] < 1 << 62:
            k = k_gap
            starts, total = _blocks(widths, k)
        if total >= 1 << 62:  # aligned blocks too spread: unaligned blocks, searched
            k, (starts, total) = 0, _blocks(widths, 0)
            if total >= 1 << 62:
                return
        self.lo = _compact(np.array(lo, dtype=np.int64))
        self.hi = _compact(np.array(hi, dtype=np.int64))
        # key = clip(v, lo_c, hi_c) + shift_c with shift_c = start_c - lo_c, in [start_c,
        # start_c + W_c]; |shift_c| < 2**63 and the key < 2**62, checked in Python integers
        shift = [s - lo_c for s, lo_c in zip(starts, lo)]
        if any(abs(x) >= 1 << 62 for x in shift):
            return
        self.shift = _compact(np.array(shift, dtype=np.int64))
        # the base is folded into a table when every channel uses the table's block and base
        self.fold = T.shape[0] == channels or bool(np.all(self.b == self.b[0]))
        self.affine = _AffineCodes.build(T, self.b, self.step, channels, acc_range) if self.negate is None else None
        if self.affine is not None:
            self.mode = "affine"
            return
        if not (k == 0 and total <= lut_entries):  # no lookup table: an estimate, if it holds
            self.estimate = _Estimate.build(T, self.b, self.step, channels, self.negate, acc_bound)
            if self.estimate is not None:
                self.mode = "estimate"
                return
        if k == 0 and total <= lut_entries:
            table = np.empty(total, dtype=np.int64)
            for c in range(T.shape[0]):
                keys = np.arange(lo[c], hi[c] + 1, dtype=np.int64)
                fill = self.step * np.searchsorted(T[c], keys, "right")
                table[starts[c] : starts[c] + widths[c]] = fill + (self.b[c] if self.fold else 0)
            self.table = table
            self.mode = "lut"
            # float accumulators clipped and shifted in float (the bounds, shifts and keys
            # below 2**24: exact in float32, so in either float type), then one gather
            # from the table of the codes in their own type
            limit = max(abs(int(x)) for x in (*lo, *hi, *shift, total))
            if self.fold and limit < FLOAT32_EXACT:
                self.codes = table.astype(_codes_dtype(table.min(), table.max()))
                lo_f, hi_f, shift_f = (_broadcast(np.asarray(v, dtype=np.float32), channels)
                                       for v in (self.lo, self.hi, self.shift))  # fmt: skip
                self.float_keys = _Tiled(*_bounds(lo_f, hi_f), shift_f)
            return
        flat = (T + np.array(shift, dtype=np.int64)[:, None]).reshape(-1)  # ascending: the blocks are disjoint
        before = np.arange(T.shape[0], dtype=np.int64) * L
        if k == 0 or not self._buckets(flat, before, np.array(starts, dtype=np.int64), total, k):
            self.flat, self.before = flat, before
            self.mode = "search"

    @property
    def tiled(self) -> _Tiled:
        if "_tiled" not in self.__dict__:
            lo, hi, shift = (_broadcast(v, self.channels) for v in (self.lo, self.hi, self.shift))
            before = _broadcast(getattr(self, "before", np.int64(0)), self.channels)
            negate = None if self.negate is None else self.negate
            self._tiled = _Tiled(negate, lo, hi, shift, self.b, before)
        return self._tiled

    def _buckets(self, flat, before, starts, total: int, k: int) -> bool:
        """Bucketed search: bucket j holds the keys [j * 2**k, (j + 1) * 2**k).

        Every block starts at a multiple of 2**k, so a bucket lies in one channel's block.
        With at most ``MAX_COMPARES`` distinct threshold keys t_i[j] (multiplicity m_i[j]) in
        bucket j, the right-side count of a key in bucket j is (thresholds below the bucket)
        + sum_i m_i[j] * (key >= t_i[j]); the count below the bucket, the block's earlier
        thresholds, the base and the step are folded into one table. Empty slots hold a key
        past the bucket (never reached).
        """
        uniq, mult = np.unique(flat, return_counts=True)
        bucket = uniq >> k
        rank = np.arange(uniq.size) - np.searchsorted(bucket, bucket, side="left")
        compares = int(rank.max()) + 1
        if compares > MAX_COMPARES:
            return False
        nb = (total >> k) + 1
        first = np.arange(nb, dtype=np.int64) << k
        block = np.searchsorted(starts, first, side="right") - 1
        below = np.searchsorted(flat, first, side="left") - before[block]
        self.base_tab = self.step * below + (_per_channel(self.b, len(starts))[block] if self.fold else 0)
        self.t_tabs, self.inc_tabs = [], []
        for i in range(compares):
            t = first + (1 << k)  # past the bucket
            inc = np.zeros(nb, dtype=np.int64)
            sel = rank == i
            t[bucket[sel]] = uniq[sel]
            inc[bucket[sel]] = self.step * mult[sel]
            self.t_tabs.append(t)
            self.inc_tabs.append(inc)
        self.k = k
        self.mode = "bucket"
        return True

    def __call__(self, acc) -> np.ndarray:
        """Codes of an accumulator (integer-valued; int64, or float holding integers)."""
        v = np.asarray(acc)
        if self.mode == "const":
            return np.broadcast_to(self.b, v.shape).astype(np.int64)
        if self.mode == "affine":
            shape = v.shape
            v, k = _widen(v, self.channels)
            return _in_blocks(self.affine, v, np.float32, self.affine.tiled, k).reshape(shape)
        if v.dtype.kind == "f" and "float_keys" in self.__dict__ and self.negate is None:
            shape = v.shape
            v, k = _widen(v, self.channels)

            def lookup(blk, out, lo, hi, shift):
                key = SCRATCH.take("key", blk.shape, blk.dtype)
                _clip(blk, lo, hi, key)
                key += shift
                np.take(self.codes, key.astype(np.intp), out=out)

            return _in_blocks(lookup, v, self.codes.dtype, self.float_keys, k).reshape(shape)
        if v.dtype != np.int64 and self.mode != "estimate":
            v = v.astype(np.int64)  # integer-valued floats below 2**53: exact
        if self.mode == "loop":
            return _loop_thresholds(v * self.d, self.T, self.b, np.ones_like(self.d), self.step)
        shape = v.shape
        v, k = _widen(v, self.channels)
        if self.mode == "estimate":
            return self.estimate(v, k).reshape(shape)
        return _in_blocks(
            lambda blk, out, *c: np.copyto(out, self._codes(blk, *c)), v, np.int64, self.tiled, k
        ).reshape(shape)

    def _codes(self, v, negate, lo, hi, shift, b, before):
        if negate is not None:
            v = v * negate
        key = np.empty(v.shape, dtype=np.result_type(v, lo, hi))
        _clip(v, lo, hi, key)
        key += shift
        if self.mode == "lut":
            out = self.table[key]
        elif self.mode == "bucket":
            j = key >> self.k
            out = self.base_tab[j]
            for t, inc in zip(self.t_tabs, self.inc_tabs):
                out += inc[j] * (key >= t[j])
        else:
            out = np.searchsorted(self.flat, key, side="right")
            out -= before
            if self.step != 1:
                out *= self.step
        if not self.fold or self.mode == "search":
            out += b
        return out


class PreparedMultiplyShift:
    """A multiply-shift requantizer prepared once, given a bound on |acc|.

    When ``acc_bound * max|multiplier| + max|offset| < 2**53`` every intermediate of
    ``direction * acc * multiplier + offset`` is an integer below 2**53, exact in float64
    (products and sums of exact integers whose result is representable are exact);
    scaling by 2**-shift only changes the exponent (shift < 1000: the lowest bit of such an
    integer moved stays above float64's smallest subnormal 2**-1074) and ``floor`` of that
    quotient is the arithmetic shift ``>> shift``.
    Beyond the bound, or with no bound, the int64 formula is used.

    ``acc_range``: (least, greatest) accumulator per channel, when known; the result is
    monotone in the accumulator, so its values lie between those at the two ends, and clip
    bounds they never cross are made one value (see :func:`_relaxed_bounds`: a scalar clip
    is one fast pass, per-channel bounds two).
    """

    def __init__(
        self, multiplier, offset, shift: int, lo, hi, direction, channels: int, acc_bound=None, acc_range=None
    ):
        m = _per_channel(np.asarray(multiplier, dtype=np.int64), channels)
        d = _per_channel(np.asarray(direction, dtype=np.int64), channels)
        self.dm = d * m
        self.off = _per_channel(np.asarray(offset, dtype=np.int64), channels)
        self.shift = int(shift)
        self.lo = _per_channel(np.asarray(lo, dtype=np.int64), channels)
        self.hi = _per_channel(np.asarray(hi, dtype=np.int64), channels)
        if acc_range is not None:
            ends = [
                sorted(((int(dm) * int(a) + int(o)) >> self.shift) for a in (a_lo, a_hi))
                for dm, o, a_lo, a_hi in zip(self.dm, self.off, *acc_range)
            ]
            self.lo, self.hi = _relaxed_bounds(self.lo, self.hi, [e[0] for e in ends], [e[1] for e in ends])
        self.float, self.out_dtype = False, np.int64
        if acc_bound is not None:
            mmax = max((abs(int(x)) for x in self.dm), default=0)
            omax = max((abs(int(x)) for x in self.off), default=0)
            if int(acc_bound) * mmax + omax < FLOAT64_EXACT and self.shift < 1000:
                self.float = True
                # the scale folded into both constants: dm * 2**-shift and off * 2**-shift
                # are exact (a power of two only moves the exponent), the product
                # acc * (dm * 2**-shift) is the exact integer acc * dm moved likewise, and
                # the sum is (acc * dm + off) * 2**-shift, an integer below 2**53 moved by a
                # power of two: representable, so the rounded sum is that value exactly
                scale = 2.0**-self.shift
                self.dm_f = _compact(self.dm.astype(np.float64) * scale)
                self.off_f = _compact(self.off.astype(np.float64) * scale)
                self.out_dtype = _codes_dtype(self.lo, self.hi)
                bounds_dtype = np.float32 if self.out_dtype == np.float32 else np.float64  # (see _floor_clip)
                self.lo_f, self.hi_f = _bounds(self.lo.astype(bounds_dtype), self.hi.astype(bounds_dtype))
                self.channels = channels
                self.tiled = _Tiled(self.dm_f, self.off_f, self.lo_f, self.hi_f)
                # no shift and everything below 2**24: integer arithmetic in float32 (a clip,
                # or a rescaling by an integer, as between two activation types)
                self.small = (
                    self.shift == 0 and int(acc_bound) * mmax + omax < FLOAT32_EXACT and self.out_dtype == np.float32
                )
                if self.small:
                    self.tiled = _Tiled(
                        None if np.all(self.dm == 1) else _compact(self.dm.astype(np.float32)),
                        None if not np.any(self.off) else _compact(self.off.astype(np.float32)),
                        *_bounds(self.lo.astype(np.float32), self.hi.astype(np.float32)),
                    )

    @staticmethod
    def _codes(blk, out, dm, off, lo, hi):
        y = SCRATCH.take("requant", blk.shape, np.float64)
        np.copyto(y, blk)  # float32 -> float64 is exact (and a cast, then a product, is faster)
        y *= dm
        y += off
        _floor_clip(y, lo, hi, out)

    @staticmethod
    def _small_codes(blk, out, dm, off, lo, hi):
        np.copyto(out, blk, casting="same_kind")  # integers below 2**24: exact in float32
        if dm is not None:
            out *= dm
        if off is not None:
            out += off
        _clip(out, lo, hi, out)

    def __call__(self, acc) -> np.ndarray:
        """The codes: int64, or float32 holding them (``out_dtype``) on the float path."""
        if self.float:
            a = np.asarray(acc)
            wide, k = _widen(a, self.channels)
            fn = self._small_codes if self.small else self._codes
            return _in_blocks(fn, wide, self.out_dtype, self.tiled, k).reshape(a.shape)
        a = np.asarray(acc)
        if a.dtype != np.int64:
            a = a.astype(np.int64)
        y = a * self.dm
        y += self.off
        y >>= self.shift
        return np.clip(y, self.lo, self.hi, out=y)


def prepare_requant(rq, channels: int, acc_bound=None, lut_entries: int = LUT_ENTRIES, acc_range=None):
    """An integer requantizer (IR object or its JSON form) prepared for ``channels`` channels
    (channel axis last): a callable from the accumulator to the codes. ``acc_bound`` bounds
    |acc| (a Python integer) and lets multiply-shift run in float64 where that is exact;
    ``acc_range`` (least and greatest accumulator per channel) lets a multiply-shift drop
    clip bounds no value crosses, and thresholds those no value tells apart."""
    if rq.kind == "thresholds":
        return PreparedThresholds(
            rq.thresholds, rq.base, rq.direction, rq.step, channels, lut_entries, acc_bound, acc_range
        )
    if rq.kind == "multiply_shift":
        return PreparedMultiplyShift(
            rq.multiplier, rq.offset, rq.shift, rq.lo, rq.hi, rq.direction, channels, acc_bound, acc_range
        )
    raise ValueError(f"requantizer '{rq.kind}' is not integer")


def apply_thresholds(acc, thresholds, base, direction, step: int = 1, channel_axis: int = -1) -> np.ndarray:
    """base + step * count(direction * acc >= thresholds[c]) per channel c."""
    acc = np.moveaxis(np.asarray(acc, dtype=np.int64), channel_axis, -1)
    prepared = PreparedThresholds(thresholds, base, direction, step, acc.shape[-1], lut_entries=acc.size)
    return np.moveaxis(prepared(acc), -1, channel_axis)


def apply_multiply_shift(acc, multiplier, offset, shift: int, lo, hi, direction, channel_axis: int = -1):
    """clip((direction * acc * multiplier + offset) >> shift, lo, hi) per channel."""
    acc = np.moveaxis(np.asarray(acc, dtype=np.int64), channel_axis, -1)
    n = acc.shape[-1]
    y = (_per_channel(direction, n) * acc * _per_channel(multiplier, n) + _per_channel(offset, n)) >> int(shift)
    return np.moveaxis(np.clip(y, _per_channel(lo, n), _per_channel(hi, n)), -1, channel_axis)


def apply_requant(acc, rq, channel_axis: int = -1) -> np.ndarray:
    """Apply an integer requantizer (IR object or its JSON form, told apart by ``kind``)."""
    if rq.kind == "thresholds":
        return apply_thresholds(acc, rq.thresholds, rq.base, rq.direction, rq.step, channel_axis)
    if rq.kind == "multiply_shift":
        return apply_multiply_shift(acc, rq.multiplier, rq.offset, rq.shift, rq.lo, rq.hi, rq.direction, channel_axis)
    raise ValueError(f"requantizer '{rq.kind}' is not integer")
