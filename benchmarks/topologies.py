"""Synthetic quantized topologies (QONNX dialect) built with onnx.helper for the benchmarks.

Weights are seeded random numbers: these models exist to be planned (shapes, bit widths,
layer structure), not to be accurate. Every activation is a QONNX ``Quant`` node with a
fixed scale; every weight is ``Quant(float W)`` with a per-tensor scale. The topologies
follow the MLPerf Tiny reference models (ResNet-8, DS-CNN, MobileNetV1-0.25, the FC
autoencoder), FINN's CNV, a KWS MLP and ResNet-50 by layer shapes, and the published
designs benchmarks/bench_calibration.py rebuilds (BNN-PYNQ's LFC and CNV at their padded
shapes, FINN's UNSW-NB15 MLP).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"
ACT_SCALE = 0.0625  # every activation's Quant scale; the value only shapes the requantizers


class QonnxNet:
    """Appends QONNX nodes: quantized convolutions, dense layers, pools and residual adds."""

    def __init__(self, name: str, w_bits: int, a_bits: int, seed: int = 0) -> None:
        self.name = name
        self.w_bits = w_bits
        self.a_bits = a_bits
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.shapes: dict[str, tuple[int, ...]] = {}

    def _fresh(self, base: str) -> str:
        return f"{base}_{len(self.nodes) + len(self.inits)}"

    def _const(self, value, base: str) -> str:
        name = self._fresh(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def _node(self, op_type: str, inputs: list[str], domain: str = "", **attrs) -> str:
        out = self._fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def quant(self, x: str, bits: int, signed: bool, scale: float = ACT_SCALE, narrow: bool = False) -> str:
        """QONNX Quant with a per-tensor scale and zero point 0 (BipolarQuant for 1 bit)."""
        s = self._const(np.float32(scale), "scale")
        if bits == 1:
            return self._node("BipolarQuant", [x, s], domain=QONNX_DOMAIN)
        z = self._const(np.float32(0.0), "zp")
        b = self._const(np.float32(bits), "bits")
        return self._node("Quant", [x, s, z, b], domain=QONNX_DOMAIN, signed=int(signed), narrow=int(narrow),
                          rounding_mode="ROUND")  # fmt: skip

    def input(self, shape: tuple[int, ...], bits: int = 8) -> str:
        """The float input (batch first) and its signed ``bits``-bit quantizer."""
        self.inputs.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *shape]))
        return self._shaped(self.quant("x", bits, True), shape)

    def _shaped(self, name: str, shape: tuple[int, ...]) -> str:
        self.shapes[name] = tuple(shape)
        return name

    def _weights(self, shape: tuple[int, ...], fan_in: int) -> str:
        w = (self.rng.uniform(-1.0, 1.0, shape) / np.sqrt(fan_in)).astype(np.float32)  # ONNX wants float32
        qmax = max((1 << (self.w_bits - 1)) - 1, 1)
        scale = float(np.abs(w).max()) / qmax
        return self.quant(self._const(w, "w"), self.w_bits, True, scale=scale, narrow=self.w_bits > 1)

    def _act(self, h: str, relu: bool) -> str:
        if relu and self.a_bits > 1:
            return self.quant(self._node("Relu", [h]), self.a_bits, False)
        return self.quant(h, self.a_bits, True)

    def conv(self, x: str, out_ch: int, kernel: int | tuple[int, int], stride: int = 1, groups: int = 1,
             pad: int | tuple[int, int] | None = None, relu: bool = True) -> str:  # fmt: skip
        """Conv (same padding unless ``pad`` is given) -> [Relu] -> Quant."""
        c, h, w = self.shapes[x]
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        ph, pw = (kh // 2, kw // 2) if pad is None else ((pad, pad) if isinstance(pad, int) else pad)
        fan_in = (c // groups) * kh * kw
        wq = self._weights((out_ch, c // groups, kh, kw), fan_in)
        y = self._node("Conv", [x, wq], kernel_shape=[kh, kw], strides=[stride, stride], pads=[ph, pw, ph, pw],
                       group=groups)  # fmt: skip
        oh, ow = (h + 2 * ph - kh) // stride + 1, (w + 2 * pw - kw) // stride + 1
        return self._shaped(self._act(y, relu), (out_ch, oh, ow))

    def dense(self, x: str, out_features: int, relu: bool = True, quantize: bool = True, bipolar: bool = False) -> str:
        """MatMul(Quant W) -> [Relu] -> Quant (a float output when ``quantize`` is False, a
        bipolar sign when ``bipolar``: a binarized classifier's thresholded output)."""
        (n,) = self.shapes[x]
        y = self._node("MatMul", [x, self._weights((n, out_features), n)])
        if bipolar:
            y = self.quant(y, 1, True)
        elif quantize:
            y = self._act(y, relu)
        return self._shaped(y, (out_features,))

    def add(self, a: str, b: str, relu: bool = True) -> str:
        return self._shaped(self._act(self._node("Add", [a, b]), relu), self.shapes[a])

    def maxpool(self, x: str, kernel: int, stride: int, pad: int = 0) -> str:
        c, h, w = self.shapes[x]
        y = self._node("MaxPool", [x], kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4)
        return self._shaped(y, (c, (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1))

    def global_avgpool(self, x: str) -> str:
        c, _, _ = self.shapes[x]
        y = self._node("GlobalAveragePool", [x])
        y = self._node("Flatten", [self.quant(y, self.a_bits, False)], axis=1)
        return self._shaped(y, (c,))

    def flatten(self, x: str) -> str:
        return self._shaped(self._node("Flatten", [x], axis=1), (int(np.prod(self.shapes[x])),))

    def model(self, output: str) -> onnx.ModelProto:
        out = helper.make_tensor_value_info(output, TensorProto.FLOAT, None)
        graph = helper.make_graph(self.nodes, self.name, self.inputs, [out], self.inits)
        opsets = [helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)]
        model = helper.make_model(graph, opset_imports=opsets)
        model.ir_version = 8
        return model


def resnet8(w_bits: int, a_bits: int) -> onnx.ModelProto:
    """MLPerf Tiny image classification: ResNet-8 on 32x32x3 CIFAR-10 (three residual stacks)."""
    net = QonnxNet("resnet8", w_bits, a_bits)
    x = net.conv(net.input((3, 32, 32)), 16, 3)
    for channels, stride in ((16, 1), (32, 2), (64, 2)):
        y = net.conv(net.conv(x, channels, 3, stride), channels, 3, relu=False)
        shortcut = x if stride == 1 else net.conv(x, channels, 1, stride, relu=False)
        x = net.add(y, shortcut)
    return net.model(net.dense(net.global_avgpool(x), 10, quantize=False))


def ds_cnn(w_bits: int, a_bits: int) -> onnx.ModelProto:
    """MLPerf Tiny keyword spotting: DS-CNN on 49x10 MFCC, 64 channels, four DW/PW blocks."""
    net = QonnxNet("ds_cnn", w_bits, a_bits)
    x = net.conv(net.input((1, 49, 10)), 64, (10, 4), stride=2, pad=(5, 1))
    for _ in range(4):
        x = net.conv(net.conv(x, 64, 3, groups=64), 64, 1)
    return net.model(net.dense(net.global_avgpool(x), 12, quantize=False))


def mobilenet_v1_025(w_bits: int, a_bits: int) -> onnx.ModelProto:
    """MLPerf Tiny visual wake words: MobileNetV1 (width 0.25) on 96x96x3, two classes."""
    net = QonnxNet("mobilenet_v1_025", w_bits, a_bits)
    x = net.conv(net.input((3, 96, 96)), 8, 3, stride=2)
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 + [(256, 2), (256, 1)]
    for channels, stride in blocks:
        c = net.shapes[x][0]
        x = net.conv(net.conv(x, c, 3, stride, groups=c), channels, 1)
    return net.model(net.dense(net.global_avgpool(x), 2, quantize=False))


def fc_autoencoder(w_bits: int, a_bits: int) -> onnx.ModelProto:
    """MLPerf Tiny anomaly detection: the 640-128x4-8-128x4-640 fully connected autoencoder."""
    net = QonnxNet("fc_autoencoder", w_bits, a_bits)
    x = net.input((640,))
    for width in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = net.dense(x, width)
    return net.model(net.dense(x, 640, quantize=False))


def kws_mlp(w_bits: int, a_bits: int) -> onnx.ModelProto:
    """A keyword-spotting MLP on 490 MFCC features (49x10): 256-256-256 hidden, 12 classes."""
    net = QonnxNet("kws_mlp", w_bits, a_bits)
    x = net.input((490,))
    for width in (256, 256, 256):
        x = net.dense(x, width)
    return net.model(net.dense(x, 12, quantize=False))


def cnv(w_bits: int, a_bits: int) -> onnx.ModelProto:
    """FINN's CNV on 32x32x3 CIFAR-10: 64-64-P-128-128-P-256-256 unpadded 3x3 convs, 512-512-10 FC."""
    net = QonnxNet("cnv", w_bits, a_bits)
    x = net.input((3, 32, 32))
    for i, channels in enumerate((64, 64, 128, 128, 256, 256)):
        x = net.conv(x, channels, 3, pad=0)
        if i in (1, 3):
            x = net.maxpool(x, 2, 2)
    x = net.flatten(x)
    for width in (512, 512):
        x = net.dense(x, width)
    return net.model(net.dense(x, 10, quantize=False))


def resnet50(w_bits: int, a_bits: int) -> onnx.ModelProto:
    """ResNet-50 v1.5 layer shapes on 224x224x3: 53 convolutions, 16 residual adds, one FC."""
    net = QonnxNet("resnet50", w_bits, a_bits)
    x = net.maxpool(net.conv(net.input((3, 224, 224)), 64, 7, stride=2), 3, 2, pad=1)
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            s = stride if b == 0 else 1
            y = net.conv(net.conv(net.conv(x, width, 1), width, 3, s), 4 * width, 1, relu=False)
            shortcut = net.conv(x, 4 * width, 1, s, relu=False) if b == 0 else x
            x = net.add(y, shortcut)
    return net.model(net.dense(net.global_avgpool(x), 1000, quantize=False))


def bnn_pynq_lfc(w_bits: int, a_bits: int) -> onnx.ModelProto:
    """BNN-PYNQ's LFC as its hardware runs it (bnn/src/network/lfcW*A*/hw/config.h): a
    binarized 28x28 image padded from 784 to 832 inputs (L0_MW), three 1024-wide layers, 10
    classes padded to 64 (L3_MH), the last layer's raw accumulators out."""
    net = QonnxNet(f"lfc_w{w_bits}a{a_bits}", w_bits, a_bits)
    x = net.input((832,), bits=1)
    for _ in range(3):
        x = net.dense(x, 1024)
    return net.model(net.dense(x, 64, quantize=False))


def bnn_pynq_cnv(w_bits: int, a_bits: int) -> onnx.ModelProto:
    """BNN-PYNQ's CNV as its hardware runs it: an 8-bit 32x32x3 image, six unpadded 3x3
    convolutions (64-64-P-128-128-P-256-256), two 512-wide layers, 10 classes padded to 64
    (L8_MH), raw accumulators out."""
    net = QonnxNet(f"cnv_w{w_bits}a{a_bits}", w_bits, a_bits)
    x = net.input((3, 32, 32), bits=8)
    for i, channels in enumerate((64, 64, 128, 128, 256, 256)):
        x = net.conv(x, channels, 3, pad=0)
        if i in (1, 3):
            x = net.maxpool(x, 2, 2)
    x = net.flatten(x)
    for _ in range(2):
        x = net.dense(x, 512)
    return net.model(net.dense(x, 64, quantize=False))


def cybsec_mlp(w_bits: int = 2, a_bits: int = 2) -> onnx.ModelProto:
    """FINN's UNSW-NB15 intrusion-detection MLP (notebooks/end2end_example/cybersecurity): 593
    binarized features padded to 600, presented as bipolar codes (the export's {-1, +1} ->
    {0, 1} shift is absorbed into the first layer's thresholds by FINN's streamlining),
    64-64-64 hidden with 2-bit ReLUs, one output thresholded to a bipolar sign."""
    net = QonnxNet(f"cybsec_mlp_w{w_bits}a{a_bits}", w_bits, a_bits)
    x = net.input((600,), bits=1)
    for _ in range(3):
        x = net.dense(x, 64)
    return net.model(net.dense(x, 1, bipolar=True))


#: MLPerf Tiny topologies and what they stand for in the benchmark printout
MLPERF_TINY: dict[str, Callable[[int, int], onnx.ModelProto]] = {
    "resnet8": resnet8,
    "ds_cnn": ds_cnn,
    "mobilenet_v1_025": mobilenet_v1_025,
    "fc_autoencoder": fc_autoencoder,
}
