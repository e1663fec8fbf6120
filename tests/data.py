"""The offline dataset every fixture and test uses: scikit-learn's 8x8 digits.

``digits_split()`` gives ``(x_train, y_train, x_test, y_test)``: pixels / 16.0 as
float32 in [0, 1] with shape ``[N, 64]``, labels as int64; the split is
``train_test_split(test_size=0.25, random_state=0, stratify=y)`` (1347 train,
450 test samples).  ``as_images(x)`` reshapes ``[N, 64]`` to ``[N, 1, 8, 8]``.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    parts = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    x_train, x_test, y_train, y_test = parts
    return x_train, y_train, x_test, y_test


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)`` as fresh (writable) copies."""
    return tuple(a.copy() for a in _split())


def as_images(x: np.ndarray) -> np.ndarray:
    """``[N, 64]`` -> ``[N, 1, 8, 8]`` (NCHW, one channel)."""
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(-1, 1, 8, 8))
