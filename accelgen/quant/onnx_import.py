"""A float ONNX model as a torch module (``torch.fx``) that :func:`accelgen.quant.quantize` takes.

onnx2torch would pull in torchvision (which the project does not install), and the float
networks accelgen builds use a handful of operators, so each supported operator has a small
handler here that adds standard torch layers to an fx graph: Gemm / MatMul (+ Add) -> Linear,
Conv -> Conv2d, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten,
Reshape to (batch, -1), Add of two tensors, Identity and Dropout. Every other node is an
error naming it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import fx, nn

from accelgen.errors import InputError, UnsupportedError

_HANDLERS: dict[str, Callable] = {}


def _handles(*ops: str):
    def register(fn):
        for op in ops:
            _HANDLERS[op] = fn
        return fn

    return register


class _Builder:
    """The fx graph under construction, the ONNX constants, and which tensor is which fx node."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.root = nn.Module()
        self.graph = fx.Graph()
        self.consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.values: dict[str, fx.Node] = {}
        self.ranks = _ranks(model)
        self.uses = {}
        for n in model.graph.node:
            for i in n.input:
                self.uses[i] = self.uses.get(i, 0) + 1
        self.linear_of: dict[str, str] = {}  # tensor name -> Linear module producing it

    def attr(self, node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def const(self, node, name: str) -> np.ndarray:
        if name not in self.consts:
            raise InputError(f"node '{node.name}' ({node.op_type}): input '{name}' must be a constant (an initializer)")
        return self.consts[name]

    def module(self, node, module: nn.Module, src: str) -> fx.Node:
        name = _module_name(node, len(list(self.root.children())))
        self.root.add_module(name, module)
        out = self.graph.call_module(name, (self.values[src],))
        self.values[node.output[0]] = out
        return out

    def function(self, node, fn, *args) -> None:
        self.values[node.output[0]] = self.graph.call_function(fn, args)


def _module_name(node, index: int) -> str:
    base = "".join(c if c.isalnum() else "_" for c in (node.name or node.op_type)).strip("_").lower()
    return f"{base or 'layer'}_{index}"  # the index keeps names unique and not starting with a digit


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is a convenience here: ranks then come from the layers
        inferred = model
    ranks = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        if vi.type.tensor_type.HasField("shape"):
            ranks[vi.name] = len(vi.type.tensor_type.shape.dim)
    return ranks


@_handles("Gemm")
def _gemm(b: _Builder, node) -> None:
    if b.attr(node, "transA", 0) or b.attr(node, "alpha", 1.0) != 1.0 or b.attr(node, "beta", 1.0) != 1.0:
        raise InputError(f"node '{node.name}' (Gemm): transA, alpha or beta other than the defaults is not supported")
    w = b.const(node, node.input[1])
    w = w if b.attr(node, "transB", 0) else w.T
    bias = b.const(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    _linear(b, node, w, bias)


@_handles("MatMul")
def _matmul(b: _Builder, node) -> None:
    _linear(b, node, b.const(node, node.input[1]).T, None)


def _linear(b: _Builder, node, w: np.ndarray, bias: np.ndarray | None) -> None:
    layer = nn.Linear(w.shape[1], w.shape[0], bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.array(w, dtype=np.float32)))  # a writable copy
        layer.bias.copy_(
            torch.from_numpy(np.zeros(w.shape[0], np.float32) if bias is None else bias.astype(np.float32))
        )
    b.module(node, layer, node.input[0])
    b.linear_of[node.output[0]] = b.values[node.output[0]].target


@_handles("Add")
def _add(b: _Builder, node) -> None:
    dynamic = [i for i in node.input if i not in b.consts]
    if len(dynamic) == 2:
        b.function(node, operator.add, b.values[node.input[0]], b.values[node.input[1]])
        return
    src = dynamic[0] if dynamic else None
    const = next(i for i in node.input if i in b.consts)
    if (
        src in b.linear_of
        and b.uses.get(src, 0) == 1
        and b.consts[const].size == b.root.get_submodule(b.linear_of[src]).out_features
    ):
        layer = b.root.get_submodule(b.linear_of[src])
        with torch.no_grad():  # MatMul + Add: the Add is the Linear's bias
            layer.bias.add_(torch.from_numpy(b.consts[const].astype(np.float32).reshape(-1)))
        b.values[node.output[0]] = b.values[src]
        return
    raise InputError(f"node '{node.name}' (Add): adding the constant '{const}' to '{src}' is supported only as the "
                     "bias of a MatMul; fold it into the previous layer")  # fmt: skip


@_handles("Conv")
def _conv(b: _Builder, node) -> None:
    w = b.const(node, node.input[1])
    if w.ndim != 4:
        raise InputError(f"node '{node.name}' (Conv): only 2-D convolutions are supported, weight has shape {w.shape}")
    pads = list(b.attr(node, "pads", [0, 0, 0, 0]))
    if b.attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or pads[:2] != pads[2:]:
        raise InputError(f"node '{node.name}' (Conv): asymmetric or automatic padding {pads} is not supported")
    groups = int(b.attr(node, "group", 1))
    bias = b.const(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=tuple(b.attr(node, "strides", [1, 1])),
                     padding=tuple(pads[:2]), dilation=tuple(b.attr(node, "dilations", [1, 1])), groups=groups,
                     bias=bias is not None)  # fmt: skip
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        if bias is not None:
            conv.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    b.module(node, conv, node.input[0])


@_handles("BatchNormalization")
def _batchnorm(b: _Builder, node) -> None:
    scale, shift, mean, var = (b.const(node, n).astype(np.float32) for n in node.input[1:5])
    rank = b.ranks.get(node.input[0], 4)
    bn = (nn.BatchNorm1d if rank == 2 else nn.BatchNorm2d)(scale.size, eps=float(b.attr(node, "epsilon", 1e-5)))
    with torch.no_grad():
        for p, v in ((bn.weight, scale), (bn.bias, shift), (bn.running_mean, mean), (bn.running_var, var)):
            p.copy_(torch.from_numpy(v))
    b.module(node, bn, node.input[0])


@_handles("Relu")
def _relu(b: _Builder, node) -> None:
    b.function(node, F.relu, b.values[node.input[0]])


def _pool_args(b: _Builder, node) -> dict:
    pads = list(b.attr(node, "pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:] or b.attr(node, "ceil_mode", 0) or len(b.attr(node, "kernel_shape")) != 2:
        raise InputError(f"node '{node.name}' ({node.op_type}): only 2-D pools with symmetric padding, no ceil_mode")
    kernel = tuple(b.attr(node, "kernel_shape"))
    return {"kernel_size": kernel, "stride": tuple(b.attr(node, "strides", kernel)), "padding": tuple(pads[:2])}


@_handles("MaxPool")
def _maxpool(b: _Builder, node) -> None:
    b.module(node, nn.MaxPool2d(**_pool_args(b, node)), node.input[0])


@_handles("AveragePool")
def _avgpool(b: _Builder, node) -> None:
    pool = nn.AvgPool2d(**_pool_args(b, node), count_include_pad=bool(b.attr(node, "count_include_pad", 0)))
    b.module(node, pool, node.input[0])


@_handles("GlobalAveragePool")
def _global_avgpool(b: _Builder, node) -> None:
    b.module(node, nn.AdaptiveAvgPool2d(1), node.input[0])


@_handles("Flatten")
def _flatten(b: _Builder, node) -> None:
    if int(b.attr(node, "axis", 1)) != 1:
        raise InputError(f"node '{node.name}' (Flatten): only axis 1 is supported")
    b.function(node, torch.flatten, b.values[node.input[0]], 1)


@_handles("Reshape")
def _reshape(b: _Builder, node) -> None:
    shape = b.const(node, node.input[1]).reshape(-1).tolist()
    if len(shape) != 2 or shape[1] not in (-1,) and shape[0] not in (0, -1, 1):
        raise InputError(f"node '{node.name}' (Reshape): only a reshape to (batch, -1) is supported, got {shape}")
    b.function(node, torch.flatten, b.values[node.input[0]], 1)


@_handles("Constant")
def _constant(b: _Builder, node) -> None:
    value = b.attr(node, "value")
    if value is None:
        raise InputError(f"node '{node.name}' (Constant): only a 'value' tensor is supported")
    b.consts[node.output[0]] = numpy_helper.to_array(value)


@_handles("Identity", "Dropout")
def _identity(b: _Builder, node) -> None:
    b.values[node.output[0]] = b.values[node.input[0]]


def load_float_onnx(path: str | Path) -> tuple[fx.GraphModule, tuple[int, ...]]:
    """``path`` as a torch module and its input's per-sample shape."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise InputError(f"{path}: not an ONNX model ({exc})") from None
    for i in model.graph.initializer:
        if i.data_location == onnx.TensorProto.EXTERNAL:
            raise InputError(f"{path}: initializer '{i.name}' is stored outside the file; save it as one file")
    problems = [
        f"node '{n.name}' ({n.op_type})"
        for n in model.graph.node
        if n.op_type not in _HANDLERS or n.domain not in ("", "ai.onnx")
    ]
    if problems:
        raise UnsupportedError(problems, f"accelgen quantize converts float models of {', '.join(sorted(_HANDLERS))}")
    b = _Builder(model)
    inputs = [i for i in model.graph.input if i.name not in b.consts]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise InputError(f"{path}: accelgen quantize takes a model with one input and one output")
    b.values[inputs[0].name] = b.graph.placeholder("x")
    for node in model.graph.node:
        _HANDLERS[node.op_type](b, node)
    b.graph.output(b.values[model.graph.output[0].name])
    dims = inputs[0].type.tensor_type.shape.dim[1:]
    sample = tuple(d.dim_value for d in dims)
    return fx.GraphModule(b.root, b.graph), sample
