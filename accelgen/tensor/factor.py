"""Splitting a layer dimension into tensor-train modes, and checking given modes.

Pure Python (no torch): the front end and the explorer may use it too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["FactorizationError", "check_modes", "factorize"]


class FactorizationError(ValueError):
    """A dimension cannot be split into the requested number of useful modes."""


def _prime_factors(n: int) -> list[int]:
    factors: list[int] = []
    p = 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    if n > 1:
        factors.append(n)
    return factors


def _balanced_multiset(n: int, d: int) -> tuple[int, ...] | None:
    """The d factors > 1 of n (ascending) whose logarithms have the least spread, or None."""
    best: tuple[float, tuple[int, ...]] | None = None
    target = math.log(n) / d

    def extend(rest: int, parts: int, smallest: int, chosen: tuple[int, ...]) -> None:
        nonlocal best
        if parts == 1:
            if rest >= smallest:
                modes = (*chosen, rest)
                spread = sum((math.log(m) - target) ** 2 for m in modes)
                if best is None or spread < best[0]:
                    best = (spread, modes)
            return
        # non-decreasing factors: each multiset is visited once
        factor = smallest
        while factor**parts <= rest:
            if rest % factor == 0:
                extend(rest // factor, parts - 1, factor, (*chosen, factor))
            factor += 1

    extend(n, d, 2, ())
    return None if best is None else best[1]


def _outside_in(ascending: tuple[int, ...]) -> tuple[int, ...]:
    """Largest modes on the outer cores, alternating left and right, smallest in the middle."""
    left: list[int] = []
    right: list[int] = []
    for index, mode in enumerate(sorted(ascending, reverse=True)):
        (left if index % 2 == 0 else right).append(mode)
    return (*left, *reversed(right))


def _suggest_padding(n: int, d: int, max_ratio: float) -> int | None:
    for candidate in range(n + 1, 2 * n + 1):
        modes = _balanced_multiset(candidate, d)
        if modes is not None and modes[-1] / modes[0] <= max_ratio:
            return candidate
    return None


def factorize(n: int, d: int, *, max_ratio: float = 16.0) -> tuple[int, ...]:
    """Split the dimension ``n`` into ``d`` modes > 1 whose product is ``n``, as balanced as possible.

    Balanced means the least spread of ``log(mode)`` around ``log(n) / d`` (an exact search over
    the multisets of divisors). The modes are then arranged with the largest ones on the outer
    cores: core 0 and core d-1 have one rank equal to 1, so their modes cost the fewest
    parameters (784, 4 -> (7, 4, 4, 7); 512, 4 -> (8, 4, 4, 4)).

    Raises :class:`FactorizationError` when ``n`` has fewer than ``d`` prime factors (a prime
    such as 797 cannot be split at all), or when the best split is lopsided (largest / smallest
    mode above ``max_ratio``, e.g. 2 * 797); the message suggests a padded dimension that
    factors well.
    """
    if n < 1 or d < 1:
        raise FactorizationError(f"cannot factorize {n} into {d} modes: both must be positive")
    if d == 1:
        return (n,)
    primes = _prime_factors(n)
    modes = _balanced_multiset(n, d) if len(primes) >= d else None
    if modes is None or modes[-1] / modes[0] > max_ratio:
        if len(primes) == 1:
            why = f"{n} is prime, so it cannot be split into {d} modes > 1"
        elif modes is None:
            why = f"{n} = {' * '.join(map(str, primes))} has {len(primes)} prime factors, fewer than {d} modes"
        else:
            why = (
                f"its most balanced split {modes} has modes {modes[-1] / modes[0]:.0f}x apart (max_ratio {max_ratio:g})"
            )
        # the suggestion aims higher than the acceptance bound: padding is only worth a good split
        padded = _suggest_padding(n, d, min(max_ratio, 3.0))
        hint = (
            f"; pad the dimension to {padded} = {' * '.join(map(str, _outside_in(_balanced_multiset(padded, d))))} "
            "(zero features in, ignored outputs out) or choose fewer modes"
            if padded is not None
            else "; choose fewer modes"
        )
        raise FactorizationError(f"cannot factorize {n} into {d} tensor-train modes: {why}{hint}")
    return _outside_in(modes)


def check_modes(modes: Sequence[int], dim: int, *, name: str, what: str = "modes") -> tuple[int, ...]:
    """Return ``modes`` as a tuple after checking every mode is >= 1 and their product is ``dim``.

    The ``ValueError`` names the layer (``name``) and which modes (``what``) are wrong.
    """
    modes = tuple(int(m) for m in modes)
    if not modes or any(m < 1 for m in modes):
        raise ValueError(f"layer {name!r}: {what} {modes} must be a non-empty list of positive integers")
    if math.prod(modes) != dim:
        raise ValueError(
            f"layer {name!r}: {what} {modes} multiply to {math.prod(modes)}, not the dimension {dim}; "
            f"pass modes whose product is {dim} or use factorize({dim}, {len(modes)})"
        )
    return modes
