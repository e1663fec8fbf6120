"""FakeQuant (LSQ) and quantization-aware TTLinear against numpy written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from accelgen.tensor.quant import FakeQuant
from accelgen.tensor.tt import TTLinear

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _reference(x: np.ndarray, scale: float, lo: int, hi: int) -> np.ndarray:
    # QONNX Quant with rounding ROUND: numpy's round is half to even as well
    return np.clip(np.round(x / scale), lo, hi) * scale


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("narrow", [False, True])
def test_values_on_the_grid_and_equal_qonnx_formula(bits, narrow):
    torch.manual_seed(bits)
    quant = FakeQuant(bits, narrow=narrow, scale=0.125).double()
    x = torch.randn(1000, dtype=torch.float64) * 0.125 * 2**bits
    # exact ties (codes 0.5, 1.5, -0.5, -1.5) round half to even
    x[:4] = torch.tensor([0.0625, 0.1875, -0.0625, -0.1875], dtype=torch.float64)
    spec = quant.spec()
    lo = -(2 ** (bits - 1)) + (1 if narrow else 0)
    assert (spec.scale, spec.bits, spec.signed, spec.narrow, spec.lo, spec.hi) == (
        0.125,
        bits,
        True,
        narrow,
        lo,
        2 ** (bits - 1) - 1,
    )
    q = quant(x).detach().numpy()
    codes = q / 0.125
    np.testing.assert_array_equal(codes[:4], np.clip([0.0, 2.0, 0.0, -2.0], lo, 2 ** (bits - 1) - 1))
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-9)
    assert codes.min() >= lo - 1e-9 and codes.max() <= 2 ** (bits - 1) - 1 + 1e-9
    np.testing.assert_allclose(q, _reference(x.numpy(), 0.125, lo, 2 ** (bits - 1) - 1), atol=1e-12)


def test_unsigned_range():
    spec = FakeQuant(4, signed=False, scale=1.0).spec()
    assert (spec.lo, spec.hi) == (0, 15)


def test_straight_through_gradient_and_lsq_scale_gradient():
    quant = FakeQuant(4, scale=0.25).double()  # codes -8..7, range [-2, 1.75]
    x = torch.tensor([-3.0, -1.9, -0.3, 0.1, 0.6, 1.7, 2.5], dtype=torch.float64, requires_grad=True)
    quant(x).sum().backward()
    inside = (x.detach() / 0.25 >= -8) & (x.detach() / 0.25 <= 7)
    np.testing.assert_array_equal(x.grad.numpy(), inside.double().numpy())
    v = x.detach().numpy() / 0.25
    lsq = np.where(v < -8, -8.0, np.where(v > 7, 7.0, np.round(v) - v))
    expected = lsq.sum() / math.sqrt(x.numel() * 7)
    assert quant.scale.grad.item() == pytest.approx(expected, rel=1e-12)


def test_scale_gradient_sign():
    x = torch.full((64,), 10.0)  # far above the range: the step must grow
    quant = FakeQuant(3, scale=0.1)
    ((quant(x) - x) ** 2).sum().backward()
    assert quant.scale.grad.item() < 0
    x = torch.full((64,), 0.03)  # everything rounds to 0: the step must shrink
    quant = FakeQuant(3, scale=0.1)
    ((quant(x) - x) ** 2).sum().backward()
    assert quant.scale.grad.item() > 0


def test_scale_initialised_from_first_tensor():
    quant = FakeQuant(8)
    x = torch.randn(4096)
    quant(x)
    assert quant.spec().scale == pytest.approx(2 * float(x.abs().mean()) / math.sqrt(127), rel=1e-6)


def test_bits_out_of_range():
    with pytest.raises(ValueError, match=r"quantizer 'q': bits must be 2..8"):
        FakeQuant(9, name="q")


def test_stochastic_rounding_is_unbiased_and_eval_is_deterministic():
    torch.manual_seed(0)
    quant = FakeQuant(4, scale=1.0, stochastic=True)
    x = torch.full((200_000,), 0.3)
    q = quant(x)
    assert set(torch.unique(q).tolist()) == {0.0, 1.0}
    assert float(q.detach().mean()) == pytest.approx(0.3, abs=0.005)
    quant.eval()
    assert torch.equal(quant(x), torch.zeros_like(x))


def _quantize(a: np.ndarray, quant: FakeQuant) -> np.ndarray:
    spec = quant.spec()
    return _reference(a, spec.scale, spec.lo, spec.hi)


def _reference_forward(layer: TTLinear, x: np.ndarray) -> np.ndarray:
    """The contract's state after each step, computed with labelled numpy einsums."""
    d = layer.d
    inputs, outputs, bonds = "abcd"[:d], "efgh"[:d], "ijklm"[: d + 1]
    state = _quantize(x, layer.act_quant).reshape(x.shape[0], *layer.modes_in)
    labels = "z" + inputs
    for t, k in enumerate(layer.order):
        core = _quantize(layer.cores[k].detach().numpy(), layer.core_quant[k])
        core_labels = bonds[k] + inputs[k] + outputs[k] + bonds[k + 1]
        summed = {inputs[k]} | ({bonds[k], bonds[k + 1]} & set(labels))
        result = "".join(c for c in labels + core_labels if c not in summed)
        result = "".join(dict.fromkeys(result))
        state = np.einsum(f"{labels},{core_labels}->{result}", state, core)
        labels = result
        if t < d - 1:
            state = _quantize(state, layer.mid_quant[t])
    state = np.einsum(f"{labels}->z{outputs}", state)  # the boundary bonds have size 1
    return state.reshape(x.shape[0], -1) + layer.bias.detach().numpy()


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (2, 1, 3, 0)])
def test_quantized_tt_forward_equals_numpy(order):
    torch.manual_seed(3)
    layer = TTLinear(
        36, 24, (2, 3, 2, 3), (2, 2, 3, 2), rank=(3, 4, 2), order=order, core_bits=4, mid_bits=6, act_bits=8, name="qtt"
    ).double()
    x = torch.randn(5, 36, dtype=torch.float64)
    layer(x)  # initialises the activation and intermediate scales from data
    assert all(q.spec().scale > 0 for q in [layer.act_quant, *layer.core_quant, *layer.mid_quant])
    np.testing.assert_allclose(layer(x).detach().numpy(), _reference_forward(layer, x.numpy()), rtol=1e-9, atol=1e-9)


def test_quantized_tt_gradients_reach_every_scale_and_core():
    torch.manual_seed(4)
    layer = TTLinear(36, 24, (2, 3, 2, 3), (2, 2, 3, 2), rank=3, core_bits=3, mid_bits=4, act_bits=4, stochastic=True)
    layer(torch.randn(8, 36)).square().sum().backward()
    for quant in [layer.act_quant, *layer.core_quant, *layer.mid_quant]:
        assert quant.scale.grad is not None and quant.scale.grad.abs() > 0
    for core in layer.cores:
        assert core.grad.abs().sum() > 0


def test_quant_specs_for_the_exporter():
    layer = TTLinear(36, 24, (2, 3, 2, 3), (2, 2, 3, 2), rank=3, core_bits=5, mid_bits=7, act_bits=8, act_signed=False)
    layer(torch.rand(3, 36))
    specs = layer.quant_specs()
    assert (specs["act"].bits, specs["act"].signed, specs["act"].lo, specs["act"].hi) == (8, False, 0, 255)
    assert [s.bits for s in specs["cores"]] == [5] * 4 and [s.bits for s in specs["mids"]] == [7] * 3
    assert all(s.signed and s.scale > 0 for s in specs["cores"] + specs["mids"])
    assert TTLinear(36, 24, (2, 3, 2, 3), (2, 2, 3, 2), rank=3).quant_specs() == {"act": None, "cores": [], "mids": []}


def test_stochastic_scale_gradient_uses_the_drawn_codes():
    torch.manual_seed(1)
    quant = FakeQuant(4, scale=1.0, stochastic=True).double()
    x = torch.full((1000,), 0.3, dtype=torch.float64, requires_grad=True)
    out = quant(x)
    out.sum().backward()
    codes = out.detach().numpy()  # scale 1: the output is the codes
    expected = (codes - 0.3).sum() / math.sqrt(1000 * 7)
    assert quant.scale.grad.item() == pytest.approx(expected, rel=1e-9)
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(1000))
