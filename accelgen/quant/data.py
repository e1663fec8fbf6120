"""Data sets for ``accelgen quantize``: an .npz of X and y, or scikit-learn's 8x8 digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from accelgen.errors import InputError

#: share of an .npz without X_val / y_val held out for validation
VAL_FRACTION = 0.2


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): pixels / 16 as float32 [N, 64], the split of the test
    suite's fixtures (25 % test, stratified, random_state 0)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, d.target, test_size=0.25, random_state=0, stratify=d.target)
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def load_npz(path: str | Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """X, y (and X_val, y_val when present; else a seeded 20 % of X, y) from ``path``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--data {path}: no such file; give an .npz with arrays X and y, or 'digits'")
    try:
        arrays = dict(np.load(path, allow_pickle=False))
    except (ValueError, OSError) as exc:
        raise InputError(f"--data {path}: not an .npz file ({exc})") from None
    missing = [k for k in ("X", "y") if k not in arrays]
    if missing:
        raise InputError(f"--data {path}: no array {', '.join(missing)} (it has {', '.join(sorted(arrays)) or 'none'})")
    x, y = arrays["X"].astype(np.float32), arrays["y"]
    if len(x) != len(y) or len(x) < 2:
        raise InputError(f"--data {path}: X has {len(x)} samples and y {len(y)}; they must match (at least 2)")
    if not np.issubdtype(y.dtype, np.integer) and not np.all(y == np.round(y)):
        raise InputError(f"--data {path}: y must hold class indices (integers)")
    y = y.astype(np.int64)
    if "X_val" in arrays and "y_val" in arrays:
        return x, y, arrays["X_val"].astype(np.float32), arrays["y_val"].astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(VAL_FRACTION * len(x))))
    val, train = perm[:n_val], perm[n_val:]
    return x[train], y[train], x[val], y[val]


def fit_to_input(x: np.ndarray, sample_shape: tuple[int, ...], what: str) -> np.ndarray:
    """``x`` reshaped to ``(N, *sample_shape)`` when a sample has as many values; else an error."""
    want = int(np.prod(sample_shape)) if sample_shape else 1
    if any(d == 0 for d in sample_shape):
        return x  # the model's input shape is symbolic beyond the batch: take the data as it is
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != want:
        raise InputError(f"{what}: samples of shape {tuple(x.shape[1:])} do not fit the model's input "
                         f"{tuple(sample_shape)} ({want} values per sample)")  # fmt: skip
    return np.ascontiguousarray(x.reshape((len(x), *sample_shape)))
