"""MSE-optimal uniform steps for a standard Gaussian (µL2Q's lambda_k), computed, not tabulated.

A uniform grid has levels ``step * (i + offset)`` for codes ``i`` in ``[lo, hi]``: offset 0.5
is µL2Q's mid-rise grid (2**k levels, no zero), offset 0 a mid-tread grid (ternary: -1, 0, 1).
Each value goes to its nearest level, so the cells are bounded by the midpoints between levels
and the two outer cells reach to infinity. For ``x ~ N(0, 1)`` the error of one cell
``[a, b]`` with level ``c`` has the closed form

    integral_a^b (x - c)^2 phi(x) dx = [(1 + c^2) Phi(x) + (2c - x) phi(x)]_a^b,

so the mean squared error of a grid is a sum over its cells, and the optimal step is found by
golden-section search (the error is unimodal in the step for these grids).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

__all__ = ["Grid", "gaussian_mse", "optimal_step", "ul2q_lambda"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Grid:
    """Codes ``lo..hi``; level of code ``i`` is ``step * (i + offset)``."""

    lo: int
    hi: int
    offset: float

    @property
    def levels(self) -> int:
        return self.hi - self.lo + 1


def _pdf(x: float) -> float:
    return 0.0 if math.isinf(x) else _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _cell_error(a: float, b: float, c: float) -> float:
    def primitive(x: float) -> float:
        # x * phi(x) -> 0 at +-infinity, so only the Phi term survives there
        return (1.0 + c * c) * _cdf(x) + (0.0 if math.isinf(x) else (2.0 * c - x) * _pdf(x))

    return primitive(b) - primitive(a)


def gaussian_mse(step: float, grid: Grid) -> float:
    """E[(x - Q(x))^2] for ``x ~ N(0, 1)`` and nearest-level quantization onto ``grid``."""
    levels = [step * (i + grid.offset) for i in range(grid.lo, grid.hi + 1)]
    edges = [-math.inf] + [0.5 * (u + v) for u, v in zip(levels, levels[1:])] + [math.inf]
    return sum(_cell_error(edges[j], edges[j + 1], c) for j, c in enumerate(levels))


def optimal_step(grid: Grid, *, lo: float = 1e-3, hi: float = 4.0, tol: float = 1e-12) -> float:
    """The step minimising :func:`gaussian_mse` on ``grid`` (golden-section search in [lo, hi])."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = gaussian_mse(c, grid), gaussian_mse(d, grid)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = gaussian_mse(c, grid)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = gaussian_mse(d, grid)
    return 0.5 * (a + b)


def midrise_grid(bits: int) -> Grid:
    """µL2Q's k-bit grid: 2**k levels at odd multiples of half a step, symmetric about 0."""
    return Grid(-(1 << (bits - 1)), (1 << (bits - 1)) - 1, 0.5)


#: three levels -1, 0, +1 (times the step)
TERNARY_GRID = Grid(-1, 1, 0.0)


@functools.cache
def ul2q_lambda(bits: int | str) -> float:
    """µL2Q's lambda_k: the MSE-optimal step of a standard Gaussian on the k-bit mid-rise grid
    (``bits`` 1..8), or on the ternary grid (``bits="ternary"``)."""
    grid = TERNARY_GRID if bits == "ternary" else midrise_grid(int(bits))
    return optimal_step(grid)
