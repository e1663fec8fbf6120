"""The importer's context: its state, its driver and the helpers every handler shares
(graph I/O, constants, checks). Handlers (accelgen.frontend.registry) read and extend it."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx

from accelgen import ir
from accelgen.errors import InputError, UnsupportedError
from accelgen.frontend.constants import QConst, fold_node, int_dtype_bits, to_array
from accelgen.frontend.load import SUPPORTED_EXPORTERS, detect_dialect, opset_version
from accelgen.frontend.quantizers import clip_constant, quantize_constant
from accelgen.frontend.registry import handler_for
from accelgen.frontend.tensor_train import import_tt_chain
from accelgen.frontend.values import (
    FLOAT_INPUT_DTYPES,
    FOLDABLE,
    LAYOUT_OPS,
    MAX_BITS,
    PendingConcat,
    Value,
)


class ImportContext:
    """What the import has built so far (tensors, constants, ops), the node being imported
    (``node``, for error messages) and the helpers the handlers share."""

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
        self.code_ranges: dict[str, tuple[int, int]] = {}  # integer constants narrowed by a Clip
        self.io_dtypes: dict[str, str] = {}
        self._names: set[str] = set()
        self._outputs: set[str] = set()  # graph outputs (IR tensors named as in the model)
        self.node: onnx.NodeProto | None = None
        self.done_nodes: set[int] = set()  # nodes imported ahead of their turn (a TT chain and its constants)
        self.tt_index: tuple[dict[str, list[int]], dict[str, int]] | None = None  # ONNX consumers, producer

    # -- driver ----------------------------------------------------------------------

    def run(self) -> ir.Graph:
        """Import every node in order (a tensor-train chain as one layer) and return the graph."""
        g = self.model.graph
        for init in g.initializer:
            self.consts[init.name] = to_array(init)
        self._check_supported()
        inputs = self._read_inputs()
        for index, node in enumerate(g.node):
            if index in self.done_nodes:
                continue
            self.node = node
            if import_tt_chain(self, index, node):
                continue
            self.import_node(node)
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
            if handler_for(node) is None:
                dom = f" (domain '{node.domain}')" if node.domain else ""
                problems.append(f"node '{node.name or node.output[0]}': op {node.op_type}{dom}")
        if problems:
            raise UnsupportedError(
                problems,
                "accelgen supports the quantized Conv/Gemm/MatMul/pool/Add/Concat networks that "
                f"{SUPPORTED_EXPORTERS} produce; see the README's list of supported ops.",
            )

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
                t = self.new_tensor(vi.name, shape, "codes", ir.QType(bits, signed), layout)
                self.uninterpreted.add(t)
                self.values[vi.name] = Value(t, "int")
            elif np.dtype(dtype).name in FLOAT_INPUT_DTYPES:
                t = self.new_tensor(vi.name, shape, "float", None, layout)
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
        self._check_declared_shape(vi, t.shape)
        wants_real = dtype is None or dtype.kind == "f"
        self.io_dtypes[vi.name] = dtype.name if dtype is not None else "float32"
        if t.kind != "float" and wants_real:
            if vi.name in self.tensors:  # the codes carry the output's name (a QONNX Quant): move them
                self._rename_tensor(vi.name, self.fresh(f"{vi.name}_codes"))
            self.tensors[vi.name] = ir.Tensor(vi.name, t.shape, "float", None, t.layout)
            self._names.add(vi.name)
            self.emit(ir.Dequantize, [self.values[vi.name].tensor], vi.name, source=vi.name)
        elif v.tensor != vi.name:
            # a pass-through op (Identity, a quantizer onto the codes' own grid) left the
            # output an alias of a tensor named after another ONNX value
            if v.tensor in self._outputs or not any(v.tensor in op.outputs for op in self.ops):
                raise InputError(
                    f"graph output '{vi.name}' is the value '{v.tensor}' (a graph input or another output) "
                    "passed through unchanged; accelgen needs each output computed by its own layer"
                )
            if vi.name in self.tensors:
                self._rename_tensor(vi.name, self.fresh(f"{vi.name}_value"))
            self._rename_tensor(v.tensor, vi.name)
        self._outputs.add(vi.name)
        return vi.name

    def _check_declared_shape(self, vi: onnx.ValueInfoProto, shape: tuple) -> None:
        """A graph output's declared shape must agree with the shape the layers compute."""
        dims = vi.type.tensor_type.shape.dim if vi.type.tensor_type.HasField("shape") else []
        declared = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if dims and (len(declared) != len(shape) or any(
                d is not None and d > 0 and s is not None and d != s for d, s in zip(declared, shape))):  # fmt: skip
            raise InputError(
                f"graph output '{vi.name}' is declared with shape {declared} but the model computes "
                f"(batch, {', '.join(map(str, shape[1:]))}); fix the declared output shape or re-export"
            )

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

    def import_node(self, node: onnx.NodeProto) -> None:
        """Import one node: evaluate it if its inputs are constant, else call its handler."""
        handler = handler_for(node)
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
            raise InputError(f"node '{self.label()}' reads '{missing[0]}', which nothing produces")
        handler(self, node)

    def _fold(self, node: onnx.NodeProto) -> bool:
        """Evaluate a node whose inputs are all constant; False if it must be handled."""
        op = node.op_type
        if op in ("Quant", "IntQuant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear"):
            self.qconsts[node.output[0]] = quantize_constant(self, node)
            return True
        if op == "Clip" and clip_constant(self, node):
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
        args = [self.const_real(n) if n else None for n in node.input]
        for out, val in zip(node.output, fold_node(node, args, self.opset)):
            self.consts[out] = val
        return True

    # -- helpers -----------------------------------------------------------------------

    def label(self) -> str:
        n = self.node
        return (n.name or n.output[0]) if n is not None else "?"

    def fresh(self, name: str) -> str:
        base = name or "t"
        cand, i = base, 1
        while cand in self._names:
            cand = f"{base}_{i}"
            i += 1
        self._names.add(cand)
        return cand

    def new_tensor(self, name, shape, kind, qtype=None, layout="") -> str:
        tname = self.fresh(name)
        self.tensors[tname] = ir.Tensor(tname, tuple(shape), kind, qtype, layout)
        return tname

    def emit(self, cls, inputs, output, source=None, **attrs) -> ir.Op:
        op = cls(
            name=self.fresh(f"{cls.kind.lower()}:{source or self.label()}"),
            inputs=tuple(inputs),
            outputs=(output,),
            source=source or self.label(),
            **attrs,
        )
        self.ops.append(op)
        return op

    def attr(self, node: onnx.NodeProto, name: str, default=None):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def const_real(self, name: str) -> np.ndarray:
        if name in self.consts:
            return self.consts[name]
        if name in self.qconsts:
            return self.qconsts[name].real()
        raise InputError(
            f"node '{self.label()}': input '{name}' must be a constant (initializer); "
            "accelgen compiles weights and quantization parameters into the hardware"
        )

    def dynamic(self, name: str) -> Value:
        v = self.values.get(name)
        if isinstance(v, PendingConcat):
            raise InputError(
                f"node '{self.label()}' reads the Concat '{v.node}' of differently quantized "
                "tensors without a quantizer in between"
            )
        if v is None:
            raise InputError(f"node '{self.label()}': input '{name}' is not a data tensor")
        return v

    def set(self, onnx_name: str, tensor: str, view: str) -> None:
        self.values[onnx_name] = Value(tensor, view)

    def scale_zp(self, scale_name: str, zp_name: str | None):
        """Scale and zero point constants as flat arrays, checked for sanity."""
        scale = np.asarray(self.const_real(scale_name), dtype=np.float64).reshape(-1)
        zp_arr = np.asarray(self.consts[zp_name]) if zp_name else np.zeros(1, np.int64)
        if zp_name and zp_name in self.qconsts:
            zp_arr = self.qconsts[zp_name].codes
        zp = zp_arr.astype(np.float64).reshape(-1)
        self.check_scale(scale, scale_name)
        if not np.all(zp == np.round(zp)):
            raise InputError(
                f"node '{self.label()}': zero point '{zp_name}' is not an integer ({zp}); "
                "accelgen needs integer zero points"
            )
        return scale, zp.astype(np.int64)

    def check_scale(self, scale: np.ndarray, name: str) -> None:
        bad = ~np.isfinite(scale) | (scale <= 0)
        if np.any(bad):
            raise InputError(
                f"node '{self.label()}': scale '{name}' has {int(bad.sum())} invalid value(s) "
                f"(e.g. {scale[bad][0]}): scales must be finite and positive; re-export the "
                "model after calibration"
            )

    def check_bits(self, bits: float, what: str) -> int:
        if bits != int(bits) or bits < 1:
            raise InputError(f"node '{self.label()}': {what} bit width {bits} is not a whole number >= 1")
        if bits > MAX_BITS:
            raise InputError(
                f"node '{self.label()}': {what} bit width {int(bits)} exceeds {MAX_BITS}; accelgen "
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

    def per_channel(self, arr: np.ndarray, tensor: str, what: str) -> np.ndarray:
        """A constant broadcast against a feature map, as one value per channel."""
        t = self.tensors[tensor]
        arr = np.asarray(arr, dtype=np.float64)
        if arr.size == 1:
            return arr.reshape(1)
        ch = t.channels
        nd = len(t.shape)
        if arr.ndim > nd:
            raise InputError(f"node '{self.label()}': {what} of shape {arr.shape} has more dimensions than {t.shape}")
        full = arr.reshape((1,) * (nd - arr.ndim) + arr.shape) if arr.ndim < nd else arr
        # the value may vary only along the channel axis (1 for NCHW / flat)
        axis = 1 if nd >= 2 else 0
        try:
            moved = np.moveaxis(np.broadcast_to(full, (1, *full.shape[1:]) if nd > 1 else full.shape), axis, 0)
        except ValueError:
            raise InputError(
                f"node '{self.label()}': {what} of shape {arr.shape} does not broadcast against "
                f"'{tensor}' of shape {t.shape}"
            ) from None
        if moved.shape[0] not in (1, ch):
            raise InputError(f"node '{self.label()}': {what} of shape {arr.shape} does not match {ch} channels")
        flat = moved.reshape(moved.shape[0], -1)
        if np.ptp(flat, axis=1).max() > 0:
            raise InputError(
                f"node '{self.label()}': {what} varies within a channel; only per-tensor or "
                "per-channel constants can be folded into requantization"
            )
        return flat[:, 0].copy()

    def interpret(self, v: Value, qtype_args: tuple, what: str) -> str:
        """Give an int view its meaning (scale, zero point); returns the codes tensor.

        A graph input of integer type learns its scale from its first reader; a tensor
        already quantized with another scale is requantized.
        """
        scale, zp = qtype_args
        t = self.tensors[v.tensor]
        if t.kind == "float":
            raise InputError(f"node '{self.label()}' expects integer codes for {what}, got a float tensor")
        bits, signed = t.qtype.bits, t.qtype.signed
        want = self._qtype_for(v.tensor, scale, zp, bits, signed)
        if v.tensor in self.uninterpreted:
            self.uninterpreted.discard(v.tensor)
            self.tensors[v.tensor] = ir.Tensor(t.name, t.shape, t.kind, want, t.layout)
            return v.tensor
        if t.qtype.scale == want.scale and t.qtype.zero_point == want.zero_point:
            return v.tensor
        raise InputError(
            f"node '{self.label()}': {what} is read with scale {want.scale} / zero point "
            f"{want.zero_point} but was produced with {t.qtype.scale} / {t.qtype.zero_point}"
        )

    def real_input(self, name: str, what: str) -> str:
        """The IR tensor behind a real-valued ONNX input; codes must already be dequantized."""
        v = self.dynamic(name)
        if v.view == "int" and self.tensors[v.tensor].kind == "codes" and v.tensor in self.uninterpreted:
            raise InputError(f"node '{self.label()}': integer input '{name}' is used without a scale")
        return v.tensor

    def codes_input(self, name: str, what: str) -> str:
        """An input that must be quantized codes (the data input of Conv, MatMul, pools)."""
        v = self.dynamic(name)
        t = self.tensors[v.tensor]
        if t.kind != "codes":
            producer = "a float tensor" if t.kind == "float" else "an unquantized accumulator"
            raise InputError(
                f"node '{self.label()}' ({self.node.op_type}): {what} '{name}' is {producer}; "
                "accelgen needs a quantizer (Quant / QuantizeLinear) in front of every "
                "Conv, Gemm, MatMul and pool. Add one (e.g. a Brevitas QuantIdentity)."
            )
        return v.tensor

    def weights(self, name: str, out_axis: int) -> tuple[np.ndarray, ir.QType]:
        """Quantized weights: integer ``code - zero_point`` and their QType (per out channel)."""
        if name not in self.qconsts:
            if name in self.consts and np.asarray(self.consts[name]).dtype.kind in "iu":
                arr = np.asarray(self.consts[name])
                bits, signed = int_dtype_bits(arr.dtype) or (8, True)
                q = QConst.make(arr, 1.0, 0, bits, signed, source=name)
            else:
                raise InputError(
                    f"node '{self.label()}' ({self.node.op_type}): weights '{name}' are not "
                    "quantized (float constant). Quantize the weights (Brevitas QuantConv/QuantLinear, "
                    "onnxruntime quantize_static) so accelgen can build integer hardware."
                )
        else:
            q = self.qconsts[name]
        bits = self.check_bits(q.bits, f"weight '{name}'")
        scale, zp = q.per_axis(name, out_axis)
        if np.all(scale == scale[0]) and np.all(zp == zp[0]):
            scale, zp = scale[:1], zp[:1]
        self.check_scale(scale, name)
        w = q.codes - q.zero_point
        qt = ir.QType(bits, q.signed, tuple(map(float, scale)), tuple(map(int, zp)),
                      axis=0 if scale.size > 1 else None, narrow=q.narrow, bipolar=q.bipolar)  # fmt: skip
        return w.astype(np.int64), qt

    def acc_qtype(self, scale: np.ndarray, axis: int | None) -> ir.QType:
        scale = np.asarray(scale, dtype=np.float64).reshape(-1)
        return ir.QType(32, True, tuple(map(float, scale)), (0,), axis=axis if scale.size > 1 else None)

    def emit_float(self, cls, src: str, onnx_out: str, **attrs) -> None:
        t = self.tensors[src]
        out = self.new_tensor(onnx_out, t.shape, "float", None, t.layout)
        self.emit(cls, [src], out, **attrs)
        self.set(onnx_out, out, "real")
