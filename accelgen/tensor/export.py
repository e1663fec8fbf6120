"""Export a trained network of TT and quantized dense layers to QONNX, written with onnx.helper.

``export_qonnx(model, path, input_shape)`` walks an ``nn.Sequential`` (nested ones are
flattened) of :class:`~accelgen.tensor.quant.FakeQuant`, :class:`~accelgen.tensor.tt.TTLinear`,
:class:`~accelgen.tensor.qlinear.QuantLinear` and ``nn.ReLU`` and writes what its eval-mode
forward computes:

* a ``FakeQuant`` is a QONNX ``Quant(x, scale, 0, bits)`` (rounding ``ROUND``, half to even,
  as the torch forward rounds in eval mode);
* a ``TTLinear`` is its input Quant, then the contraction in the layer's ``order``, one step
  per core: a Transpose moving the axes the step sums over (the core's input mode and the
  rank bond it shares with the run contracted so far) to the end, a Reshape to
  ``(batch, rows, K)``, a MatMul with the core as a quantized ``(K, Q)`` matrix, a Reshape
  splitting the product's axes, and a Quant on every state between steps; then a Reshape to
  ``(batch, out_features)`` and the bias Add. This is the form of ``accelgen.ir.TTDense``;
  nothing in the graph tells a reader it is a TT layer (names are only descriptive);
* a ``QuantLinear`` is its input Quant, ``MatMul(x, Quant(W.T))``, the bias Add and its output
  Quant; ``nn.ReLU`` is a Relu.

The file has IR version 10 (what onnxruntime, which runs qonnx's standard nodes, reads),
opset 13 and the ``qonnx.custom_op.general`` domain; the batch dimension is symbolic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from accelgen.tensor.qlinear import QuantLinear
from accelgen.tensor.quant import FakeQuant, QuantSpec
from accelgen.tensor.tt import TTLinear

__all__ = ["ExportError", "export_qonnx"]

QONNX_DOMAIN = "qonnx.custom_op.general"
IR_VERSION = 10
OPSET = 13


class ExportError(ValueError):
    """The model holds something the exporter cannot write; the message names the module."""


class _Graph:
    """Nodes and initializers being written; every name is unique and descriptive."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.names: set[str] = set()

    def unique(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self.names:
            n += 1
            candidate = f"{name}_{n}"
        self.names.add(candidate)
        return candidate

    def const(self, name: str, value: np.ndarray) -> str:
        name = self.unique(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, domain: str = "", **attrs) -> str:
        name = self.unique(name)
        out = self.unique(name + "_out")
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, domain=domain, **attrs))
        return out

    def quant(self, x: str, spec: QuantSpec, name: str) -> str:
        scale = self.const(name + "_scale", np.float32(spec.scale))
        zero_point = self.const(name + "_zero_point", np.float32(0))
        bits = self.const(name + "_bitwidth", np.float32(spec.bits))
        return self.node("Quant", [x, scale, zero_point, bits], name, domain=QONNX_DOMAIN, signed=int(spec.signed),
                         narrow=int(spec.narrow), rounding_mode="ROUND")  # fmt: skip

    def reshape(self, x: str, sample_shape: Sequence[int], name: str) -> str:
        shape = self.const(name + "_shape", np.array([-1, *[int(d) for d in sample_shape]], np.int64))
        return self.node("Reshape", [x, shape], name)

    def transpose(self, x: str, sample_perm: Sequence[int], name: str) -> str:
        """Transpose the sample axes by ``sample_perm`` (the batch stays first); no node if identity."""
        if list(sample_perm) == list(range(len(sample_perm))):
            return x
        return self.node("Transpose", [x], name, perm=[0, *[int(p) + 1 for p in sample_perm]])


def _layers(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        return [layer for child in model for layer in _layers(child)]
    return [model]


def _write_tt(g: _Graph, x: str, layer: TTLinear) -> str:
    """The TT contraction of ``layer`` on ``x`` (already quantized), bias included."""
    name = layer.name
    d, order = layer.d, tuple(layer.order)
    specs = layer.quant_specs()
    if len(specs["cores"]) != d or len(specs["mids"]) != d - 1:
        raise ExportError(
            f"layer {name!r}: every core and every state between contraction steps needs a quantizer for "
            "integer hardware; build the TTLinear with core_bits and mid_bits"
        )
    ranks = layer.ranks
    size = {("m", k): layer.modes_in[k] for k in range(d)} | {("n", k): layer.modes_out[k] for k in range(d)}
    size |= {("r", k): ranks[k] for k in range(d + 1)}
    # the state's axes (batch excluded) by label; the input split into its modes
    labels = [("m", k) for k in range(d)]
    state = g.reshape(x, layer.modes_in, f"{name}.reshape_to_modes")
    last = order[0]  # the right end of the run contracted so far
    for t, k in enumerate(order):
        core_labels = [("r", k), ("m", k), ("n", k), ("r", k + 1)]
        if t == 0:
            summed = [("m", k)]
        elif k == last + 1:  # extends the run to the right: sums the bond on the core's left
            summed, last = [("r", k), ("m", k)], k
        else:  # the order is legal: the core is left of the run; sums the bond on its right
            summed = [("m", k), ("r", k + 1)]
        kept_state = [lab for lab in labels if lab not in summed]
        kept_core = [lab for lab in core_labels if lab not in summed]
        state = g.transpose(state, [labels.index(lab) for lab in kept_state + summed], f"{name}.step{t}.transpose")
        rows = math.prod(size[lab] for lab in kept_state)
        depth = math.prod(size[lab] for lab in summed)
        state = g.reshape(state, (rows, depth), f"{name}.step{t}.reshape_rows")
        core = layer.cores[k].detach().double().cpu().numpy()
        matrix = np.transpose(core, [core_labels.index(lab) for lab in summed + kept_core]).reshape(depth, -1)
        matrix_name = g.const(f"{name}.core{k}", matrix.astype(np.float32))
        weight = g.quant(matrix_name, specs["cores"][k], f"{name}.core{k}.quant")
        state = g.node("MatMul", [state, weight], f"{name}.step{t}.matmul")
        labels = kept_state + kept_core
        state = g.reshape(state, [size[lab] for lab in labels], f"{name}.step{t}.reshape_split")
        if t < d - 1:
            state = g.quant(state, specs["mids"][t], f"{name}.step{t}.quant")
    out_labels = [("n", k) for k in range(d)]
    rest = [lab for lab in labels if lab not in out_labels]  # the boundary ranks, of size 1
    state = g.transpose(state, [labels.index(lab) for lab in out_labels + rest], f"{name}.transpose_out")
    y = g.reshape(state, (layer.out_features,), f"{name}.reshape_out")
    if layer.bias is not None:
        y = g.node("Add", [y, g.const(f"{name}.bias", _float32(layer.bias))], f"{name}.bias_add")
    return y


def _float32(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def _write_linear(g: _Graph, x: str, layer: QuantLinear) -> str:
    specs = layer.quant_specs()
    w = g.const(f"{layer.name}.weight", _float32(layer.weight).T.copy())
    y = g.node("MatMul", [x, g.quant(w, specs["weight"], f"{layer.name}.weight.quant")], f"{layer.name}.matmul")
    if layer.bias is not None:
        y = g.node("Add", [y, g.const(f"{layer.name}.bias", _float32(layer.bias))], f"{layer.name}.bias_add")
    return y if specs["out"] is None else g.quant(y, specs["out"], f"{layer.name}.out.quant")


def _check_input_quantized(layer: nn.Module, quantized: bool, index: int) -> None:
    if not quantized:
        raise ExportError(
            f"layer {getattr(layer, 'name', index)!r} (module {index}): its input is not quantized, so the "
            "hardware cannot take it; give the layer act_bits or put a FakeQuant before it"
        )


def export_qonnx(
    model: nn.Module,
    path: str | Path,
    input_shape: Sequence[int],
    *,
    input_name: str = "x",
    output_name: str = "y",
    graph_name: str = "accelgen_tensor",
) -> onnx.ModelProto:
    """Write ``model`` (eval-mode semantics) to ``path`` as QONNX and return the model.

    ``input_shape`` is ``(batch, features)``; a batch of None or a string makes the batch
    dimension symbolic. The modules are an ``nn.Sequential`` of ``FakeQuant``, ``TTLinear``,
    ``QuantLinear`` and ``nn.ReLU``; the first layer's input must be quantized. Raises
    :class:`ExportError` naming the module that cannot be written.
    """
    if len(input_shape) != 2:
        raise ExportError(f"input_shape {tuple(input_shape)}: expected (batch, features)")
    batch, features = input_shape
    batch_dim = "batch" if batch is None or isinstance(batch, str) else int(batch)
    g = _Graph()
    g.names |= {input_name, output_name}
    x, width, quantized = input_name, int(features), False
    for index, layer in enumerate(_layers(model)):
        label = getattr(layer, "name", type(layer).__name__)
        if isinstance(layer, FakeQuant):
            x, quantized = g.quant(x, layer.spec(), f"{layer.name}.quant"), True
            continue
        if isinstance(layer, nn.ReLU):
            x = g.node("Relu", [x], f"relu{index}")
            continue
        if not isinstance(layer, (TTLinear, QuantLinear)):
            raise ExportError(
                f"module {index} ({type(layer).__name__}): the exporter writes FakeQuant, TTLinear, QuantLinear "
                "and ReLU; replace nn.Linear by accelgen.tensor.QuantLinear"
            )
        if layer.in_features != width:
            raise ExportError(f"layer {label!r}: takes {layer.in_features} features, the previous layer gives {width}")
        if layer.act_quant is not None:
            x, quantized = g.quant(x, layer.act_quant.spec(), f"{layer.name}.act.quant"), True
        _check_input_quantized(layer, quantized, index)
        if isinstance(layer, TTLinear):
            x, quantized = _write_tt(g, x, layer), False
        else:
            x, quantized = _write_linear(g, x, layer), layer.out_quant is not None
        width = layer.out_features
    if not g.nodes:
        raise ExportError("the model has no layers to export")
    g.nodes[-1].output[0] = output_name
    graph = helper.make_graph(
        g.nodes,
        graph_name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch_dim, int(features)])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch_dim, width])],
        g.initializers,
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(QONNX_DOMAIN, 1)],
        producer_name="accelgen.tensor.export",
    )
    onnx_model.ir_version = IR_VERSION
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))
    return onnx_model
