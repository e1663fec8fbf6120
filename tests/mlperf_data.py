"""Offline stand-ins for the MLPerf Tiny data sets, at the networks' real input shapes.

``split(kind)`` gives ``(x_train, y_train, x_test, y_test)`` as float32 / int64 arrays for
``kind`` in ``ic`` (CIFAR-10 shape [N,3,32,32]), ``vww`` ([N,3,96,96]), ``kws`` ([N,1,49,10]) and
``ad`` ([N,640], no labels: y is all zeros). Nothing here is the real data set (CIFAR-10, the
Visual Wake Words COCO subset, Speech Commands, ToyADMOS are not available offline): the image
kinds are scikit-learn's 8x8 digits (``tests/data.py``) enlarged by pixel repetition and copied
to three channels, the audio kinds are seeded synthetic patterns. Numpy only.
"""

from __future__ import annotations

import functools

import numpy as np

from tests.data import digits_split

KWS_CLASSES = 12
DESCRIPTION = {
    "ic": "sklearn digits 8x8 enlarged x4 by pixel repetition to 32x32, copied to 3 channels; labels 0..9 "
    "(a stand-in for CIFAR-10's shape, not CIFAR-10)",
    "vww": "sklearn digits 8x8 enlarged x12 by pixel repetition to 96x96, copied to 3 channels; label "
    "digit >= 5 (a stand-in for Visual Wake Words' shape and two classes, not VWW)",
    "kws": "synthetic 49x10 'MFCC' maps: 12 classes, one seeded smooth template each (sums of "
    "separable cosines) plus Gaussian noise sigma 0.3; 100 train / 25 test per class (not Speech Commands)",
    "ad": "synthetic 640-value frames (5 x 128 'mel' bins): seeded mixtures of three sinusoids along "
    "the bins plus noise, in [0, 1]; 1000 train / 200 test (not ToyADMOS)",
}


def _images(x: np.ndarray, factor: int) -> np.ndarray:
    """[N, 64] digits -> [N, 3, 8 * factor, 8 * factor]."""
    img = x.reshape(-1, 1, 8, 8).repeat(factor, axis=2).repeat(factor, axis=3)
    return np.ascontiguousarray(np.repeat(img, 3, axis=1), dtype=np.float32)


def _kws(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    templates = np.random.default_rng(1234)
    t = np.arange(49)[:, None] / 49.0
    f = np.arange(10)[None, :] / 10.0
    maps = []
    for _ in range(KWS_CLASSES):
        a, b = templates.uniform(0.5, 3.0, size=2)
        p, q = templates.uniform(0, np.pi, size=2)
        maps.append(np.cos(2 * np.pi * a * t + p) * np.cos(2 * np.pi * b * f + q))
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(KWS_CLASSES), n_per_class)
    x = np.stack(maps)[y] + rng.normal(0.0, 0.3, size=(len(y), 49, 10))
    order = rng.permutation(len(y))
    return x[order, None].astype(np.float32), y[order].astype(np.int64)


def _ad(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bins = np.arange(640)[None, :] / 128.0
    x = np.zeros((n, 640))
    for _ in range(3):
        freq = rng.uniform(0.2, 2.0, size=(n, 1))
        phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
        x += rng.uniform(0.1, 0.3, size=(n, 1)) * np.sin(2 * np.pi * freq * bins + phase)
    x = 0.5 + x / 2 + rng.normal(0.0, 0.02, size=x.shape)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _split(kind: str):
    if kind in ("ic", "vww"):
        x_train, y_train, x_test, y_test = digits_split()
        factor = 4 if kind == "ic" else 12
        if kind == "vww":
            y_train, y_test = (y_train >= 5).astype(np.int64), (y_test >= 5).astype(np.int64)
        return _images(x_train, factor), y_train, _images(x_test, factor), y_test
    if kind == "kws":
        return (*_kws(100, seed=1), *_kws(25, seed=2))
    if kind == "ad":
        x_train, x_test = _ad(1000, seed=1), _ad(200, seed=2)
        return x_train, np.zeros(len(x_train), np.int64), x_test, np.zeros(len(x_test), np.int64)
    raise ValueError(f"unknown MLPerf Tiny data kind {kind!r}: one of ic, vww, kws, ad")


def split(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` for ``kind`` (fresh writable copies)."""
    return tuple(a.copy() for a in _split(kind))
