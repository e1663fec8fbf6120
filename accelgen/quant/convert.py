"""A float torch model to its Brevitas version: compute layers, activations and the input quantized.

The model is traced with ``torch.fx``; Linear and Conv2d become QuantLinear / QuantConv2d with
the method's weight quantizer, every ReLU (module, ``F.relu``, ``torch.relu``, ``.relu()``) a
QuantReLU, and a quantizer is inserted where a compute layer or an Add would otherwise read a
tensor that is not on a grid (the graph input, the output of an average pool or of an Add).
BatchNorm stays float (accelgen folds it). Pools, flatten and reshapes keep a tensor on its grid.
"""

from __future__ import annotations

import operator

import brevitas.nn as qnn
import torch
import torch.nn.functional as F
from brevitas import quant as bq
from brevitas.core.function_wrapper import TensorClampSte
from brevitas.inject.enum import ScalingImplType, StatsOp
from torch import fx, nn

from accelgen.errors import InputError
from accelgen.quant.quantizers import LsqActQuant, parse_bits, weight_quantizer

METHODS = ("ul2q", "lsq", "brevitas")
#: input and residual-branch quantizers stay at 8 bits in every method
EDGE_BITS = 8

_RELU_FUNCTIONS = (F.relu, torch.relu)
_KEEP_GRID_MODULES = (nn.MaxPool2d, nn.Flatten, nn.Identity, nn.Dropout)
_KEEP_GRID_FUNCTIONS = (torch.flatten, F.max_pool2d)
_KEEP_GRID_METHODS = ("view", "reshape", "flatten", "contiguous")
_NONNEG_MODULES = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)


def compute_layers(model: nn.Module) -> list[str]:
    """Names of the Linear / Conv2d layers (the keys of a per-layer ``w_bits`` dict)."""
    return [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def activation_nodes(model: nn.Module) -> list[str]:
    """Names of the ReLUs in the traced graph (the keys of a per-layer ``a_bits`` dict)."""
    graph = _trace(model).graph
    return [n.name for n in graph.nodes if _is_relu(_trace(model), n)]


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        return fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types on data-dependent control flow
        raise InputError(f"cannot trace the model with torch.fx ({type(exc).__name__}: {exc}); "
                         "remove data-dependent control flow from forward()") from None  # fmt: skip


def _is_relu(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), nn.ReLU)
    if node.op == "call_function":
        return node.target in _RELU_FUNCTIONS
    return node.op == "call_method" and node.target == "relu"


def _bits_for(spec, name: str, names: list[str], what: str):
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(names) - {"default"})
        if unknown:
            raise InputError(f"{what}: no layer named {', '.join(unknown)} (layers: {', '.join(names)})")
        if name not in spec and "default" not in spec:
            raise InputError(f"{what}: no bit width for '{name}'; give it or a 'default' entry")
        spec = spec.get(name, spec.get("default"))
    try:
        return parse_bits(spec, f"{what} of '{name}'")
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _default_act_bits(a_bits):
    """Bits of a quantizer inserted after an average pool: ``a_bits`` or its 'default' entry."""
    if isinstance(a_bits, dict):
        return parse_bits(a_bits.get("default", EDGE_BITS), "a_bits 'default'")
    return parse_bits(a_bits, "a_bits")


def _act_quant(method: str, bits, signed: bool) -> dict:
    if bits == "ternary":
        raise InputError("activations cannot be ternary; give 1..8 bits")
    if bits == 1:  # binary activations are bipolar (sign), whatever the method
        if method == "brevitas":
            return {"act_quant": bq.SignedBinaryActPerTensorConst}
        return {"act_quant": LsqActQuant.let(signed=True), "bit_width": 1}
    if method == "brevitas":
        quant = bq.Int8ActPerTensorFloat if signed else bq.Uint8ActPerTensorFloat
        return {"act_quant": quant, "bit_width": int(bits)}
    return {"act_quant": LsqActQuant.let(signed=signed), "bit_width": int(bits)}


def _weight_quant(method: str, bits) -> dict:
    if method != "brevitas":
        return weight_quantizer(method, bits)
    if bits == "ternary":
        return {"weight_quant": bq.Int8WeightPerTensorFloat, "weight_bit_width": 2}
    if bits == 1:
        # Brevitas exports every 1-bit quantizer as a BipolarQuant: its binary quantizer, with
        # the scale rule of the default (max |w| per tensor)
        # the scale rule of the default (max |w| per tensor); clamping out of place (autograd)
        binary = bq.SignedBinaryWeightPerTensorConst.let(scaling_impl_type=ScalingImplType.STATS,
                                                         scaling_stats_op=StatsOp.MAX,
                                                         tensor_clamp_impl=TensorClampSte)  # fmt: skip
        return {"weight_quant": binary}
    return {"weight_quant": bq.Int8WeightPerTensorFloat, "weight_bit_width": int(bits)}


def _quant_layer(layer: nn.Module, method: str, bits) -> nn.Module:
    wq = _weight_quant(method, bits)
    if isinstance(layer, nn.Linear):
        q = qnn.QuantLinear(layer.in_features, layer.out_features, bias=layer.bias is not None, **wq)
    else:
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            raise InputError(f"conv layer: padding {layer.padding!r} ({layer.padding_mode}) is not supported")
        q = qnn.QuantConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                            padding=layer.padding, dilation=layer.dilation, groups=layer.groups,
                            bias=layer.bias is not None, **wq)  # fmt: skip
    with torch.no_grad():
        q.weight.copy_(layer.weight)
        if layer.bias is not None:
            q.bias.copy_(layer.bias)
    q.weight_quant.init_tensor_quant()  # LSQ's step starts from the float weights just copied
    return q


def to_brevitas(model: nn.Module, method: str, w_bits, a_bits) -> fx.GraphModule:
    """The Brevitas version of float ``model`` (a new module; ``model`` is not changed)."""
    if method not in METHODS:
        raise InputError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    gm = _trace(model)
    layers = compute_layers(gm)
    acts = [n.name for n in gm.graph.nodes if _is_relu(gm, n)]
    on_grid: set[fx.Node] = set()
    nonneg: set[fx.Node] = set()
    counter = [0]

    def insert_quant(node: fx.Node, before: fx.Node | None, bits, signed: bool, prefix: str) -> fx.Node:
        """A quantizer on ``node`` for ``before`` (for every reader of ``node`` when None)."""
        counter[0] += 1
        name = f"{prefix}_quant{counter[0]}"
        gm.add_submodule(name, qnn.QuantIdentity(**_act_quant(method, bits, signed), return_quant_tensor=False))
        with gm.graph.inserting_after(node) if before is None else gm.graph.inserting_before(before):
            q = gm.graph.call_module(name, (node,))
        if before is None:
            node.replace_all_uses_with(q, delete_user_cb=lambda user: user is not q)
        else:
            before.replace_input_with(node, q)
        on_grid.add(q)
        return q

    for node in list(gm.graph.nodes):
        if node.op == "placeholder":
            continue
        inputs = [a for a in node.all_input_nodes]
        if node.op == "call_module" and isinstance(gm.get_submodule(node.target), (nn.Linear, nn.Conv2d)):
            src = inputs[0]
            if src not in on_grid:
                at_input = src.op == "placeholder"
                bits = EDGE_BITS if at_input else _default_act_bits(a_bits)
                insert_quant(src, node, bits, src not in nonneg, "input" if at_input else node.name)
            bits = _bits_for(w_bits, node.target, layers, "w_bits")
            gm.delete_submodule(node.target)
            gm.add_submodule(node.target, _quant_layer(model.get_submodule(node.target), method, bits))
        elif _is_relu(gm, node):
            bits = _bits_for(a_bits, node.name, acts, "a_bits")
            name = f"{node.name}_q"
            if bits == 1:  # a sign activation replaces the ReLU (sign of a ReLU output is constant)
                act = qnn.QuantIdentity(**_act_quant(method, 1, True), return_quant_tensor=False)
            else:
                act = qnn.QuantReLU(**_act_quant(method, bits, False), return_quant_tensor=False)
            gm.add_submodule(name, act)
            with gm.graph.inserting_before(node):
                new = gm.graph.call_module(name, (inputs[0],))
            node.replace_all_uses_with(new)
            gm.graph.erase_node(node)
            on_grid.add(new)
            if bits != 1:
                nonneg.add(new)
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            for src in inputs:
                if src not in on_grid:
                    insert_quant(src, node, EDGE_BITS, True, f"{node.name}_in")
        elif _keeps_grid(gm, node) and inputs and inputs[0] in on_grid:
            on_grid.add(node)
            if inputs[0] in nonneg:
                nonneg.add(node)
        elif _is_avgpool(gm, node):
            # quantized right away: accelgen wants one quantizer on a pool's accumulator
            insert_quant(node, None, _default_act_bits(a_bits), inputs[0] not in nonneg, node.name)
    gm.graph.lint()
    gm.recompile()
    return gm


def _keeps_grid(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), _KEEP_GRID_MODULES)
    if node.op == "call_function":
        return node.target in _KEEP_GRID_FUNCTIONS
    return node.op == "call_method" and node.target in _KEEP_GRID_METHODS


def _is_avgpool(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), _NONNEG_MODULES)
    return node.op == "call_function" and node.target in (F.avg_pool2d, F.adaptive_avg_pool2d)
