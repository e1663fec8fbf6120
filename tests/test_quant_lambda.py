"""µL2Q's lambda_k against an independent computation: numerical integration and a scalar
minimiser from scipy, and the published values (Gong et al. 2019; Max 1960)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from accelgen.quant.gaussian import gaussian_mse, midrise_grid, ul2q_lambda

PUBLISHED = {1: 1.596, 2: 0.996, 3: 0.586, 4: 0.335}


def _mse_by_quadrature(step: float, levels: np.ndarray) -> float:
    """E[(x - nearest level)^2], x ~ N(0, 1), integrated cell by cell with scipy.quad."""
    edges = np.concatenate([[-np.inf], (levels[1:] + levels[:-1]) / 2, [np.inf]])
    total = 0.0
    for a, b, c in zip(edges[:-1], edges[1:], levels):
        total += integrate.quad(lambda x, c=c: (x - c) ** 2 * stats.norm.pdf(x), a, b, epsabs=1e-13)[0]
    return total


def _optimum(levels_of) -> float:
    res = optimize.minimize_scalar(lambda s: _mse_by_quadrature(s, levels_of(s)), bounds=(0.01, 3.0),
                                   method="bounded", options={"xatol": 1e-8})  # fmt: skip
    return float(res.x)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_lambda_is_the_gaussian_optimum_of_the_midrise_grid(k):
    n = 1 << k
    optimum = _optimum(lambda s: s * (np.arange(n) - n / 2 + 0.5))
    assert abs(ul2q_lambda(k) - optimum) < 1e-6
    assert abs(ul2q_lambda(k) - PUBLISHED[k]) < 1e-3


def test_ternary_step_is_the_optimum_of_three_levels():
    optimum = _optimum(lambda s: s * np.array([-1.0, 0.0, 1.0]))
    assert abs(ul2q_lambda("ternary") - optimum) < 1e-6
    assert abs(ul2q_lambda("ternary") - 1.224) < 1e-3


def test_closed_form_error_matches_quadrature_away_from_the_optimum():
    for step in (0.3, 1.0, 2.5):
        n = 8
        levels = step * (np.arange(n) - n / 2 + 0.5)
        assert gaussian_mse(step, midrise_grid(3)) == pytest.approx(_mse_by_quadrature(step, levels), abs=1e-9)
