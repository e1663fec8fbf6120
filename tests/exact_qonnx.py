"""An exact evaluator of QONNX models on real numbers: the reference the golden model is held to.

The qonnx executor evaluates a QONNX graph in float32, as its tensors' type says; QONNX's
``Quant`` is defined on real numbers (``clip(round(x / scale + zeropt))``), so a float32
evaluation rounds on the way and can land on the other side of a rounding tie. This
evaluator computes what the model's operators give on its constants (float32 values,
taken as the reals they denote) with no rounding at all but ``Quant``'s own:

* every ``Quant`` output is held as integer codes with a rational scale and zero point;
* every value between quantizers is held symbolically, per element an exact integer ``P``
  and per channel rationals: ``((P * a + b) * r + d)``, where ``r`` is 1 or BatchNorm's
  ``gamma / sqrt(var + eps)`` (irrational in general) and a trailing ReLU is remembered;
* a ``Quant`` of such a value finds each code from a float64 estimate and settles, in
  exact rational arithmetic (``fractions``; ``X / sqrt(V)`` against ``Y`` by comparing
  squares), every element whose estimate lies within a generous error bound of a rounding
  tie; exact ties round half to even (``ROUND``).

The operators are those of the Brevitas QONNX exports in ``tests/models`` (:data:`OPS`:
Quant, BipolarQuant, Cast and Mul of weight codes, Conv, MatMul, Gemm, BatchNormalization,
Relu, Add, AveragePool, MaxPool, ReduceMean, Flatten, Transpose; not Trunc); anything else
raises. numpy and the standard library only: nothing from accelgen.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from math import gcd

import numpy as np
import onnx
from onnx import numpy_helper

#: the op types :func:`run` evaluates
OPS = frozenset({"Quant", "BipolarQuant", "Cast", "Mul", "Conv", "MatMul", "Gemm", "BatchNormalization", "Relu",
                 "Add", "AveragePool", "MaxPool", "ReduceMean", "Flatten", "Transpose"})  # fmt: skip

#: the float64 estimate of a value is trusted when it lies farther than this, relative to
#: the sum of the magnitudes of its terms, from a rounding tie. A float64 evaluation of the
#: few operations of ``(P * a + b) * r + d`` errs by well under 1e-15 of that sum; every
#: element within 1e-9 of it is decided in exact arithmetic instead.
TRUST = 1e-9


def _fractions(values) -> np.ndarray:
    """An array of exact Fractions of the given (float32 or integer) values, same shape."""
    arr = np.asarray(values)
    out = np.empty(arr.shape, dtype=object)
    for i, v in np.ndenumerate(arr):
        out[i] = Fraction(int(v)) if arr.dtype.kind in "iub" else Fraction(float(v))
    return out


def as_float(frac) -> np.ndarray:
    """Fractions (an object array or one) as float64, each rounded to nearest."""
    frac = np.asarray(frac, dtype=object)
    return np.vectorize(float, otypes=[np.float64])(frac) if frac.size else frac.astype(np.float64)


@dataclasses.dataclass
class Codes:
    """A Quant output (or weight codes): real value ``(codes - zp) * scale``; ``scale`` and
    ``zp`` are object arrays of Fractions broadcastable to ``codes``."""

    codes: np.ndarray
    scale: np.ndarray
    zp: np.ndarray

    def centred(self) -> np.ndarray:
        assert all(z.denominator == 1 for z in self.zp.reshape(-1)), "a fractional zero point"
        return self.codes - np.vectorize(int, otypes=[np.int64])(self.zp)


@dataclasses.dataclass
class Linear:
    """A value between quantizers: ``relu?((P * a + b) * r + d)`` with ``r = g / sqrt(V)``
    (``bn = (g, V)``) or 1 (``bn = None``); per-channel Fraction arrays broadcastable to P."""

    P: np.ndarray
    a: np.ndarray
    b: np.ndarray
    d: np.ndarray
    bn: tuple | None = None
    relu: bool = False

    def estimate(self) -> tuple[np.ndarray, np.ndarray]:
        """(float64 value, sum of the magnitudes of its terms) per element."""
        p = self.P.astype(np.float64)
        a, b, d = (as_float(v) for v in (self.a, self.b, self.d))
        r = 1.0 if self.bn is None else as_float(self.bn[0]) / np.sqrt(as_float(self.bn[1]))
        value = (p * a + b) * r + d
        size = (np.abs(p * a) + np.abs(b)) * np.abs(r) + np.abs(d)
        return (np.maximum(value, 0.0) if self.relu else value), size

    def sign_minus(self, index: tuple, target: Fraction) -> int:
        """The exact sign of (the value before ReLU at ``index``) - ``target``."""
        at = {k: np.broadcast_to(getattr(self, k), self.P.shape)[index] for k in "abd"}
        x = int(self.P[index]) * at["a"] + at["b"]
        y = target - at["d"]
        if self.bn is None:
            return _sign(x - y)
        g = np.broadcast_to(self.bn[0], self.P.shape)[index]
        v = np.broadcast_to(self.bn[1], self.P.shape)[index]
        x = x * g  # compare x / sqrt(v) with y, v > 0
        if _sign(x) != _sign(y) or x == 0:
            return _sign(x) if x != 0 else -_sign(y)
        return _sign(x * x - y * y * v) * _sign(x)


def _sign(v) -> int:
    return (v > 0) - (v < 0)


def _quant_params(init: dict, node, shape_ndim: int):
    scale = _fractions(init[node.input[1]])
    zp = _fractions(init[node.input[2]])
    bits = int(init[node.input[3]])
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("rounding_mode", b"ROUND") not in (b"ROUND", "ROUND"):
        raise NotImplementedError(f"Quant rounding {attrs['rounding_mode']}")
    signed, narrow = int(attrs.get("signed", 1)), int(attrs.get("narrow", 0))
    qmin = -(1 << (bits - 1)) + narrow if signed else 0
    qmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - narrow
    if scale.ndim and scale.ndim != shape_ndim or zp.ndim and zp.ndim != shape_ndim:
        raise NotImplementedError("Quant parameters of another rank than their input")
    return scale, zp, qmin, qmax


def _quant_float(x: np.ndarray, scale, zp, qmin, qmax) -> np.ndarray:
    """Quant of float32 values: the code c rounds x / scale + zp iff x lies between
    (c - zp -+ 1/2) * scale, products exact in float64 (a float32 times a short integer)."""
    s, z = as_float(scale), as_float(zp)
    x = x.astype(np.float64)
    c = np.round(x / s + z)
    for _ in range(2):  # the float64 quotient may sit one code off: move it onto the right one
        lo, hi = (c - z - 0.5) * s, (c - z + 0.5) * s
        even = c % 2 == 0
        below = (x < lo) | ((x == lo) & ~even)
        above = (x > hi) | ((x == hi) & ~even)
        c = c - below + above
    assert np.all((x >= (c - z - 0.5) * s) & (x <= (c - z + 0.5) * s)), "code not settled"
    return np.clip(c, qmin, qmax).astype(np.int64)


def _quant_linear(v: Linear, scale, zp, qmin, qmax) -> tuple[np.ndarray, int]:
    """Codes of Quant(v): (codes, number of elements decided in exact arithmetic)."""
    value, size = v.estimate()
    s, z = as_float(scale), as_float(zp)
    t = value / s + z
    c = np.round(t)
    near = np.abs(t - (np.floor(t) + 0.5)) <= TRUST * (size / np.abs(s) + 1.0)
    s_b, z_b = np.broadcast_to(scale, t.shape), np.broadcast_to(zp, t.shape)
    for index in zip(*np.nonzero(near)):
        h = Fraction(int(np.floor(t[index]))) + Fraction(1, 2)  # the tie the estimate is near
        target = (h - z_b[index]) * s_b[index]
        # relu(v) - target: positive when target < 0, else of the sign of v - target
        side = 1 if v.relu and target < 0 else v.sign_minus(index, target)
        side *= 1 if s_b[index] > 0 else -1
        if side == 0:
            c[index] = h - Fraction(1, 2) if int(h - Fraction(1, 2)) % 2 == 0 else h + Fraction(1, 2)
        else:
            c[index] = h + Fraction(side, 2)
    return np.clip(c, qmin, qmax).astype(np.int64), int(near.sum())


def _bipolar(x) -> np.ndarray:
    """BipolarQuant's codes: +1 where x >= 0, else -1 (the sign settled exactly near 0)."""
    if isinstance(x, np.ndarray):
        return np.where(x >= 0, 1, -1).astype(np.int64)
    v = _linear_of(x)
    value, size = v.estimate()
    codes = np.where(value >= 0, 1, -1).astype(np.int64)
    for index in zip(*np.nonzero(np.abs(value) <= TRUST * (size + 1.0))):
        codes[index] = 1 if v.relu or v.sign_minus(index, Fraction(0)) >= 0 else -1
    return codes


def _conv(x: np.ndarray, w: np.ndarray, attrs: dict) -> np.ndarray:
    """Integer NCHW convolution (float64 BLAS on integers whose every partial sum is below 2**53)."""
    n, c, _, _ = x.shape
    oc, icg, kh, kw = w.shape
    group = int(attrs.get("group", 1))
    sh, sw = attrs.get("strides", (1, 1))
    dh, dw = attrs.get("dilations", (1, 1))
    pt, pl, pb, pr = attrs.get("pads", (0, 0, 0, 0))
    assert int(np.abs(x).max(initial=0)) * int(np.abs(w).max(initial=0)) * icg * kh * kw < 2**53
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))).astype(np.float64)
    win = np.lib.stride_tricks.sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]  # (n, c, oh, ow, kh, kw)
    oh, ow = win.shape[2:4]
    cols = win.reshape(n, group, icg, oh, ow, kh * kw).transpose(1, 0, 3, 4, 2, 5).reshape(group, n * oh * ow, -1)
    ocg = oc // group
    wg = w.reshape(group, ocg, icg * kh * kw).transpose(0, 2, 1).astype(np.float64)
    out = np.matmul(cols, wg)  # (group, n*oh*ow, ocg)
    return out.reshape(group, n, oh, ow, ocg).transpose(1, 0, 4, 2, 3).reshape(n, oc, oh, ow).astype(np.int64)


def _exact(t) -> np.ndarray:
    """A constant's exact values (Fractions): a float32 initializer, or quantized codes."""
    if isinstance(t, Codes):
        return t.centred().astype(object) * t.scale
    return _fractions(t)


def _channel(values: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel (axis 1) vector shaped to broadcast over an ``ndim`` tensor."""
    return values.reshape((1, -1) + (1,) * (ndim - 2)) if values.size > 1 else values.reshape(())


def _zero(shape=()) -> np.ndarray:
    return _fractions(np.zeros(shape, dtype=np.int64))


def _linear_of(t) -> Linear:
    if isinstance(t, Codes):
        return Linear(t.centred(), t.scale, _zero(), _zero())
    return t


def _product_scale(sx: np.ndarray, sw: np.ndarray, ndim: int) -> np.ndarray:
    if sx.size != 1:
        raise NotImplementedError("a per-channel scale on a layer's input")
    return _channel(sx.reshape(-1)[0] * sw.reshape(-1), ndim)


def run(model_path, x: np.ndarray) -> tuple[dict, dict]:
    """Evaluate the model on batch ``x``: ({tensor name: Codes or Linear or float array},
    {Quant output name: elements decided in exact arithmetic})."""
    model = onnx.load(str(model_path))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    env: dict = {model.graph.input[0].name: np.asarray(x, dtype=np.float32)}
    exact: dict = {}
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        ins = [env.get(name, init.get(name)) for name in node.input]
        op, out = node.op_type, node.output[0]
        if op == "Cast" and node.input[0] in init:
            codes = init[node.input[0]]
            assert np.array_equal(codes, np.rint(codes)), node.name
            env[out] = Codes(codes.astype(np.int64), _fractions(np.ones(())), _zero())
        elif op == "Mul" and isinstance(ins[0], Codes) and node.input[1] in init:
            env[out] = Codes(ins[0].codes, ins[0].scale * _fractions(ins[1]), ins[0].zp)
        elif op == "Quant":
            ndim = np.ndim(ins[0].codes if isinstance(ins[0], Codes) else getattr(ins[0], "P", ins[0]))
            scale, zp, qmin, qmax = _quant_params(init, node, ndim)
            if isinstance(ins[0], np.ndarray):
                env[out] = Codes(_quant_float(ins[0], scale, zp, qmin, qmax), scale, zp)
            else:
                codes, exact[out] = _quant_linear(_linear_of(ins[0]), scale, zp, qmin, qmax)
                env[out] = Codes(codes, scale, zp)
        elif op == "Conv":
            xq, wq = ins[0], ins[1]
            P = _conv(xq.centred(), wq.centred(), attrs)
            bias = _channel(_exact(ins[2]), 4) if len(ins) > 2 else _zero()
            env[out] = Linear(P, _product_scale(xq.scale, wq.scale, 4), _zero(), bias)
        elif op == "Transpose" and isinstance(ins[0], Codes):
            t, perm = ins[0], attrs["perm"]
            env[out] = Codes(*(np.transpose(a, perm) if a.ndim == len(perm) else a for a in (t.codes, t.scale, t.zp)))
        elif op in ("MatMul", "Gemm"):
            aq, bq = ins[0], ins[1]
            bc, bs = bq.centred(), bq.scale
            if op == "Gemm":
                assert attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
                if attrs.get("transB", 0):
                    bc, bs = bc.T, (bs.T if bs.ndim else bs)
            assert int(np.abs(aq.centred()).max(initial=0)) * int(np.abs(bc).max(initial=0)) * bc.shape[0] < 2**53
            P = (aq.centred().astype(np.float64) @ bc.astype(np.float64)).astype(np.int64)
            bias = _channel(_exact(ins[2]), 2) if len(ins) > 2 else _zero()
            env[out] = Linear(P, _product_scale(aq.scale, bs, 2), _zero(), bias)
        elif op == "BatchNormalization":
            v = _linear_of(ins[0])
            assert v.bn is None and not v.relu and not attrs.get("training_mode", 0), node.name
            ndim = v.P.ndim
            g, beta, mean, var = (_channel(_fractions(t), ndim) for t in ins[1:5])
            eps = Fraction(float(np.float32(attrs.get("epsilon", 1e-5))))
            env[out] = Linear(v.P, v.a, v.b + v.d - mean, beta, (g, var + eps))
        elif op == "Relu":
            env[out] = dataclasses.replace(_linear_of(ins[0]), relu=True)
        elif op == "Add" and all(isinstance(t, Codes) and t.scale.size == 1 for t in ins):
            sa, sb = (t.scale.reshape(-1)[0] for t in ins)
            unit = Fraction(gcd(sa.numerator * sb.denominator, sb.numerator * sa.denominator),
                            sa.denominator * sb.denominator)  # fmt: skip
            ma, mb = int(sa / unit), int(sb / unit)
            assert max(abs(ma), abs(mb)) < 2**30, node.name
            P = ins[0].centred() * ma + ins[1].centred() * mb
            env[out] = Linear(P, _fractions(np.array(1)) * unit, _zero(), _zero())
        elif op == "AveragePool" and isinstance(ins[0], Codes) and ins[0].scale.size == 1:
            kh, kw = attrs["kernel_shape"]
            assert not any(attrs.get("pads", ())) and not attrs.get("ceil_mode", 0), node.name
            sh, sw = attrs.get("strides", (1, 1))
            win = np.lib.stride_tricks.sliding_window_view(ins[0].centred(), (kh, kw), axis=(2, 3))
            P = win[:, :, ::sh, ::sw].sum(axis=(-2, -1))
            env[out] = Linear(P, ins[0].scale / (kh * kw), _zero(), _zero())
        elif op == "MaxPool" and isinstance(ins[0], Codes) and ins[0].scale.size == 1 and ins[0].scale.item() > 0:
            assert not any(attrs.get("pads", ())) and not attrs.get("ceil_mode", 0), node.name
            (kh, kw), (sh, sw) = attrs["kernel_shape"], attrs.get("strides", (1, 1))
            win = np.lib.stride_tricks.sliding_window_view(ins[0].codes, (kh, kw), axis=(2, 3))
            env[out] = Codes(win[:, :, ::sh, ::sw].max(axis=(-2, -1)), ins[0].scale, ins[0].zp)
        elif op == "ReduceMean" and isinstance(ins[0], Codes) and ins[0].scale.size == 1:
            axes = tuple(int(a) for a in (ins[1] if len(ins) > 1 else attrs["axes"]))
            keep = bool(attrs.get("keepdims", 1))
            n = int(np.prod([ins[0].codes.shape[a] for a in axes]))
            env[out] = Linear(ins[0].centred().sum(axis=axes, keepdims=keep), ins[0].scale / n, _zero(), _zero())
        elif op == "BipolarQuant":
            env[out] = Codes(_bipolar(ins[0]), _fractions(ins[1]), _zero())
        elif op == "Flatten" and isinstance(ins[0], Codes) and ins[0].scale.size == 1:
            t = ins[0]
            env[out] = Codes(t.codes.reshape(t.codes.shape[0], -1), t.scale, t.zp)
        else:
            raise NotImplementedError(f"{op} '{node.name}' on {[type(t).__name__ for t in ins]}")
    return env, exact


def as_real(t) -> np.ndarray:
    """A tensor's exact value to float64 precision (a few units in the last place)."""
    if isinstance(t, Codes):
        return t.centred() * as_float(t.scale)
    if isinstance(t, Linear):
        return t.estimate()[0]
    return np.asarray(t, dtype=np.float64)
