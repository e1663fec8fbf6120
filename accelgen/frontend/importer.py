"""ONNX (QONNX, QDQ or QOperator) -> accelgen IR.

The three dialects say the same thing in different words. Every ONNX tensor is mapped to
a :class:`Value`: an IR tensor plus the *view* the ONNX graph has of it. A QDQ model's
``QuantizeLinear`` output is the ``int`` view of a codes tensor and the following
``DequantizeLinear`` output is its ``real`` view; a QONNX ``Quant`` output is directly
the real view; a QOperator ``QLinearConv`` reads and writes int views. Float ops between
integer layers are kept as IR float ops; the passes fuse them into requantizers.

Each handler is one method named after the ONNX op type it reads.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError, UnsupportedError
from accelgen.frontend.constants import QConst, fold_node, int_dtype_bits, to_array
from accelgen.frontend.load import QONNX_DOMAINS, SUPPORTED_EXPORTERS, detect_dialect, opset_version
from accelgen.numeric import ROUNDING_MODES, to_codes
from accelgen.numeric import round_mode as _round

MAX_BITS = 8
FLOAT_INPUT_DTYPES = ("float16", "float32", "float64")
LAYOUT_OPS = {"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}
#: ops whose every input may be constant; they are evaluated at import time
FOLDABLE = LAYOUT_OPS | {
    "Shape", "Gather", "Concat", "Cast", "Mul", "Div", "Add", "Sub", "Constant", "Slice",
    "ConstantOfShape", "Sqrt", "Neg", "Pow", "Floor", "Ceil", "Round", "Clip", "Equal",
    "Where", "Expand", "Range",
}  # fmt: skip


@dataclass(frozen=True)
class Value:
    """What one ONNX tensor is in the IR: tensor ``tensor`` read as ``view``."""

    tensor: str
    view: str  # "real": the ONNX tensor holds real values; "int": it holds the codes


@dataclass
class PendingConcat:
    """A Concat of code tensors with different QTypes: resolved by the quantizer after it."""

    values: list[Value]
    axis: int
    node: str


def import_model(model: onnx.ModelProto, name: str = "model") -> ir.Graph:
    """Translate a quantized ONNX model into an IR graph (before any pass)."""
    return _Importer(model, name).run()


class _Importer:
    def __init__(self, model: onnx.ModelProto, name: str) -> None:
        self.model = model
        self.graph_name = name
        self.opset = opset_version(model)
        self.dialect = detect_dialect(model)
        self.consts: dict[str, np.ndarray] = {}
        self.qconsts: dict[str, QConst] = {}
        self.values: dict[str, Value | PendingConcat] = {}
        self.tensors: dict[str, ir.Tensor] = {}
        self.ops: list[ir.Op] = []
        self.uninterpreted: set[str] = set()  # integer tensors whose scale is not known yet
        self.io_dtypes: dict[str, str] = {}
        self._names: set[str] = set()
        self._outputs: set[str] = set()  # graph outputs (IR tensors named as in the model)
        self.node: onnx.NodeProto | None = None

    # -- driver ----------------------------------------------------------------------

    def run(self) -> ir.Graph:
        g = self.model.graph
        for init in g.initializer:
            self.consts[init.name] = to_array(init)
        self._check_supported()
        inputs = self._read_inputs()
        for node in g.node:
            self.node = node
            self._import_node(node)
        outputs = [self._read_output(o) for o in g.output]
        graph = ir.Graph(
            name=self.graph_name,
            tensors=self.tensors,
            ops=self.ops,
            inputs=inputs,
            outputs=outputs,
            io_dtypes=self.io_dtypes,
            meta={"dialect": self.dialect, "opset": self.opset},
        )
        return graph

    def _check_supported(self) -> None:
        problems = []
        for node in self.model.graph.node:
            if self._handler(node) is None:
                dom = f" (domain '{node.domain}')" if node.domain else ""
                problems.append(f"node '{node.name or node.output[0]}': op {node.op_type}{dom}")
        if problems:
            raise UnsupportedError(
                problems,
                "accelgen supports the quantized Conv/Gemm/MatMul/pool/Add/Concat networks that "
                f"{SUPPORTED_EXPORTERS} produce; see the README's list of supported ops.",
            )

    def _handler(self, node: onnx.NodeProto) -> Callable | None:
        if node.domain in QONNX_DOMAINS:
            return getattr(self, f"op_{node.op_type}", None) if node.op_type in (
                "Quant", "IntQuant", "BipolarQuant", "Trunc") else None  # fmt: skip
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            return None
        return getattr(self, f"op_{node.op_type}", None)

    def _read_inputs(self) -> list[str]:
        names = []
        for vi in self.model.graph.input:
            if vi.name in self.consts:
                continue  # an initializer listed as input (old exporters)
            tt = vi.type.tensor_type
            if not tt.HasField("shape"):
                raise InputError(
                    f"graph input '{vi.name}' has no shape: export the model with static "
                    "input shapes (the batch dimension may be symbolic)"
                )
            dims: list[int | None] = []
            for i, d in enumerate(tt.shape.dim):
                if d.HasField("dim_value") and d.dim_value > 0:
                    dims.append(int(d.dim_value))
                elif i == 0:
                    dims.append(None)
                else:
                    sym = d.dim_param or "?"
                    raise InputError(
                        f"graph input '{vi.name}' has a dynamic dimension {i} ('{sym}'): only the "
                        "batch dimension (the first) may be symbolic; export with a fixed shape"
                    )
            if not dims:
                raise InputError(f"graph input '{vi.name}' is a scalar; expected a batch of tensors")
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
            self.io_dtypes[vi.name] = np.dtype(dtype).name
            shape = (None, *dims[1:])
            layout = "NCHW" if len(shape) == 4 else ""
            intinfo = int_dtype_bits(dtype)
            if intinfo is not None:
                bits, signed = intinfo
                if bits > MAX_BITS:
                    raise InputError(
                        f"graph input '{vi.name}' holds {np.dtype(dtype).name} codes: accelgen builds "
                        f"1- to {MAX_BITS}-bit datapaths; quantize the input to 8 bits or fewer"
                    )
                t = self._new_tensor(vi.name, shape, "codes", ir.QType(bits, signed), layout)
                self.uninterpreted.add(t)
                self.values[vi.name] = Value(t, "int")
            elif np.dtype(dtype).name in FLOAT_INPUT_DTYPES:
                t = self._new_tensor(vi.name, shape, "float", None, layout)
                self.values[vi.name] = Value(t, "real")
            else:
                raise InputError(
                    f"graph input '{vi.name}' has type {np.dtype(dtype).name}: accelgen takes float "
                    f"({', '.join(FLOAT_INPUT_DTYPES)}) inputs or integer codes of 1 to {MAX_BITS} "
                    "bits (float8/float4 quantization is not supported)"
                )
            names.append(t)
        return names

    def _read_output(self, vi: onnx.ValueInfoProto) -> str:
        v = self.values.get(vi.name)
        if v is None:
            raise InputError(f"graph output '{vi.name}' is a constant or is never computed")
        if isinstance(v, PendingConcat):
            raise InputError(f"graph output '{vi.name}': Concat of differently quantized inputs")
        tt = vi.type.tensor_type
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)) if tt.elem_type else None
        t = self.tensors[v.tensor]
        wants_real = dtype is None or dtype.kind == "f"
        self.io_dtypes[vi.name] = dtype.name if dtype is not None else "float32"
        if t.kind != "float" and wants_real:
            if vi.name in self.tensors:  # the codes carry the output's name (a QONNX Quant): move them
                self._rename_tensor(vi.name, self._fresh(f"{vi.name}_codes"))
            self.tensors[vi.name] = ir.Tensor(vi.name, t.shape, "float", None, t.layout)
            self._names.add(vi.name)
            self._emit(ir.Dequantize, [self.values[vi.name].tensor], vi.name, source=vi.name)
        elif v.tensor != vi.name:
            # a pass-through op (Identity, a quantizer onto the codes' own grid) left the
            # output an alias of a tensor named after another ONNX value
            if v.tensor in self._outputs or not any(v.tensor in op.outputs for op in self.ops):
                raise InputError(
                    f"graph output '{vi.name}' is the value '{v.tensor}' (a graph input or another output) "
                    "passed through unchanged; accelgen needs each output computed by its own layer"
                )
            if vi.name in self.tensors:
                self._rename_tensor(vi.name, self._fresh(f"{vi.name}_value"))
            self._rename_tensor(v.tensor, vi.name)
        self._outputs.add(vi.name)
        return vi.name

    def _rename_tensor(self, old: str, new: str) -> None:
        """Rename an IR tensor produced by an op, everywhere it is referenced."""
        if not any(old in op.outputs for op in self.ops):
            raise InputError(f"graph output '{new}' has the name of the graph input '{old}'")
        self.tensors[new] = dataclasses.replace(self.tensors.pop(old), name=new)
        self._names.add(new)

        def renamed(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(new if n == old else n for n in names)

        self.ops = [op.replace(inputs=renamed(op.inputs), outputs=renamed(op.outputs)) for op in self.ops]
        for key, v in self.values.items():
            if isinstance(v, Value) and v.tensor == old:
                self.values[key] = Value(new, v.view)

    def _import_node(self, node: onnx.NodeProto) -> None:
        handler = self._handler(node)
        present = [n for n in node.input if n]
        if node.op_type == "Constant":
            self.consts[node.output[0]] = fold_node(node, [], self.opset)[0]
            return
        if present and all(n in self.consts or n in self.qconsts for n in present):
            if self._fold(node):
                return
        missing = [n for n in present if n not in self.consts and n not in self.qconsts
                   and n not in self.values]  # fmt: skip
        if missing:
            raise InputError(f"node '{self._label()}' reads '{missing[0]}', which nothing produces")
        handler(node)

    def _fold(self, node: onnx.NodeProto) -> bool:
        """Evaluate a node whose inputs are all constant; False if it must be handled."""
        op = node.op_type
        if op in ("Quant", "IntQuant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear"):
            self.qconsts[node.output[0]] = self._quantize_constant(node)
            return True
        if op in LAYOUT_OPS and node.input[0] in self.qconsts:
            q = self.qconsts[node.input[0]]
            rest = [self.consts.get(n) for n in node.input[1:]]

            def apply(a: np.ndarray) -> np.ndarray:
                return fold_node(node, [a, *rest], self.opset)[0]

            self.qconsts[node.output[0]] = q.map_layout(apply)
            return True
        if node.domain not in ("", "ai.onnx") or op not in FOLDABLE:
            return False
        args = [self._const_real(n) if n else None for n in node.input]
        for out, val in zip(node.output, fold_node(node, args, self.opset)):
            self.consts[out] = val
        return True

    # -- helpers -----------------------------------------------------------------------

    def _label(self) -> str:
        n = self.node
        return (n.name or n.output[0]) if n is not None else "?"

    def _fresh(self, name: str) -> str:
        base = name or "t"
        cand, i = base, 1
        while cand in self._names:
            cand = f"{base}_{i}"
            i += 1
        self._names.add(cand)
        return cand

    def _new_tensor(self, name, shape, kind, qtype=None, layout="") -> str:
        tname = self._fresh(name)
        self.tensors[tname] = ir.Tensor(tname, tuple(shape), kind, qtype, layout)
        return tname

    def _emit(self, cls, inputs, output, source=None, **attrs) -> ir.Op:
        op = cls(
            name=self._fresh(f"{cls.kind.lower()}:{source or self._label()}"),
            inputs=tuple(inputs),
            outputs=(output,),
            source=source or self._label(),
            **attrs,
        )
        self.ops.append(op)
        return op

    def _attr(self, node: onnx.NodeProto, name: str, default=None):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def _const_real(self, name: str) -> np.ndarray:
        if name in self.consts:
            return self.consts[name]
        if name in self.qconsts:
            return self.qconsts[name].real()
        raise InputError(
            f"node '{self._label()}': input '{name}' must be a constant (initializer); "
            "accelgen compiles weights and quantization parameters into the hardware"
        )

    def _dynamic(self, name: str) -> Value:
        v = self.values.get(name)
        if isinstance(v, PendingConcat):
            raise InputError(
                f"node '{self._label()}' reads the Concat '{v.node}' of differently quantized "
                "tensors without a quantizer in between"
            )
        if v is None:
            raise InputError(f"node '{self._label()}': input '{name}' is not a data tensor")
        return v

    def _set(self, onnx_name: str, tensor: str, view: str) -> None:
        self.values[onnx_name] = Value(tensor, view)

    def _scale_zp(self, scale_name: str, zp_name: str | None, axis_len: int | None = None):
        """Scale and zero point constants as flat arrays, checked for sanity."""
        scale = np.asarray(self._const_real(scale_name), dtype=np.float64).reshape(-1)
        zp_arr = np.asarray(self.consts[zp_name]) if zp_name else np.zeros(1, np.int64)
        if zp_name and zp_name in self.qconsts:
            zp_arr = self.qconsts[zp_name].codes
        zp = zp_arr.astype(np.float64).reshape(-1)
        self._check_scale(scale, scale_name)
        if not np.all(zp == np.round(zp)):
            raise InputError(
                f"node '{self._label()}': zero point '{zp_name}' is not an integer ({zp}); "
                "accelgen needs integer zero points"
            )
        return scale, zp.astype(np.int64)

    def _check_scale(self, scale: np.ndarray, name: str) -> None:
        bad = ~np.isfinite(scale) | (scale <= 0)
        if np.any(bad):
            raise InputError(
                f"node '{self._label()}': scale '{name}' has {int(bad.sum())} invalid value(s) "
                f"(e.g. {scale[bad][0]}): scales must be finite and positive; re-export the "
                "model after calibration"
            )

    def _check_bits(self, bits: float, what: str) -> int:
        if bits != int(bits) or bits < 1:
            raise InputError(f"node '{self._label()}': {what} bit width {bits} is not a whole number >= 1")
        if bits > MAX_BITS:
            raise InputError(
                f"node '{self._label()}': {what} bit width {int(bits)} exceeds {MAX_BITS}; accelgen "
                "builds 1- to 8-bit datapaths. Quantize this tensor to 8 bits or fewer."
            )
        return int(bits)

    def _qtype_for(self, tensor: str, scale, zp, bits, signed, narrow=False, bipolar=False):
        t = self.tensors[tensor]
        axis = None
        if len(scale) > 1 or len(zp) > 1:
            axis = 3 if t.layout == "NHWC" else 1
        return ir.QType(
            bits=bits, signed=signed, scale=tuple(float(s) for s in scale),
            zero_point=tuple(int(z) for z in zp), axis=axis, narrow=narrow, bipolar=bipolar,
        )  # fmt: skip

    def _per_channel(self, arr: np.ndarray, tensor: str, what: str) -> np.ndarray:
        """A constant broadcast against a feature map, as one value per channel."""
        t = self.tensors[tensor]
        arr = np.asarray(arr, dtype=np.float64)
        if arr.size == 1:
            return arr.reshape(1)
        ch = t.channels
        nd = len(t.shape)
        full = arr.reshape((1,) * (nd - arr.ndim) + arr.shape) if arr.ndim < nd else arr
        # the value may vary only along the channel axis (1 for NCHW / flat)
        axis = 1 if nd >= 2 else 0
        moved = np.moveaxis(np.broadcast_to(full, (1, *full.shape[1:]) if nd > 1 else full.shape), axis, 0)
        if moved.shape[0] not in (1, ch):
            raise InputError(f"node '{self._label()}': {what} of shape {arr.shape} does not match {ch} channels")
        flat = moved.reshape(moved.shape[0], -1)
        if np.ptp(flat, axis=1).max() > 0:
            raise InputError(
                f"node '{self._label()}': {what} varies within a channel; only per-tensor or "
                "per-channel constants can be folded into requantization"
            )
        return flat[:, 0].copy()

    def _interpret(self, v: Value, qtype_args: tuple, what: str) -> str:
        """Give an int view its meaning (scale, zero point); returns the codes tensor.

        A graph input of integer type learns its scale from its first reader; a tensor
        already quantized with another scale is requantized.
        """
        scale, zp = qtype_args
        t = self.tensors[v.tensor]
        if t.kind == "float":
            raise InputError(f"node '{self._label()}' expects integer codes for {what}, got a float tensor")
        bits, signed = t.qtype.bits, t.qtype.signed
        want = self._qtype_for(v.tensor, scale, zp, bits, signed)
        if v.tensor in self.uninterpreted:
            self.uninterpreted.discard(v.tensor)
            self.tensors[v.tensor] = ir.Tensor(t.name, t.shape, t.kind, want, t.layout)
            return v.tensor
        if t.qtype.scale == want.scale and t.qtype.zero_point == want.zero_point:
            return v.tensor
        raise InputError(
            f"node '{self._label()}': {what} is read with scale {want.scale} / zero point "
            f"{want.zero_point} but was produced with {t.qtype.scale} / {t.qtype.zero_point}"
        )

    def _real_input(self, name: str, what: str) -> str:
        """The IR tensor behind a real-valued ONNX input; codes must already be dequantized."""
        v = self._dynamic(name)
        if v.view == "int" and self.tensors[v.tensor].kind == "codes" and v.tensor in self.uninterpreted:
            raise InputError(f"node '{self._label()}': integer input '{name}' is used without a scale")
        return v.tensor

    def _codes_input(self, name: str, what: str) -> str:
        """An input that must be quantized codes (the data input of Conv, MatMul, pools)."""
        v = self._dynamic(name)
        t = self.tensors[v.tensor]
        if t.kind != "codes":
            producer = "a float tensor" if t.kind == "float" else "an unquantized accumulator"
            raise InputError(
                f"node '{self._label()}' ({self.node.op_type}): {what} '{name}' is {producer}; "
                "accelgen needs a quantizer (Quant / QuantizeLinear) in front of every "
                "Conv, Gemm, MatMul and pool. Add one (e.g. a Brevitas QuantIdentity)."
            )
        return v.tensor

    def _weights(self, name: str, out_axis: int) -> tuple[np.ndarray, ir.QType]:
        """Quantized weights: integer ``code - zero_point`` and their QType (per out channel)."""
        if name not in self.qconsts:
            if name in self.consts and np.asarray(self.consts[name]).dtype.kind in "iu":
                arr = np.asarray(self.consts[name])
                bits, signed = int_dtype_bits(arr.dtype) or (8, True)
                q = QConst.make(arr, 1.0, 0, bits, signed, source=name)
            else:
                raise InputError(
                    f"node '{self._label()}' ({self.node.op_type}): weights '{name}' are not "
                    "quantized (float constant). Quantize the weights (Brevitas QuantConv/QuantLinear, "
                    "onnxruntime quantize_static) so accelgen can build integer hardware."
                )
        else:
            q = self.qconsts[name]
        bits = self._check_bits(q.bits, f"weight '{name}'")
        scale, zp = q.per_axis(name, out_axis)
        if np.all(scale == scale[0]) and np.all(zp == zp[0]):
            scale, zp = scale[:1], zp[:1]
        self._check_scale(scale, name)
        w = q.codes - q.zero_point
        qt = ir.QType(bits, q.signed, tuple(map(float, scale)), tuple(map(int, zp)),
                      axis=0 if scale.size > 1 else None, narrow=q.narrow, bipolar=q.bipolar)  # fmt: skip
        return w.astype(np.int64), qt

    def _acc_qtype(self, scale: np.ndarray, axis: int | None) -> ir.QType:
        scale = np.asarray(scale, dtype=np.float64).reshape(-1)
        return ir.QType(32, True, tuple(map(float, scale)), (0,), axis=axis if scale.size > 1 else None)

    def _emit_float(self, cls, src: str, onnx_out: str, **attrs) -> None:
        t = self.tensors[src]
        out = self._new_tensor(onnx_out, t.shape, "float", None, t.layout)
        self._emit(cls, [src], out, **attrs)
        self._set(onnx_out, out, "real")

    # -- quantizers --------------------------------------------------------------------

    def _quantize_constant(self, node: onnx.NodeProto) -> QConst:
        op = node.op_type
        src = node.input[0]
        if op == "DequantizeLinear":
            if src in self.qconsts:
                return self.qconsts[src]
            x = np.asarray(self.consts[src])
            info = int_dtype_bits(x.dtype)
            if info is None:
                raise InputError(f"node '{self._label()}': DequantizeLinear of a non-integer constant")
            scale, zp = self._qparams_linear(node, x.shape)
            return QConst.make(x, scale, zp, info[0], info[1], source=src)
        x = self._const_real(src).astype(np.float64)
        if op == "QuantizeLinear":
            scale, zp = self._qparams_linear(node, x.shape)
            bits, signed = self._linear_out_type(node)
            lo, hi = _int_range(bits, signed, False)
            codes = to_codes(x / scale, zp, lo, hi, "HALF_EVEN", zero_point_after_rounding=True)
            return QConst.make(codes, scale, zp, bits, signed, source=src)
        if op == "BipolarQuant":
            scale = np.asarray(self._const_real(node.input[1]), dtype=np.float64)
            self._check_scale(scale.reshape(-1), node.input[1])
            codes = np.where(x >= 0, 1, -1)
            return QConst.make(codes, np.broadcast_to(scale, x.shape), 0, 1, True, bipolar=True, source=src)
        # QONNX Quant on a constant: weights, or a (possibly 32-bit) bias
        scale = np.asarray(self._const_real(node.input[1]), dtype=np.float64)
        zp = np.asarray(self._const_real(node.input[2]), dtype=np.float64)
        bits = float(np.asarray(self._const_real(node.input[3])).reshape(-1)[0])
        self._check_scale(scale.reshape(-1), node.input[1])
        signed = bool(self._attr(node, "signed", 1))
        narrow = bool(self._attr(node, "narrow", 0))
        rounding = self._rounding(node)
        if bits == 1 and signed:
            self._check_bipolar_zero_point(zp, node.input[2])
            codes = np.where(x / scale + zp >= 0, 1, -1)
            return QConst.make(codes, np.broadcast_to(scale, x.shape), 0, 1, True, bipolar=True, source=src)
        lo, hi = _int_range(int(bits), signed, narrow)
        codes = np.clip(_round(np.clip(x / scale + zp, lo, hi), rounding), lo, hi)
        return QConst.make(codes, np.broadcast_to(scale, x.shape), np.broadcast_to(zp, x.shape).round(),
                           int(bits), signed, narrow, source=src)  # fmt: skip

    def _check_bipolar_zero_point(self, zp: np.ndarray, name: str) -> None:
        """A 1-bit signed Quant is bipolar (codes -1, +1); qonnx would shift it by a zero point."""
        if np.any(np.asarray(zp) != 0):
            raise InputError(
                f"node '{self._label()}': 1-bit signed Quant with a nonzero zero point '{name}' "
                "(values (+-1 - zero_point) * scale) is not supported; use zero point 0 or BipolarQuant"
            )

    def _rounding(self, node: onnx.NodeProto) -> str:
        mode = self._attr(node, "rounding_mode", b"ROUND")
        mode = (mode.decode() if isinstance(mode, bytes) else str(mode)).upper()
        mode = {"ROUND": "HALF_EVEN"}.get(mode, mode)
        if mode not in ROUNDING_MODES:
            raise InputError(f"node '{self._label()}': rounding mode '{mode}' is not supported")
        return mode

    def _qparams_linear(self, node: onnx.NodeProto, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
        """QuantizeLinear/DequantizeLinear scale and zero point broadcast to ``shape``."""
        if self._attr(node, "block_size", 0):
            raise InputError(
                f"node '{self._label()}': blocked quantization (block_size) is not supported; "
                "use per-tensor or per-channel quantization"
            )
        scale = np.asarray(self._const_real(node.input[1]), dtype=np.float64)
        zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        zp = np.asarray(self.consts[zp_name]).astype(np.float64) if zp_name else np.zeros(1)
        self._check_scale(scale.reshape(-1), node.input[1])
        if scale.size > 1:
            axis = int(self._attr(node, "axis", 1))
            axis = axis % len(shape)
            bshape = [1] * len(shape)
            bshape[axis] = scale.size
            scale = scale.reshape(bshape)
            zp = zp.reshape(bshape) if zp.size > 1 else zp.reshape(())
        return scale, zp.reshape(scale.shape) if zp.size == scale.size else zp

    def _linear_out_type(self, node: onnx.NodeProto) -> tuple[int, bool]:
        if len(node.input) > 2 and node.input[2]:
            dtype = np.asarray(self.consts[node.input[2]]).dtype
        else:
            out_dtype = self._attr(node, "output_dtype", 0)
            dtype = onnx.helper.tensor_dtype_to_np_dtype(out_dtype) if out_dtype else np.dtype("uint8")
        info = int_dtype_bits(dtype)
        if info is None:
            raise InputError(
                f"node '{self._label()}': quantization to {np.dtype(dtype).name} is not supported; "
                "accelgen takes integer types int8/uint8/int4/uint4/int2/uint2"
            )
        return info

    def _quantize_dynamic(self, src: Value | PendingConcat, qtype: ir.QType, rounding: str, out_name: str,
                          view: str, zero_point_after_rounding: bool = False) -> None:  # fmt: skip
        """Quantize a dynamic tensor: float->codes, or codes->codes when already quantized.

        ``zero_point_after_rounding``: ONNX quantizers round before adding the zero point,
        QONNX Quant after (see :class:`ir.Quantize`).
        """
        if isinstance(src, PendingConcat):
            self._resolve_concat(src, qtype, rounding, out_name, view, zero_point_after_rounding)
            return
        t = self.tensors[src.tensor]
        if t.kind == "codes" and src.view == "real" and t.qtype == qtype:
            self._set(out_name, src.tensor, view)  # quantizing codes onto their own grid
            return
        out = self._new_tensor(out_name, t.shape, "codes", qtype, t.layout)
        if t.kind == "codes":
            requant = ir.FloatRequant((), qtype, rounding, zero_point_after_rounding=zero_point_after_rounding)
            self._emit(ir.Requantize, [src.tensor], out, requant=requant)
        else:
            self._emit(ir.Quantize, [src.tensor], out, qtype=qtype, rounding=rounding,
                       zero_point_after_rounding=zero_point_after_rounding)  # fmt: skip
        self._set(out_name, out, view)

    def _quantizer_input(self, name: str) -> tuple[Value | PendingConcat, str]:
        """A quantizer's input and an IR tensor of its rank and layout.

        The input may be a Concat of differently quantized tensors, which the quantizer
        resolves by requantizing each part (see :meth:`_check_concat_quantizer`).
        """
        v = self.values.get(name)
        if isinstance(v, PendingConcat):
            return v, v.values[0].tensor
        v = self._dynamic(name)
        return v, v.tensor

    def _check_concat_quantizer(self, src: Value | PendingConcat, scale: np.ndarray, zp: np.ndarray) -> None:
        if isinstance(src, PendingConcat) and (np.asarray(scale).size > 1 or np.asarray(zp).size > 1):
            raise InputError(
                f"node '{self._label()}': per-channel quantizer after the Concat '{src.node}' of differently "
                "quantized tensors; quantize a Concat's output per tensor"
            )

    def op_Quant(self, node: onnx.NodeProto) -> None:
        scale = np.asarray(self._const_real(node.input[1]), dtype=np.float64)
        zp = np.asarray(self._const_real(node.input[2]), dtype=np.float64)
        bits = float(np.asarray(self._const_real(node.input[3])).reshape(-1)[0])
        signed = bool(self._attr(node, "signed", 1))
        narrow = bool(self._attr(node, "narrow", 0))
        bits = self._check_bits(bits, "activation")
        if not np.all(zp == np.round(zp)):
            raise InputError(f"node '{self._label()}': zero point {zp} is not an integer")
        src, like = self._quantizer_input(node.input[0])
        self._check_concat_quantizer(src, scale, zp)
        scale_c = self._per_channel(scale, like, "scale")
        zp_c = self._per_channel(zp, like, "zero point").astype(np.int64)
        self._check_scale(scale_c, node.input[1])
        bipolar = bits == 1 and signed
        if bipolar:
            self._check_bipolar_zero_point(zp_c, node.input[2])
        qtype = ir.QType(bits, signed, tuple(map(float, scale_c)), tuple(map(int, zp_c)),
                         axis=1 if scale_c.size > 1 else None, narrow=narrow, bipolar=bipolar)  # fmt: skip
        self._quantize_dynamic(src, qtype, "BIPOLAR" if bipolar else self._rounding(node), node.output[0], "real")

    op_IntQuant = op_Quant

    def op_BipolarQuant(self, node: onnx.NodeProto) -> None:
        scale = np.asarray(self._const_real(node.input[1]), dtype=np.float64).reshape(-1)
        src, like = self._quantizer_input(node.input[0])
        self._check_concat_quantizer(src, scale, np.zeros(1))
        self._check_scale(scale, node.input[1])
        if scale.size > 1:
            scale = self._per_channel(scale, like, "scale")
        qtype = ir.QType(1, True, tuple(map(float, scale)), (0,), axis=1 if scale.size > 1 else None, bipolar=True)
        self._quantize_dynamic(src, qtype, "BIPOLAR", node.output[0], "real")

    def op_Trunc(self, node: onnx.NodeProto) -> None:
        """QONNX Trunc: codes divided by a power of two with the given rounding (floor)."""
        src = self._dynamic(node.input[0])
        t = self.tensors[src.tensor]
        scale = np.asarray(self._const_real(node.input[1]), dtype=np.float64).reshape(-1)
        zp = np.asarray(self._const_real(node.input[2]), dtype=np.float64).reshape(-1)
        in_bits = float(np.asarray(self._const_real(node.input[3])).reshape(-1)[0])
        if len(node.input) >= 6:  # Trunc v2: (x, scale, zp, in_bits, out_scale, out_bits)
            out_scale = np.asarray(self._const_real(node.input[4]), dtype=np.float64).reshape(-1)
            out_bits = float(np.asarray(self._const_real(node.input[5])).reshape(-1)[0])
            shift = np.round(np.log2(out_scale / scale))
        else:
            out_bits = float(np.asarray(self._const_real(node.input[4])).reshape(-1)[0])
            shift = np.array([in_bits - out_bits])
            out_scale = scale
        if np.any(zp != 0) or scale.size != 1:
            raise InputError(f"node '{self._label()}': Trunc with a zero point or per-channel scale is not supported")
        out_bits_i = self._check_bits(out_bits, "Trunc output")
        signed = bool(self._attr(node, "signed", 1))
        narrow = bool(self._attr(node, "narrow", 0))
        qtype = ir.QType(out_bits_i, signed, (float(out_scale[0]),), (0,), narrow=narrow)
        # code = rounding(round(x / scale) / 2**shift): an affine step, a round, a scaled quantizer
        inner = self._new_tensor(node.output[0] + "_scaled", t.shape, "float", None, t.layout)
        self._emit(ir.Affine, [src.tensor], inner, mul=np.array([1.0 / scale[0]]), add=np.zeros(1))
        rounded = self._new_tensor(node.output[0] + "_round", t.shape, "float", None, t.layout)
        self._emit(ir.Round, [inner], rounded, mode="HALF_EVEN")
        out = self._new_tensor(node.output[0], t.shape, "codes", qtype, t.layout)
        self._emit(ir.Quantize, [rounded], out, qtype=qtype, rounding=self._rounding(node),
                   divisor=float(2.0 ** shift[0]))  # fmt: skip
        self._set(node.output[0], out, "real")

    def op_QuantizeLinear(self, node: onnx.NodeProto) -> None:
        src, like = self._quantizer_input(node.input[0])
        t = self.tensors[like]
        scale, zp = self._qparams_linear(node, t.shape)
        self._check_concat_quantizer(src, scale, zp)
        bits, signed = self._linear_out_type(node)
        bits = self._check_bits(bits, "activation")
        scale_c = self._per_channel(scale, like, "scale")
        zp_c = self._per_channel(zp, like, "zero point").astype(np.int64)
        qtype = ir.QType(bits, signed, tuple(map(float, scale_c)), tuple(map(int, zp_c)),
                         axis=(3 if t.layout == "NHWC" else 1) if scale_c.size > 1 else None)  # fmt: skip
        self._quantize_dynamic(src, qtype, "HALF_EVEN", node.output[0], "int", zero_point_after_rounding=True)

    def op_DequantizeLinear(self, node: onnx.NodeProto) -> None:
        v = self._dynamic(node.input[0])
        t = self.tensors[v.tensor]
        scale, zp = self._qparams_linear(node, t.shape)
        scale_c = self._per_channel(scale, v.tensor, "scale")
        zp_c = self._per_channel(zp, v.tensor, "zero point").astype(np.int64)
        if v.view == "real":
            raise InputError(f"node '{self._label()}': DequantizeLinear of a tensor that is not integer")
        if t.kind == "acc":  # e.g. ConvInteger -> DequantizeLinear(int32)
            self._emit_float(ir.Affine, v.tensor, node.output[0], mul=scale_c, add=-zp_c * scale_c)
            return
        tensor = self._interpret(v, (scale_c, zp_c), f"input '{node.input[0]}'")
        self._set(node.output[0], tensor, "real")

    # -- pass-through and layout -------------------------------------------------------

    def op_Constant(self, node: onnx.NodeProto) -> None:  # evaluated in _import_node
        raise AssertionError("unreachable")

    def op_Identity(self, node: onnx.NodeProto) -> None:
        self.values[node.output[0]] = self.values[node.input[0]]

    op_Dropout = op_Identity

    def op_Cast(self, node: onnx.NodeProto) -> None:
        v = self._dynamic(node.input[0])
        to = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(self._attr(node, "to")))
        t = self.tensors[v.tensor]
        if to.kind == "f":
            if v.view == "int" and t.kind == "codes" and v.tensor in self.uninterpreted:
                raise InputError(f"node '{self._label()}': Cast of integer input without a scale")
            if v.view == "int" and t.kind == "codes" and any(z != 0 for z in t.qtype.zero_point):
                raise InputError(f"node '{self._label()}': Cast of codes with a zero point is not supported")
            if v.view == "int" and t.kind == "codes" and any(s != 1.0 for s in t.qtype.scale):
                raise InputError(f"node '{self._label()}': Cast of scaled codes to float is not supported")
            self._set(node.output[0], v.tensor, "real")
        else:
            raise InputError(f"node '{self._label()}': Cast to {to.name} inside the network is not supported")

    def _reshape(self, node: onnx.NodeProto, new_sample_shape: tuple[int, ...]) -> None:
        v = self._dynamic(node.input[0])
        t = self.tensors[v.tensor]
        if int(np.prod(new_sample_shape)) != t.elements_per_sample():
            raise InputError(
                f"node '{self._label()}': reshape of {t.shape[1:]} to {new_sample_shape} "
                "changes the number of elements per sample"
            )
        if tuple(new_sample_shape) == tuple(t.shape[1:]):
            self.values[node.output[0]] = v
            return
        qtype = t.qtype
        if qtype is not None and qtype.per_channel and t.kind == "codes":
            raise InputError(f"node '{self._label()}': reshaping a per-channel quantized tensor is not supported")
        if qtype is not None and qtype.per_channel:
            qtype = qtype.with_axis(1)
            if len(new_sample_shape) < 1:
                raise InputError(f"node '{self._label()}': reshape to a scalar")
        shape = (None, *new_sample_shape)
        out = self._new_tensor(node.output[0], shape, t.kind, qtype, "NCHW" if len(shape) == 4 else "")
        self._emit(ir.Reshape, [v.tensor], out, shape=tuple(int(d) for d in new_sample_shape))
        self._set(node.output[0], out, v.view)

    def op_Flatten(self, node: onnx.NodeProto) -> None:
        t = self.tensors[self._dynamic(node.input[0]).tensor]
        axis = int(self._attr(node, "axis", 1))
        if axis % len(t.shape) != 1:
            raise InputError(f"node '{self._label()}': Flatten with axis {axis} would mix the batch; use axis=1")
        self._reshape(node, (t.elements_per_sample(),))

    def op_Reshape(self, node: onnx.NodeProto) -> None:
        t = self.tensors[self._dynamic(node.input[0]).tensor]
        target = [int(d) for d in np.asarray(self._const_real(node.input[1])).reshape(-1)]
        sample = list(t.shape[1:])
        if not target:
            raise InputError(f"node '{self._label()}': reshape to a scalar")
        # the first target dim is the batch: -1, 0 (copy) or the exporter's fixed batch size
        rest = target[1:]
        for i, d in enumerate(rest):
            if d == 0:
                rest[i] = sample[i]
        if rest.count(-1) > 1 or (target[0] == -1 and -1 in rest):
            raise InputError(f"node '{self._label()}': reshape target {target} is ambiguous per sample")
        if -1 in rest:
            known = int(np.prod([d for d in rest if d != -1]))
            rest[rest.index(-1)] = t.elements_per_sample() // max(known, 1)
        self._reshape(node, tuple(rest))

    def op_Squeeze(self, node: onnx.NodeProto) -> None:
        t = self.tensors[self._dynamic(node.input[0]).tensor]
        axes = self._attr(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(a) for a in np.asarray(self._const_real(node.input[1])).reshape(-1)]
        nd = len(t.shape)
        axes = [a % nd for a in axes] if axes else [i for i, d in enumerate(t.shape) if d == 1]
        if 0 in axes:
            raise InputError(f"node '{self._label()}': Squeeze of the batch dimension")
        self._reshape(node, tuple(d for i, d in enumerate(t.shape) if i not in axes and i > 0))

    def op_Unsqueeze(self, node: onnx.NodeProto) -> None:
        t = self.tensors[self._dynamic(node.input[0]).tensor]
        axes = self._attr(node, "axes")
        if axes is None:
            axes = [int(a) for a in np.asarray(self._const_real(node.input[1])).reshape(-1)]
        nd = len(t.shape) + len(axes)
        axes = sorted(a % nd for a in axes)
        if 0 in axes:
            raise InputError(f"node '{self._label()}': Unsqueeze in front of the batch dimension")
        shape = list(t.shape)
        for a in axes:
            shape.insert(a, 1)
        self._reshape(node, tuple(shape[1:]))

    def op_Transpose(self, node: onnx.NodeProto) -> None:
        t = self.tensors[self._dynamic(node.input[0]).tensor]
        perm = list(self._attr(node, "perm", list(reversed(range(len(t.shape))))))
        if perm[0] != 0:
            raise InputError(f"node '{self._label()}': Transpose that moves the batch dimension is not supported")
        moved = [p for p in perm if t.shape[p] != 1]
        if moved != sorted(moved):
            raise InputError(
                f"node '{self._label()}': Transpose with perm {perm} reorders data; accelgen "
                "supports only layout-preserving transposes (that move size-1 dimensions)"
            )
        self._reshape(node, tuple(t.shape[p] for p in perm[1:]))

    # -- float element-wise ops --------------------------------------------------------

    def _binary_const(self, node: onnx.NodeProto) -> tuple[Value, np.ndarray, bool] | None:
        a, b = node.input[0], node.input[1]
        a_const = a in self.consts or a in self.qconsts
        b_const = b in self.consts or b in self.qconsts
        if a_const == b_const:
            return None
        if a_const:
            return self._dynamic(b), self._const_real(a), True
        return self._dynamic(a), self._const_real(b), False

    def op_Add(self, node: onnx.NodeProto) -> None:
        pair = self._binary_const(node)
        if pair is not None:
            v, c, _ = pair
            c = self._per_channel(c, v.tensor, "added constant")
            self._emit_float(ir.Affine, v.tensor, node.output[0], mul=np.ones(1), add=c)
            return
        self._residual_add(node, [self._dynamic(n) for n in node.input[:2]])

    def op_Sub(self, node: onnx.NodeProto) -> None:
        pair = self._binary_const(node)
        if pair is None:
            raise InputError(f"node '{self._label()}': Sub of two data tensors is not supported")
        v, c, const_first = pair
        c = self._per_channel(c, v.tensor, "subtracted constant")
        mul = np.array([-1.0]) if const_first else np.ones(1)
        add = c if const_first else -c
        self._emit_float(ir.Affine, v.tensor, node.output[0], mul=mul, add=add)

    def op_Mul(self, node: onnx.NodeProto) -> None:
        pair = self._binary_const(node)
        if pair is None:
            raise InputError(f"node '{self._label()}': Mul of two data tensors is not supported")
        v, c, _ = pair
        c = self._per_channel(c, v.tensor, "multiplier")
        self._emit_float(ir.Affine, v.tensor, node.output[0], mul=c, add=np.zeros(1))

    def op_Div(self, node: onnx.NodeProto) -> None:
        pair = self._binary_const(node)
        if pair is None or pair[2]:
            raise InputError(f"node '{self._label()}': only division by a constant is supported")
        v, c, _ = pair
        c = self._per_channel(c, v.tensor, "divisor")
        if np.any(c == 0):
            raise InputError(f"node '{self._label()}': division by zero")
        self._emit_float(ir.Affine, v.tensor, node.output[0], mul=1.0 / c, add=np.zeros(1))

    def op_BatchNormalization(self, node: onnx.NodeProto) -> None:
        v = self._dynamic(node.input[0])
        channels = self.tensors[v.tensor].shape[1]
        vals = [np.asarray(self._const_real(n), dtype=np.float64).reshape(-1) for n in node.input[1:5]]
        if any(a.size not in (1, channels) for a in vals):
            raise InputError(f"node '{self._label()}': BatchNorm parameters do not match {channels} channels")
        self._emit_float(ir.BatchNorm, v.tensor, node.output[0], gamma=vals[0], beta=vals[1],
                         mean=vals[2], var=vals[3], epsilon=float(self._attr(node, "epsilon", 1e-5)))  # fmt: skip

    def op_Relu(self, node: onnx.NodeProto) -> None:
        self._emit_float(ir.Relu, self._real_input(node.input[0], "input"), node.output[0])

    def op_Clip(self, node: onnx.NodeProto) -> None:
        lo, hi = self._attr(node, "min", -math.inf), self._attr(node, "max", math.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = float(np.asarray(self._const_real(node.input[1])).reshape(-1)[0])
        if len(node.input) > 2 and node.input[2]:
            hi = float(np.asarray(self._const_real(node.input[2])).reshape(-1)[0])
        self._emit_float(ir.Clip, self._real_input(node.input[0], "input"), node.output[0], lo=float(lo), hi=float(hi))

    def op_Softmax(self, node: onnx.NodeProto) -> None:
        src = self._real_input(node.input[0], "input")
        axis = int(self._attr(node, "axis", -1 if self.opset >= 13 else 1))
        if axis % len(self.tensors[src].shape) != len(self.tensors[src].shape) - 1:
            raise InputError(f"node '{self._label()}': Softmax over axis {axis}; only the last axis is supported")
        self._emit_float(ir.Softmax, src, node.output[0], axis=-1)

    def op_Sigmoid(self, node: onnx.NodeProto) -> None:
        self._emit_float(ir.Sigmoid, self._real_input(node.input[0], "input"), node.output[0])

    # -- integer layers ----------------------------------------------------------------

    def _conv_geometry(self, node: onnx.NodeProto, in_shape, w_shape):
        if len(in_shape) != 4:
            raise InputError(f"node '{self._label()}': only 2-D convolution (4-D input) is supported")
        kh, kw = int(w_shape[2]), int(w_shape[3])
        strides = tuple(self._attr(node, "strides", [1, 1]))
        dil = tuple(self._attr(node, "dilations", [1, 1]))
        pads = list(self._attr(node, "pads", [0, 0, 0, 0]))
        auto_pad = self._attr(node, "auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        h, w = int(in_shape[2]), int(in_shape[3])
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for size, k, s, d in ((h, kh, strides[0], dil[0]), (w, kw, strides[1], dil[1])):
                out = -(-size // s)
                total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
                pads.append(
                    (total // 2, total - total // 2) if auto_pad == "SAME_UPPER" else (total - total // 2, total // 2)
                )
            pads = [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]
        elif auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
        ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
        if oh < 1 or ow < 1:
            raise InputError(f"node '{self._label()}': kernel larger than the padded input")
        return (kh, kw), tuple(map(int, strides)), tuple(map(int, pads)), tuple(map(int, dil)), (oh, ow)

    def _emit_conv(self, node, x_tensor, weights, w_qtype, out_name, view, group_attr=None) -> str:
        t = self.tensors[x_tensor]
        _, strides, pads, dil, (oh, ow) = self._conv_geometry(node, t.shape, weights.shape)
        groups = int(group_attr if group_attr is not None else self._attr(node, "group", 1))
        if t.shape[1] != weights.shape[1] * groups:
            raise InputError(
                f"node '{self._label()}': {t.shape[1]} input channels do not match weights {weights.shape}"
            )
        oc = weights.shape[0]
        acc_scale = np.asarray(t.qtype.scale, dtype=np.float64) * np.asarray(w_qtype.scale)
        if len(t.qtype.scale) > 1:
            raise InputError(f"node '{self._label()}': per-channel quantized Conv input is not supported")
        out = self._new_tensor(out_name, (None, oc, oh, ow), "acc", self._acc_qtype(acc_scale, 1), "NCHW")
        self._emit(ir.Conv, [x_tensor], out, weights=weights, w_qtype=w_qtype, groups=groups,
                   strides=strides, pads=pads, dilations=dil)  # fmt: skip
        self._set(out_name, out, view)
        return out

    def _emit_dense(self, x_tensor, weights, w_qtype, out_name, view) -> str:
        t = self.tensors[x_tensor]
        if len(t.shape) != 2:
            raise InputError(
                f"node '{self._label()}': matrix product on a {len(t.shape)}-D tensor {t.shape}; "
                "accelgen supports [batch, features] inputs (add a Flatten)"
            )
        if t.shape[1] != weights.shape[1]:
            raise InputError(f"node '{self._label()}': {t.shape[1]} input features vs weights {weights.shape}")
        if len(t.qtype.scale) > 1:
            raise InputError(f"node '{self._label()}': per-channel quantized MatMul input is not supported")
        acc_scale = np.asarray(t.qtype.scale, dtype=np.float64) * np.asarray(w_qtype.scale)
        out = self._new_tensor(out_name, (None, weights.shape[0]), "acc", self._acc_qtype(acc_scale, 1))
        self._emit(ir.Dense, [x_tensor], out, weights=weights, w_qtype=w_qtype)
        self._set(out_name, out, view)
        return out

    def op_Conv(self, node: onnx.NodeProto) -> None:
        x = self._codes_input(node.input[0], "input")
        w, wq = self._weights(node.input[1], 0)
        out = self._emit_conv(node, x, w, wq, node.output[0] + "_acc", "real")
        if len(node.input) > 2 and node.input[2]:
            bias = np.asarray(self._const_real(node.input[2]), dtype=np.float64).reshape(-1)
            self._emit_float(ir.Affine, out, node.output[0], mul=np.ones(1), add=bias)
        else:
            self._set(node.output[0], out, "real")

    def op_ConvInteger(self, node: onnx.NodeProto) -> None:
        v = self._dynamic(node.input[0])
        zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        x = self._interpret(v, (np.ones(1), self._int_const(zp_name, 1)), "input")
        w, wq = self._int_weights(node.input[1], node.input[3] if len(node.input) > 3 else None, 0)
        self._emit_conv(node, x, w, wq, node.output[0], "int")

    def _int_const(self, name: str | None, size: int) -> np.ndarray:
        if not name:
            return np.zeros(1, np.int64)
        return np.asarray(self.consts[name]).astype(np.int64).reshape(-1)

    def _int_weights(self, name: str, zp_name: str | None, out_axis: int) -> tuple[np.ndarray, ir.QType]:
        if name not in self.consts:
            raise InputError(f"node '{self._label()}': weights '{name}' must be a constant")
        w = np.asarray(self.consts[name])
        info = int_dtype_bits(w.dtype)
        if info is None:
            raise InputError(f"node '{self._label()}': weights '{name}' are not integers")
        zp = self._int_const(zp_name, w.shape[out_axis])
        shape = [1] * w.ndim
        if zp.size > 1:
            shape[out_axis] = zp.size
        q = QConst.make(w, 1.0, zp.reshape(shape), info[0], info[1], source=name)
        self.qconsts[name + "#int"] = q
        return self._weights(name + "#int", out_axis)

    def _gemm_weights(self, name: str, trans_b: bool) -> tuple[np.ndarray, ir.QType]:
        """Weights of Gemm/MatMul as (out, in)."""
        src = self.qconsts.get(name)
        if src is not None and src.codes.ndim != 2:
            raise InputError(f"node '{self._label()}': weights '{name}' are {src.codes.ndim}-D; expected a matrix")
        if src is not None and not trans_b:
            self.qconsts[name + "#T"] = src.map_layout(lambda a: np.ascontiguousarray(a.T))
            name = name + "#T"
        elif src is None and name in self.consts and not trans_b:
            arr = np.asarray(self.consts[name])
            if arr.ndim != 2:
                raise InputError(f"node '{self._label()}': weights '{name}' are {arr.ndim}-D; expected a matrix")
            self.consts[name + "#T"] = np.ascontiguousarray(arr.T)
            name = name + "#T"
        return self._weights(name, 0)

    def op_MatMul(self, node: onnx.NodeProto) -> None:
        if node.input[0] in self.consts or node.input[0] in self.qconsts:
            raise InputError(f"node '{self._label()}': MatMul with constant left operand is not supported")
        x = self._codes_input(node.input[0], "input")
        w, wq = self._gemm_weights(node.input[1], trans_b=False)
        self._emit_dense(x, w, wq, node.output[0], "real")

    def op_Gemm(self, node: onnx.NodeProto) -> None:
        if self._attr(node, "transA", 0):
            raise InputError(f"node '{self._label()}': Gemm with transA=1 is not supported")
        x = self._codes_input(node.input[0], "input")
        w, wq = self._gemm_weights(node.input[1], trans_b=bool(self._attr(node, "transB", 0)))
        alpha, beta = float(self._attr(node, "alpha", 1.0)), float(self._attr(node, "beta", 1.0))
        has_bias = len(node.input) > 2 and node.input[2]
        if alpha == 1.0 and not has_bias:
            self._emit_dense(x, w, wq, node.output[0], "real")
            return
        acc = self._emit_dense(x, w, wq, node.output[0] + "_acc", "real")
        bias = np.zeros(1)
        if has_bias:
            bias = beta * self._per_channel(self._const_real(node.input[2]), acc, "Gemm bias")
        self._emit_float(ir.Affine, acc, node.output[0], mul=np.array([alpha]), add=bias)

    def op_MatMulInteger(self, node: onnx.NodeProto) -> None:
        v = self._dynamic(node.input[0])
        zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        x = self._interpret(v, (np.ones(1), self._int_const(zp_name, 1)), "input")
        if node.input[1] not in self.consts:
            raise InputError(f"node '{self._label()}': MatMulInteger weights must be a constant")
        arr = np.asarray(self.consts[node.input[1]])
        if arr.ndim != 2:
            raise InputError(f"node '{self._label()}': MatMulInteger weights are {arr.ndim}-D; expected a matrix")
        self.consts[node.input[1] + "#T"] = np.ascontiguousarray(arr.T)
        zp_w = node.input[3] if len(node.input) > 3 and node.input[3] else None
        w, wq = self._int_weights(node.input[1] + "#T", zp_w, 0)
        self._emit_dense(x, w, wq, node.output[0], "int")

    def _qlinear_requant(self, acc: str, bias_int: np.ndarray | None, y_scale, y_zp, out_name: str) -> None:
        """QOperator tail: (acc + bias) * (sx*sw) -> quantize(y_scale, y_zp)."""
        t = self.tensors[acc]
        src = acc
        if bias_int is not None:
            acc_scale = np.asarray(t.qtype.scale)
            src = self._new_tensor(out_name + "_biased", t.shape, "float", None, t.layout)
            self._emit(ir.Affine, [acc], src, mul=np.ones(1), add=bias_int.astype(np.float64) * acc_scale)
        scale, zp = self._scale_zp(y_scale, y_zp)
        bits, signed = int_dtype_bits(np.asarray(self.consts[y_zp]).dtype) if y_zp else (8, False)
        qtype = ir.QType(self._check_bits(bits, "output"), signed, tuple(map(float, scale)),
                         tuple(map(int, zp)), axis=1 if scale.size > 1 else None)  # fmt: skip
        out = self._new_tensor(out_name, t.shape, "codes", qtype, t.layout)
        self._emit(ir.Quantize, [src], out, qtype=qtype, rounding="HALF_EVEN", zero_point_after_rounding=True)
        self._set(out_name, out, "int")

    def _interpret_input(self, node: onnx.NodeProto, idx: int) -> str:
        """QOperator data input at ``idx`` with its scale and zero point at idx+1, idx+2."""
        v = self._dynamic(node.input[idx])
        zp_name = node.input[idx + 2] if len(node.input) > idx + 2 and node.input[idx + 2] else None
        scale, zp = self._scale_zp(node.input[idx + 1], zp_name)
        return self._interpret(v, (scale, zp), f"input '{node.input[idx]}'")

    def _qoperator_weights(self, node: onnx.NodeProto, idx: int, out_axis: int) -> tuple[np.ndarray, ir.QType]:
        name = node.input[idx]
        if name not in self.consts:
            raise InputError(f"node '{self._label()}': weights '{name}' must be a constant")
        w = np.asarray(self.consts[name])
        if out_axis == 1:
            if w.ndim != 2:
                raise InputError(f"node '{self._label()}': weights '{name}' are {w.ndim}-D; expected a matrix")
            w = np.ascontiguousarray(w.T)
        info = int_dtype_bits(w.dtype)
        if info is None:
            raise InputError(f"node '{self._label()}': weights '{name}' are not integers")
        zp_name = node.input[idx + 2] if len(node.input) > idx + 2 and node.input[idx + 2] else None
        scale, zp = self._scale_zp(node.input[idx + 1], zp_name)
        shape = [1] * w.ndim
        if scale.size > 1:
            shape[0] = scale.size
        zshape = [1] * w.ndim
        if zp.size > 1:
            zshape[0] = zp.size
        key = f"{name}#q{idx}"
        self.qconsts[key] = QConst.make(w, scale.reshape(shape), zp.reshape(zshape), info[0], info[1], source=name)
        return self._weights(key, 0)

    def op_QLinearConv(self, node: onnx.NodeProto) -> None:
        x = self._interpret_input(node, 0)
        w, wq = self._qoperator_weights(node, 3, 0)
        acc = self._emit_conv(node, x, w, wq, node.output[0] + "_acc", "real")
        bias = None
        if len(node.input) > 8 and node.input[8]:
            bias = np.asarray(self._const_real(node.input[8])).reshape(-1)
        self._qlinear_requant(acc, bias, node.input[6], node.input[7], node.output[0])

    def op_QLinearMatMul(self, node: onnx.NodeProto) -> None:
        x = self._interpret_input(node, 0)
        w, wq = self._qoperator_weights(node, 3, 1)
        acc = self._emit_dense(x, w, wq, node.output[0] + "_acc", "real")
        self._qlinear_requant(acc, None, node.input[6], node.input[7], node.output[0])

    def op_QGemm(self, node: onnx.NodeProto) -> None:
        if self._attr(node, "transA", 0):
            raise InputError(f"node '{self._label()}': QGemm with transA=1 is not supported")
        x = self._interpret_input(node, 0)
        trans_b = bool(self._attr(node, "transB", 0))
        w, wq = self._qoperator_weights(node, 3, 0 if trans_b else 1)
        acc = self._emit_dense(x, w, wq, node.output[0] + "_acc", "real")
        alpha = float(self._attr(node, "alpha", 1.0))
        bias = (
            np.asarray(self._const_real(node.input[6])).reshape(-1) if len(node.input) > 6 and node.input[6] else None
        )
        if len(node.input) < 8 or not node.input[7]:
            raise InputError(f"node '{self._label()}': QGemm with float output is not supported")
        if alpha != 1.0:
            raise InputError(f"node '{self._label()}': QGemm with alpha != 1 is not supported")
        self._qlinear_requant(acc, bias, node.input[7], node.input[8] if len(node.input) > 8 else None, node.output[0])

    def op_QLinearAdd(self, node: onnx.NodeProto) -> None:
        a = self._interpret_input(node, 0)
        b = self._interpret_input(node, 3)
        self._residual_add(node, [Value(a, "real"), Value(b, "real")], out_name=node.output[0] + "_sum")
        self._qlinear_quantize(node.output[0] + "_sum", node.input[6], node.input[7], node.output[0],
                               zero_point_after_rounding=False)  # fmt: skip

    def _qlinear_quantize(self, src_onnx: str, y_scale: str, y_zp: str | None, out_name: str,
                          zero_point_after_rounding: bool) -> None:  # fmt: skip
        """Quantize a com.microsoft QLinear op's real result.

        onnxruntime's QLinearAdd and QLinearAveragePool round ``y / scale + zero_point``;
        its other QLinear kernels (like QuantizeLinear) round first and add the zero point.
        """
        v = self._dynamic(src_onnx)
        t = self.tensors[v.tensor]
        scale, zp = self._scale_zp(y_scale, y_zp)
        bits, signed = int_dtype_bits(np.asarray(self.consts[y_zp]).dtype) if y_zp else (8, False)
        qtype = ir.QType(self._check_bits(bits, "output"), signed, tuple(map(float, scale)), tuple(map(int, zp)))
        out = self._new_tensor(out_name, t.shape, "codes", qtype, t.layout)
        self._emit(ir.Quantize, [v.tensor], out, qtype=qtype, rounding="HALF_EVEN",
                   zero_point_after_rounding=zero_point_after_rounding)  # fmt: skip
        self._set(out_name, out, "int")

    def op_QLinearGlobalAveragePool(self, node: onnx.NodeProto) -> None:
        if int(self._attr(node, "channels_last", 0)):
            raise InputError(f"node '{self._label()}': channels_last QLinearGlobalAveragePool is not supported")
        x = self._interpret_input(node, 0)
        t = self.tensors[x]
        self._emit_avgpool(x, (t.shape[2], t.shape[3]), (1, 1), (0, 0, 0, 0), node.output[0] + "_mean")
        self._qlinear_quantize(node.output[0] + "_mean", node.input[3], node.input[4], node.output[0],
                               zero_point_after_rounding=True)  # fmt: skip

    def op_QLinearAveragePool(self, node: onnx.NodeProto) -> None:
        x = self._interpret_input(node, 0)
        kernel, strides, pads = self._pool_attrs(node, avg=True)
        self._emit_avgpool(x, kernel, strides, pads, node.output[0] + "_mean")
        self._qlinear_quantize(node.output[0] + "_mean", node.input[3], node.input[4], node.output[0],
                               zero_point_after_rounding=False)  # fmt: skip

    def op_QLinearConcat(self, node: onnx.NodeProto) -> None:
        y_scale, y_zp = node.input[0], node.input[1]
        vals = []
        for i in range(2, len(node.input), 3):
            vals.append(Value(self._interpret_input(node, i), "real"))
        scale, zp = self._scale_zp(y_scale, y_zp)
        bits, signed = int_dtype_bits(np.asarray(self.consts[y_zp]).dtype)
        qtype = ir.QType(bits, signed, tuple(map(float, scale)), tuple(map(int, zp)))
        axis = int(self._attr(node, "axis", 1))
        pending = PendingConcat(vals, axis, self._label())
        self._resolve_concat(pending, qtype, "HALF_EVEN", node.output[0], "int", zero_point_after_rounding=True)

    # -- pools, residual add, concat -----------------------------------------------------

    def _pool_attrs(self, node: onnx.NodeProto, avg: bool):
        kernel = tuple(int(k) for k in self._attr(node, "kernel_shape"))
        if len(kernel) != 2:
            raise InputError(f"node '{self._label()}': only 2-D pooling is supported")
        strides = tuple(int(s) for s in self._attr(node, "strides", list(kernel)))
        pads = tuple(int(p) for p in self._attr(node, "pads", [0, 0, 0, 0]))
        if self._attr(node, "ceil_mode", 0):
            raise InputError(f"node '{self._label()}': ceil_mode pooling is not supported")
        if tuple(self._attr(node, "dilations", [1, 1])) != (1, 1):
            raise InputError(f"node '{self._label()}': dilated pooling is not supported")
        auto_pad = self._attr(node, "auto_pad", b"NOTSET")
        if (auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad) not in ("NOTSET", "VALID"):
            raise InputError(f"node '{self._label()}': auto_pad pooling is not supported; give explicit pads")
        if avg and any(pads) and not self._attr(node, "count_include_pad", 0):
            raise InputError(
                f"node '{self._label()}': padded AveragePool with count_include_pad=0 divides border "
                "windows by different counts; use count_include_pad=1 or no padding"
            )
        return kernel, strides, pads

    def _pool_out(self, t: ir.Tensor, kernel, strides, pads) -> tuple[int, int]:
        oh = (t.shape[2] + pads[0] + pads[2] - kernel[0]) // strides[0] + 1
        ow = (t.shape[3] + pads[1] + pads[3] - kernel[1]) // strides[1] + 1
        if oh < 1 or ow < 1:
            raise InputError(f"node '{self._label()}': pooling window larger than the input")
        return oh, ow

    def op_MaxPool(self, node: onnx.NodeProto) -> None:
        if len(node.output) > 1 and node.output[1]:
            raise InputError(f"node '{self._label()}': MaxPool with an indices output is not supported")
        x = self._codes_input(node.input[0], "input")
        t = self.tensors[x]
        if len(t.shape) != 4:
            raise InputError(f"node '{self._label()}': only 2-D pooling is supported")
        kernel, strides, pads = self._pool_attrs(node, avg=False)
        oh, ow = self._pool_out(t, kernel, strides, pads)
        if t.qtype.bipolar:
            raise InputError(f"node '{self._label()}': MaxPool of bipolar values: pool before the BipolarQuant")
        out = self._new_tensor(node.output[0], (None, t.shape[1], oh, ow), "codes", t.qtype, "NCHW")
        self._emit(ir.MaxPool, [x], out, kernel=kernel, strides=strides, pads=pads)
        self._set(node.output[0], out, "real")

    def _emit_avgpool(self, x: str, kernel, strides, pads, out_name: str) -> str:
        t = self.tensors[x]
        if len(t.shape) != 4:
            raise InputError(f"node '{self._label()}': only 2-D pooling is supported")
        if t.qtype.per_channel:
            raise InputError(f"node '{self._label()}': average pool of a per-channel quantized tensor")
        oh, ow = self._pool_out(t, kernel, strides, pads)
        acc_scale = np.array(t.qtype.scale) / (kernel[0] * kernel[1])
        out = self._new_tensor(out_name, (None, t.shape[1], oh, ow), "acc", self._acc_qtype(acc_scale, 1), "NCHW")
        self._emit(ir.AvgPool, [x], out, kernel=tuple(map(int, kernel)), strides=tuple(map(int, strides)),
                   pads=tuple(map(int, pads)))  # fmt: skip
        self._set(out_name, out, "real")
        return out

    def op_AveragePool(self, node: onnx.NodeProto) -> None:
        x = self._codes_input(node.input[0], "input")
        kernel, strides, pads = self._pool_attrs(node, avg=True)
        self._emit_avgpool(x, kernel, strides, pads, node.output[0])

    def op_GlobalAveragePool(self, node: onnx.NodeProto) -> None:
        x = self._codes_input(node.input[0], "input")
        t = self.tensors[x]
        if len(t.shape) != 4:
            raise InputError(f"node '{self._label()}': GlobalAveragePool needs a 4-D input")
        self._emit_avgpool(x, (t.shape[2], t.shape[3]), (1, 1), (0, 0, 0, 0), node.output[0])

    def op_GlobalMaxPool(self, node: onnx.NodeProto) -> None:
        x = self._codes_input(node.input[0], "input")
        t = self.tensors[x]
        out = self._new_tensor(node.output[0], (None, t.shape[1], 1, 1), "codes", t.qtype, "NCHW")
        self._emit(ir.MaxPool, [x], out, kernel=(t.shape[2], t.shape[3]), strides=(1, 1), pads=(0, 0, 0, 0))
        self._set(node.output[0], out, "real")

    def _residual_add(self, node: onnx.NodeProto, vals: list[Value], out_name: str | None = None) -> None:
        ts = []
        for v, name in zip(vals, node.input):
            t = self.tensors[v.tensor]
            if t.kind != "codes" or v.view != "real" and node.op_type == "Add":
                raise InputError(
                    f"node '{self._label()}': residual Add input '{name}' is not quantized; "
                    "quantize both branches of a residual add"
                )
            if t.qtype.per_channel:
                raise InputError(f"node '{self._label()}': residual Add of per-channel quantized tensors")
            ts.append(t)
        if ts[0].shape != ts[1].shape:
            raise InputError(f"node '{self._label()}': Add with broadcasting {ts[0].shape} + {ts[1].shape}")
        out_name = out_name or node.output[0]
        # the accumulator's unit is input 0's scale; the integer pass picks the multipliers
        qtype = self._acc_qtype(np.array(ts[0].qtype.scale), None)
        out = self._new_tensor(out_name, ts[0].shape, "acc", qtype, ts[0].layout)
        self._emit(ir.Add, [ts[0].name, ts[1].name], out)
        self._set(out_name, out, "real")

    def op_Concat(self, node: onnx.NodeProto) -> None:
        vals = [self._dynamic(n) for n in node.input]
        ts = [self.tensors[v.tensor] for v in vals]
        axis = int(self._attr(node, "axis"))
        nd = len(ts[0].shape)
        if axis % nd != 1:
            raise InputError(f"node '{self._label()}': Concat along axis {axis}; only channel concat is supported")
        if any(t.kind != "codes" for t in ts):
            raise InputError(f"node '{self._label()}': Concat of unquantized tensors is not supported")
        if len({ir._qkey(t.qtype) for t in ts}) == 1 and not ts[0].qtype.per_channel:
            self._emit_concat([t.name for t in ts], node.output[0], vals[0].view)
        else:
            self.values[node.output[0]] = PendingConcat(vals, 1, self._label())

    def _emit_concat(self, tensors: list[str], out_name: str, view: str) -> None:
        ts = [self.tensors[n] for n in tensors]
        shape = list(ts[0].shape)
        shape[1] = sum(t.shape[1] for t in ts)
        for t in ts[1:]:
            if [d for i, d in enumerate(t.shape) if i != 1] != [d for i, d in enumerate(ts[0].shape) if i != 1]:
                raise InputError(f"node '{self._label()}': Concat inputs differ in shape {ts[0].shape} vs {t.shape}")
        out = self._new_tensor(out_name, tuple(shape), "codes", ts[0].qtype, ts[0].layout)
        self._emit(ir.Concat, tensors, out, axis=1)
        self._set(out_name, out, view)

    def _resolve_concat(self, pending: PendingConcat, qtype: ir.QType, rounding: str, out_name: str, view: str,
                        zero_point_after_rounding: bool = False) -> None:  # fmt: skip
        if qtype.per_channel:
            raise InputError(f"node '{self._label()}': per-channel quantizer after a Concat")
        parts = []
        for v in pending.values:
            t = self.tensors[v.tensor]
            if t.qtype == qtype:
                parts.append(v.tensor)
                continue
            req = self._new_tensor(f"{out_name}_{t.name}", t.shape, "codes", qtype, t.layout)
            requant = ir.FloatRequant((), qtype, rounding, zero_point_after_rounding=zero_point_after_rounding)
            self._emit(ir.Requantize, [v.tensor], req, requant=requant)
            parts.append(req)
        self._emit_concat(parts, out_name, view)


def _int_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    q = ir.QType(bits, signed, narrow=narrow)
    return q.qmin, q.qmax
