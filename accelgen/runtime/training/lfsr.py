"""The random source of stochastic rounding: a 32-bit Galois LFSR, leaped 32 steps per draw.

Definition (the HLS ``accelgen::Lfsr32`` follows it step for step):

* state ``s``: 32 bits, never 0 (a zero seed is refused);
* one step: ``s = (s >> 1) ^ (TAPS if s & 1 else 0)`` with ``TAPS = 0x80200003``, the
  feedback polynomial ``x^32 + x^22 + x^2 + x + 1`` (primitive: period ``2^32 - 1``);
* one draw: 32 steps, then the state itself is the draw (``u`` in ``1 .. 2^32 - 1``).
  Leaping a whole word per draw makes consecutive draws share no shifted bits; since
  ``gcd(32, 2^32 - 1) = 1`` the draws also have period ``2^32 - 1``.

An LFSR is linear over GF(2): the state after ``t`` steps is ``A^t s_0``, so the ``n``
draws of a block are ``XOR`` over the set bits ``b`` of ``s_0`` of the columns
``A^(32 i) e_b`` (``i = 1 .. n``). :class:`DrawTable` precomputes those columns once (by
doubling) and :meth:`DrawTable.draws` turns a state into a block of draws with 32
vectorised XORs: the same sequence as stepping, only faster.
"""

from __future__ import annotations

import numpy as np

TAPS = 0x80200003
WIDTH = 32
STEPS_PER_DRAW = 32
MASK = (1 << WIDTH) - 1


def step(state: int) -> int:
    """One LFSR step (the definition)."""
    return (state >> 1) ^ (TAPS if state & 1 else 0)


def draw(state: int) -> int:
    """The next draw from ``state`` (32 steps); the draw is also the new state."""
    for _ in range(STEPS_PER_DRAW):
        state = step(state)
    return state


def _step_words(words: np.ndarray) -> np.ndarray:
    return (words >> np.uint32(1)) ^ np.where(words & np.uint32(1), np.uint32(TAPS), np.uint32(0)).astype(np.uint32)


def _apply(images: np.ndarray, words: np.ndarray) -> np.ndarray:
    """The linear map with basis images ``images[b]`` (uint32) applied to every word."""
    out = np.zeros_like(words)
    for b in range(WIDTH):
        out ^= np.where((words >> np.uint32(b)) & np.uint32(1), images[b], np.uint32(0)).astype(np.uint32)
    return out


class DrawTable:
    """Columns ``A^(32 i) e_b`` for ``i = 1 .. n`` (``b`` the 32 basis states), grown on demand."""

    def __init__(self, n: int = 1) -> None:
        basis = (np.uint32(1) << np.arange(WIDTH, dtype=np.uint32)).astype(np.uint32)
        leap = basis.copy()
        for _ in range(STEPS_PER_DRAW):
            leap = _step_words(leap)
        self._columns = leap[:, None]  # (32, n): column i-1 holds A^(32 i) e_b
        self.grow(n)

    def grow(self, n: int) -> None:
        """Make at least ``n`` draws per block available (doubling: A^(32 (m + i)) = A^(32 m) A^(32 i))."""
        while self._columns.shape[1] < n:
            m = self._columns.shape[1]
            jump = self._columns[:, m - 1]  # images of A^(32 m)
            self._columns = np.concatenate([self._columns, _apply(jump, self._columns)], axis=1)

    def draws(self, state: int, n: int) -> np.ndarray:
        """The ``n`` draws following ``state`` (uint32); the last one is the new state."""
        if not 0 < state <= MASK:
            raise ValueError(f"LFSR state {state:#x} must be a nonzero 32-bit value")
        self.grow(n)
        out = np.zeros(n, dtype=np.uint32)
        for b in range(WIDTH):
            if (state >> b) & 1:
                out ^= self._columns[b, :n]
        return out
