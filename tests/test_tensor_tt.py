"""TTLinear: contraction in every legal order against independent oracles, gradients, MACs, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import tensorly
import torch
from tensorly.tt_matrix import tt_matrix_to_matrix

from accelgen.tensor.factor import FactorizationError
from accelgen.tensor.order import choose_order, contraction_macs, legal_orders
from accelgen.tensor.tt import TTLinear

MODES_IN = (2, 3, 2, 3)
MODES_OUT = (3, 2, 2, 2)
RANKS = (1, 3, 4, 2, 1)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _random_layer(order=None, bias=True, seed=0) -> TTLinear:
    torch.manual_seed(seed)
    layer = TTLinear(
        math.prod(MODES_IN), math.prod(MODES_OUT), MODES_IN, MODES_OUT, rank=RANKS, bias=bias, order=order, name="tt"
    ).double()
    with torch.no_grad():
        for core in layer.cores:
            core.normal_()
        if bias:
            layer.bias.normal_()
    return layer


def _oracle_weight(cores: list[np.ndarray]) -> np.ndarray:
    """W[i, j] as the product of core slices, index by index (the contract's definition)."""
    modes_in = [c.shape[1] for c in cores]
    modes_out = [c.shape[2] for c in cores]
    weight = np.zeros((math.prod(modes_in), math.prod(modes_out)))
    for i, ii in enumerate(itertools.product(*map(range, modes_in))):
        for j, jj in enumerate(itertools.product(*map(range, modes_out))):
            product = np.ones((1, 1))
            for core, ik, jk in zip(cores, ii, jj):
                product = product @ core[:, ik, jk, :]
            weight[i, j] = product[0, 0]
    return weight


def _cores(layer: TTLinear) -> list[np.ndarray]:
    return [c.detach().numpy() for c in layer.cores]


def test_full_weight_matches_tensorly_and_the_definition():
    layer = _random_layer()
    oracle = _oracle_weight(_cores(layer))
    np.testing.assert_allclose(tt_matrix_to_matrix(_cores(layer)), oracle, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.full_weight().detach().numpy(), oracle, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("order", legal_orders(len(MODES_IN)))
def test_forward_every_legal_order_matches_oracle(order):
    layer = _random_layer(order=order)
    assert layer.order == order
    x = torch.randn(5, layer.in_features, dtype=torch.float64)
    expected = x.numpy() @ _oracle_weight(_cores(layer)) + layer.bias.detach().numpy()
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-10, atol=1e-10)


def test_forward_784_512_matches_tensorly():
    torch.manual_seed(1)
    layer = TTLinear(784, 512, rank=(5, 6, 4), name="fc1").double()
    x = torch.randn(3, 784, dtype=torch.float64)
    weight = tensorly.to_numpy(tt_matrix_to_matrix(_cores(layer)))
    expected = x.numpy() @ weight + layer.bias.detach().numpy()
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-10, atol=1e-12)


def test_legal_orders_are_the_contiguous_permutations():
    for d in range(1, 6):
        brute = [
            p for p in itertools.permutations(range(d)) if all(max(p[: t + 1]) - min(p[: t + 1]) == t for t in range(d))
        ]
        assert sorted(brute) == legal_orders(d)
        assert len(brute) == 2 ** (d - 1)


def _brute_force_macs(modes_in, modes_out, ranks, order, batch):
    """MACs from the sets of contracted cores: output elements times the summed length."""
    d = len(modes_in)
    total, run = 0, set()
    for core in order:
        shared = ranks[core] if core - 1 in run else ranks[core + 1] if core + 1 in run else 1
        run.add(core)
        bonds = ranks[min(run)] * ranks[max(run) + 1]
        outputs = batch * math.prod(modes_in[k] for k in range(d) if k not in run)
        outputs *= math.prod(modes_out[k] for k in run) * bonds
        total += outputs * modes_in[core] * shared
    return total


@pytest.mark.parametrize(
    ("modes_in", "modes_out", "ranks", "batch"),
    [
        ((7, 4, 4, 7), (8, 4, 4, 4), (1, 16, 16, 16, 1), 1),
        ((7, 4, 4, 7), (8, 4, 4, 4), (1, 3, 20, 2, 1), 1),
        ((2, 16, 3), (10, 1, 1), (1, 8, 2, 1), 1),
        ((4, 4, 4, 4, 4), (2, 2, 2, 2, 2), (1, 2, 9, 3, 7, 1), 32),
    ],
)
def test_choose_order_is_the_brute_force_minimum(modes_in, modes_out, ranks, batch):
    costs = {
        p: _brute_force_macs(modes_in, modes_out, ranks, p, batch)
        for p in itertools.permutations(range(len(modes_in)))
        if all(max(p[: t + 1]) - min(p[: t + 1]) == t for t in range(len(p)))
    }
    chosen = choose_order(modes_in, modes_out, ranks, batch)
    assert costs[chosen] == min(costs.values())
    for order, cost in costs.items():
        assert sum(contraction_macs(modes_in, modes_out, ranks, order, batch)) == cost


def test_module_reports_order_and_macs():
    layer = TTLinear(784, 512, rank=16, name="fc1")
    steps, total = layer.macs()
    assert len(steps) == 4 and total == sum(steps)
    assert total == _brute_force_macs(layer.modes_in, layer.modes_out, layer.ranks, layer.order, 1)
    assert layer.num_parameters() == sum(c.numel() for c in layer.cores) + 512
    # init: the reconstructed weight has variance about 1 / in_features
    assert 0.5 < float(layer.full_weight().detach().var()) * 784 < 2.0


def test_gradcheck_input_and_cores():
    layer = _random_layer(order=(1, 2, 0, 3))
    names = [f"cores.{k}" for k in range(layer.d)]
    x = torch.randn(2, layer.in_features, dtype=torch.float64, requires_grad=True)
    cores = tuple(c.detach().clone().requires_grad_() for c in layer.cores)

    def forward(x, *cores):
        return torch.func.functional_call(layer, dict(zip(names, cores)), (x,))

    assert torch.autograd.gradcheck(forward, (x, *cores))


def test_gradients_equal_full_weight_reconstruction():
    layer = _random_layer(order=(3, 2, 1, 0))
    x = torch.randn(4, layer.in_features, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(4, layer.out_features, dtype=torch.float64)
    (layer(x) * upstream).sum().backward()

    cores = [c.detach().clone().requires_grad_() for c in layer.cores]
    x_ref = x.detach().clone().requires_grad_()
    # the reference weight written here with one einsum over all cores (row-major i and j)
    weight = torch.einsum("aeib,bfjc,cgkd,dhla->efghijkl", *cores).reshape(layer.in_features, layer.out_features)
    ((x_ref @ weight + layer.bias.detach()) * upstream).sum().backward()

    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-10)
    for core, reference in zip(layer.cores, cores):
        torch.testing.assert_close(core.grad, reference.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"modes_in": (7, 4, 4, 8)}, r"layer 'fc1': modes_in \(7, 4, 4, 8\) multiply to 896"),
        ({"modes_out": (8, 8, 4, 4)}, r"layer 'fc1': modes_out \(8, 8, 4, 4\) multiply to 1024"),
        ({"modes_in": (28, 28), "modes_out": (8, 8, 8)}, r"layer 'fc1': modes_in .* same number of modes"),
        ({"rank": 0}, r"layer 'fc1': ranks \(0, 0, 0\) must all be >= 1"),
        ({"rank": (4, -1, 4)}, r"layer 'fc1': ranks \(4, -1, 4\)"),
        ({"rank": (4, 4)}, r"layer 'fc1': 4 cores need 3 internal ranks"),
        ({"order": (0, 2, 1, 3)}, r"layer 'fc1': order \(0, 2, 1, 3\) is not"),
        ({"rank_prior": "gamma"}, r"layer 'fc1': rank_prior"),
    ],
)
def test_bad_arguments_name_the_layer(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TTLinear(784, 512, name="fc1", **kwargs)


def test_unfactorizable_dimension_names_the_layer():
    with pytest.raises(FactorizationError, match=r"layer 'fc1': cannot factorize 797 into 4 .* 797 is prime"):
        TTLinear(797, 512, name="fc1")


def test_bad_input_shape_names_the_layer():
    layer = TTLinear(784, 512, name="fc1")
    with pytest.raises(ValueError, match=r"layer 'fc1': expected input \(batch, 784\)"):
        layer(torch.zeros(2, 785))
