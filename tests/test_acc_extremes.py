"""Accumulators at the very ends of their range (issue 10, part 8).

The requantizer's thresholds are searched on [lo, hi] of each layer's accumulator range,
with hi + 1 meaning "never reached". An off-by-one there only shows when an accumulator
*equals* lo or hi and a level starts exactly there. These models drive the output channels
of a Dense and a Conv to their extreme accumulators (input codes at the range ends, weights
all +127 or all -127) and place the output scale so that code 127 is reached only at hi
and code -127 only at lo. Golden must equal onnxruntime on every element under both
requantization policies, and the extreme codes must appear.
"""

from __future__ import annotations

import numpy as np
import pytest

from accelgen import golden
from tests.test_layers import Case, Net, check

EPS = 1e-4  # far above float32 rounding, far below one output step


@pytest.mark.parametrize("layer", ["dense", "conv"])
def test_requantizer_at_both_ends_of_the_accumulator_range(layer: str) -> None:
    net = Net(1200 + len(layer))
    sx, sw, c = np.float32(0.01), np.float32(0.02), 4
    shape = (6, 12) if layer == "dense" else (6, 2, 3, 3)
    k = int(np.prod(shape[1:]))
    w_sign = np.array([1, -1, 1, -1])
    w_codes = (127 * w_sign.reshape((c,) + (1,) * len(shape[1:])) * np.ones((c, *shape[1:]))).astype(np.int8)
    x = net.float_input(shape)
    top, bottom = np.float32(255 * sx * 1.01), np.float32(-1.0)  # codes 255 and 0 (uint8, zero point 0)
    net.feeds[x][0], net.feeds[x][1] = top, bottom
    net.feeds[x][2:] = net.rng.uniform(0, 255 * float(sx), (4, *shape[1:])).astype(np.float32)
    xr = net.dequantize(net.quantize(x, "uint8", sx, 0), "uint8", sx, 0)
    w = net.dequantize(net.const(w_codes, "w"), "int8", sw, 0)
    h = net.op("Gemm", [xr, w], transB=1) if layer == "dense" else net.op("Conv", [xr, w], kernel_shape=[3, 3])
    acc_hi = 127 * 255 * k  # + channels at x = 255; - channels reach -acc_hi there
    s_out = np.float32(float(sx) * float(sw) * acc_hi / (126.5 + EPS))
    below = float(sx) * float(sw) * (acc_hi - 127) / float(s_out)  # one input code step below hi
    assert below < 126.5, "code 127 must need the top accumulator exactly"
    case = Case(net.model(net.quantize(h, "int8", s_out, 0)), net.feeds)
    graph = check(case, min_levels=3)
    out = golden.run(graph, case.feeds)[case.model.graph.output[0].name].reshape(6, c)
    assert out[0].tolist() == [127, -127, 127, -127], "hi and lo accumulators reach the extreme codes"
    assert out[1].tolist() == [0, 0, 0, 0]
    assert np.abs(out[2:]).max() < 127
