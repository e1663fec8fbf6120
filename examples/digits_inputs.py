"""Write the digits test split as an input batch for the bundled digits models.

    python examples/digits_inputs.py [X.npy] [LABELS.npy]     # default: x.npy labels.npy

X.npy: scikit-learn's bundled 8x8 digits (no download), the test quarter of the split the
fixtures use (450 images), as float32 of shape (450, 1, 8, 8) (NCHW, the models' own layout)
with pixel values in [0, 1]; LABELS.npy: their digits (int64). `accelgen run MODEL_OR_OUTDIR
--input X.npy --output Y.npy` reads the first; `accelgen build --vectors X.npy --labels
LABELS.npy` uses both for C-simulation and the board's notebook.
"""

from __future__ import annotations

import argparse

import numpy as np

IMAGE_SHAPE = (1, 8, 8)


def digits_test_split() -> tuple[np.ndarray, np.ndarray]:
    """The test quarter of scikit-learn's digits (stratified, seed 0): pixels / 16 as float32."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    _, x_test, _, y_test = train_test_split(x, d.target, test_size=0.25, random_state=0, stratify=d.target)
    return x_test, y_test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="?", default="x.npy", help="where to write the images (default x.npy)")
    parser.add_argument("labels", nargs="?", default="labels.npy", help="where to write the labels (default labels.npy)")
    args = parser.parse_args()
    x, y = digits_test_split()
    images = x.reshape(-1, *IMAGE_SHAPE)
    np.save(args.inputs, images)
    np.save(args.labels, y)
    print(f"wrote {args.inputs} ({images.shape} {images.dtype}, values in [0, 1]) and {args.labels} ({y.shape} {y.dtype})")


if __name__ == "__main__":
    main()
