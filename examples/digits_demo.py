"""Run the bundled digits CNN with the golden (bit-exact integer) interpreter.

    python examples/digits_demo.py [MODEL.onnx]

Quantizes the scikit-learn digits test split on the host, runs every layer in integer
arithmetic exactly as the hardware will, and prints the accuracy beside onnxruntime's
or qonnx's float reference when they are installed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from accelgen import golden
from accelgen.pipeline import compile_model

HERE = Path(__file__).resolve().parent


def digits_test_split() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    _, x_test, _, y_test = train_test_split(x, d.target, test_size=0.25, random_state=0, stratify=d.target)
    return x_test.reshape(-1, 1, 8, 8), y_test


def main() -> None:
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "digits_cnn_w4a8.onnx"
    t0 = time.perf_counter()
    compiled = compile_model(model)
    t1 = time.perf_counter()
    x, y = digits_test_split()
    out = next(iter(golden.run(compiled.graph, x).values()))
    t2 = time.perf_counter()
    acc = float((out.argmax(1) == y).mean())
    print(f"{model.name}: {compiled.dialect} dialect, compiled in {t1 - t0:.2f} s")
    print(f"golden (bit-exact integer) accuracy on {len(y)} digits test samples: {acc:.4f} "
          f"({len(y) / (t2 - t1):,.0f} samples/s)")  # fmt: skip


if __name__ == "__main__":
    main()
