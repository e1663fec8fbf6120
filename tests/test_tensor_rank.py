"""Rank adaptation: prior and MAP update against numpy, pruning, optimizer state, a training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from accelgen.tensor.rank import MIN_VARIANCE, train_rank_adaptive, transfer_optimizer_, warmup_factor
from accelgen.tensor.tt import TTLinear

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _layer(prior="log_uniform", seed=0, **kwargs) -> TTLinear:
    torch.manual_seed(seed)
    layer = TTLinear(36, 24, (2, 3, 2, 3), (2, 2, 3, 2), rank=(3, 4, 2), rank_prior=prior, name="tt", **kwargs)
    layer = layer.double()
    with torch.no_grad():
        for k in range(1, layer.d):
            setattr(layer, f"rank_variance_{k}", torch.rand(layer.ranks[k], dtype=torch.float64) + 0.1)
    return layer


def _numpy_state(layer: TTLinear) -> tuple[list[np.ndarray], list[np.ndarray]]:
    cores = [c.detach().numpy().copy() for c in layer.cores]
    lam = [np.ones(1), *(v.numpy().copy() for v in layer.rank_variances), np.ones(1)]
    return cores, lam


def _numpy_prior(cores, lam, prior, eta=1.0) -> float:
    total = 0.0
    for k, core in enumerate(cores):
        for a in range(core.shape[0]):
            for b in range(core.shape[3]):
                var = lam[k][a] * lam[k + 1][b]
                total += 0.5 * core[a, :, :, b].size * np.log(var) + np.sum(core[a, :, :, b] ** 2) / (2 * var)
    for v in lam[1:-1]:
        total += np.sum(np.log(v)) if prior == "log_uniform" else np.sum(np.log(eta**2 + v**2))
    return total


def _slice_count_and_energy(cores, lam, k, a):
    left, right = cores[k - 1], cores[k]
    count = left[..., a].size + right[a].size
    energy = sum(np.sum(left[p, :, :, a] ** 2) / lam[k - 1][p] for p in range(left.shape[0]))
    energy += sum(np.sum(right[a, :, :, q] ** 2) / lam[k + 1][q] for q in range(right.shape[3]))
    return count, energy


@pytest.mark.parametrize("prior", ["log_uniform", "half_cauchy"])
def test_prior_loss_equals_numpy(prior):
    layer = _layer(prior)
    cores, lam = _numpy_state(layer)
    assert float(layer.prior_loss().detach()) == pytest.approx(_numpy_prior(cores, lam, prior), rel=1e-12)


def test_log_uniform_update_is_energy_over_count_plus_two():
    layer = _layer("log_uniform")
    cores, lam = _numpy_state(layer)
    for k in range(1, layer.d):  # the documented sweep: each rank with its neighbours' newest values
        lam[k] = np.array(
            [(lambda c, s: s / (c + 2))(*_slice_count_and_energy(cores, lam, k, a)) for a in range(len(lam[k]))]
        )
    layer.update_ranks_()
    for k, variances in enumerate(layer.rank_variances, start=1):
        np.testing.assert_allclose(variances.numpy(), lam[k], rtol=1e-12)


def test_half_cauchy_update_minimises_its_objective():
    eta = 0.3
    layer = _layer("half_cauchy", cauchy_scale=eta)
    before = float(layer.prior_loss().detach())
    cores, lam = _numpy_state(layer)
    layer.update_ranks_()
    for k, variances in enumerate(layer.rank_variances, start=1):
        for a, value in enumerate(variances.numpy()):
            count, energy = _slice_count_and_energy(cores, lam, k, a)

            def objective(v, count=count, energy=energy):
                return 0.5 * count * np.log(v) + energy / (2 * v) + np.log(eta**2 + v**2)

            grid = np.geomspace(1e-6, 1e3, 20001)
            assert objective(value) <= objective(grid).min() + 1e-9
            derivative = count / (2 * value) - energy / (2 * value**2) + 2 * value / (eta**2 + value**2)
            assert abs(derivative) * value < 1e-8
            lam[k][a] = value
    assert float(layer.prior_loss().detach()) < before  # a coordinate-descent step


def test_zeroed_slice_is_pruned_and_outputs_are_unchanged():
    layer = _layer("log_uniform")
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)
    x = torch.randn(7, 36, dtype=torch.float64)
    layer(x).square().sum().backward()
    optimizer.step()
    with torch.no_grad():  # rank 2 (between cores 1 and 2), slice 1
        layer.cores[1][..., 1] = 0
        layer.cores[2][1] = 0
    layer.update_ranks_()
    assert float(layer.rank_variances[1][1]) == MIN_VARIANCE
    expected = layer(x).detach()
    params_before = layer.num_parameters()
    state_before = sum(v.numel() for s in optimizer.state.values() for v in s.values())

    shrinks = layer.prune_(1e-6)
    transfer_optimizer_(optimizer, shrinks)

    assert shrinks and layer.ranks == (1, 3, 3, 2, 1)
    assert tuple(layer.cores[1].shape) == (3, 3, 2, 3) and tuple(layer.cores[2].shape) == (3, 2, 3, 2)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    removed = 3 * 3 * 2 + 2 * 3 * 2
    assert layer.num_parameters() == params_before - removed
    state_after = sum(v.numel() for s in optimizer.state.values() for v in s.values())
    assert state_after == state_before - 2 * removed  # Adam's two moments of every removed element
    optimizer_params = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert optimizer_params == {id(p) for p in layer.parameters()}
    layer(x).square().sum().backward()
    optimizer.step()  # the optimizer works on the shrunk cores
    assert layer.prune_(1e-6) == []  # nothing left to prune: no change reported


def test_prune_keeps_the_largest_slice():
    layer = _layer("log_uniform")
    with torch.no_grad():
        layer.rank_variance_1 = torch.tensor([1e-9, 5e-9, 2e-9], dtype=torch.float64)
    layer.prune_(1e-3, relative=False)
    assert layer.ranks[1] == 1


def test_warmup_ramps_from_zero_to_one():
    assert [warmup_factor(e, 4) for e in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def _train_on_low_rank_target(prior: str, eta: float, prior_weight: float = 1.0):
    """A 64 x 64 target of TT rank 2, learnt from rank 8 for 40 epochs."""
    torch.manual_seed(0)
    modes = (4, 4, 4)
    truth = TTLinear(64, 64, modes, modes, rank=2, bias=False, rank_prior=None).full_weight().detach()
    truth = truth / truth.std() / 8
    n = 512
    x = torch.randn(n, 64)
    y = x @ truth + 0.01 * torch.randn(n, 64)
    model = TTLinear(64, 64, modes, modes, rank=8, bias=False, name="tt", rank_prior=prior, cauchy_scale=eta)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def batches():
        perm = torch.randperm(n)
        for i in range(0, n, 64):
            yield x[perm[i : i + 64]], y[perm[i : i + 64]]

    log = train_rank_adaptive(
        model,
        batches,
        lambda p, t: ((p - t) ** 2).sum(dim=1).mean(),  # per-sample squared error, as the likelihood
        optimizer,
        epochs=40,
        dataset_size=n,
        warmup_epochs=5,
        prune_threshold=1e-2,
        prune_from_epoch=5,
        prior_weight=prior_weight,
    )
    return log, model, optimizer


@pytest.mark.parametrize(("prior", "eta"), [("log_uniform", 1.0), ("half_cauchy", 0.1)])
def test_training_on_a_low_rank_target_lowers_the_ranks(prior, eta):
    log, model, optimizer = _train_on_low_rank_target(prior, eta)
    assert len(log.ranks) == 40 and log.ranks[0]["tt"] == (1, 8, 8, 1)
    final = log.ranks[-1]["tt"]
    assert all(r < 8 for r in final[1:-1]), final
    assert model.ranks == final
    # the fit stays good (the target's energy is about 64 per sample, the noise 0.0064)
    assert log.loss[-1] < 0.1
    assert sum(v.numel() for s in optimizer.state.values() for v in s.values() if v.dim() > 0) == 2 * sum(
        c.numel() for c in model.cores
    )


def test_pruned_checkpoint_loads_into_a_fresh_layer():
    layer = _layer("log_uniform")
    x = torch.randn(4, 36, dtype=torch.float64)
    with torch.no_grad():
        layer.cores[0][..., 2] = 0
        layer.cores[1][2] = 0
    layer.update_ranks_()
    layer.prune_(1e-6)
    assert layer.ranks == (1, 2, 4, 2, 1)
    fresh = _layer("log_uniform", seed=5)
    fresh.load_state_dict(layer.state_dict())
    assert fresh.ranks == layer.ranks and fresh.order == layer.order
    torch.testing.assert_close(fresh(x), layer(x), rtol=0, atol=0)


def test_without_the_prior_nothing_is_pruned():
    log, model, _ = _train_on_low_rank_target("log_uniform", 1.0, prior_weight=0.0)
    assert model.ranks == (1, 8, 8, 1)
    assert log.loss[-1] < 0.1
