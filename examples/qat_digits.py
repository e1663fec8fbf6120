"""µL2Q, LSQ and Brevitas' default quantizers on digits: the fixtures' MLP 64-64-32-10 and small CNN.

    python examples/qat_digits.py [--quick] [--json] [--out DIR] [--epochs N] [--seeds N]

Each float model is trained once per seed; each (method, W, A) in W1A1, W2A2, W4A4 is then
quantized from it with the same epochs and seed (`accelgen.quant.quantize`), and the accuracy
on the test split is the mean over the seeds. The first seed's models are exported as QONNX to
DIR, and each file's accelgen golden model is compared with the qonnx executor on the test split.
`--json` prints one object: rows (model, method, w_bits, a_bits, acc), float_acc, ul2q_lambda,
onnx (the exported files).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelgen.quant import quantize, ul2q_lambda  # noqa: E402
from accelgen.quant.train import accuracy, fit  # noqa: E402

SETTINGS = ((1, 1), (2, 2), (4, 4))
METHODS = ("ul2q", "lsq", "brevitas")


class MLP(nn.Module):
    """The fixtures' 64-64-32-10 MLP."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(64, 64), nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class CNN(nn.Module):
    """The fixtures' small CNN: conv 3x3 (16) - BN - ReLU - maxpool 2 - conv 3x3 (32) - BN - ReLU
    - avgpool 2 - flatten - linear (10)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
        self.pool1, self.pool2, self.fc = nn.MaxPool2d(2), nn.AvgPool2d(2), nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool1(F.relu(self.bn1(self.conv1(x))))
        x = self.pool2(F.relu(self.bn2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, d.target, test_size=0.25, random_state=0, stratify=d.target)
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def golden_matches_qonnx(path: Path, x: np.ndarray) -> bool:
    """accelgen's golden model of ``path`` against the qonnx executor on ``x``: same logits."""
    from accelgen import golden
    from accelgen.pipeline import compile_model
    from tests.reference import run_reference  # the test suite's qonnx executor wrapper

    compiled = compile_model(str(path))
    ours = next(iter(golden.run(compiled.graph, {compiled.graph.inputs[0]: x}).values()))
    ref = run_reference(path, x)
    return bool(np.allclose(ours, ref, rtol=0, atol=1e-4) and (ours.argmax(1) == ref.argmax(1)).all())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke test: 1 seed, 2 epochs, W2A2 only")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", default="qat_digits_out", help="where the QONNX files go")
    p.add_argument("--epochs", type=int, default=15, help="fine-tuning epochs per quantized model")
    p.add_argument("--float-epochs", type=int, default=40, help="epochs of the float models")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = ((2, 2),) if args.quick else SETTINGS
    epochs, float_epochs, seeds = (2, 3, 1) if args.quick else (args.epochs, args.float_epochs, args.seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = digits()
    log = sys.stderr if args.json else sys.stdout
    rows, float_acc, files, checks = [], {}, [], {}
    for name in args.models.split(","):
        cls, images = {"mlp": (MLP, False), "cnn": (CNN, True)}[name]
        xt = x_train.reshape(-1, 1, 8, 8) if images else x_train
        xv = x_test.reshape(-1, 1, 8, 8) if images else x_test
        accs: dict[tuple, list[float]] = {}
        floats = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            model = fit(cls(), torch.from_numpy(xt), torch.from_numpy(y_train), epochs=float_epochs, lr=3e-3,
                        seed=seed, label=f"{name} float", progress=not args.json)  # fmt: skip
            floats.append(accuracy(model, torch.from_numpy(xv), torch.from_numpy(y_test)))
            for w, a in settings:
                for method in METHODS:
                    t0 = time.time()
                    path = out / f"{name}_{method}_w{w}a{a}.onnx" if seed == 0 else None
                    r = quantize(model, (xt, y_train), (xv, y_test), w_bits=w, a_bits=a, method=method,
                                 epochs=epochs, seed=seed, output=path, progress=not args.json)  # fmt: skip
                    accs.setdefault((method, w, a), []).append(r.val_accuracy)
                    print(f"{name} seed {seed} {method:8s} W{w}A{a}: {r.val_accuracy:.4f} ({time.time() - t0:.1f} s)",
                          file=log, flush=True)  # fmt: skip
                    if path is not None:
                        files.append(str(path))
                        checks[str(path)] = golden_matches_qonnx(path, xv)
        float_acc[name] = round(float(np.mean(floats)), 4)
        for (method, w, a), values in accs.items():
            rows.append(
                {"model": name, "method": method, "w_bits": w, "a_bits": a, "acc": round(float(np.mean(values)), 4)}
            )
    result = {
        "rows": rows,
        "float_acc": float_acc,
        "ul2q_lambda": {str(k): round(ul2q_lambda(k), 6) for k in range(1, 5)},
        "onnx": files,
        "golden_equals_qonnx": checks,
        "epochs": epochs,
        "seeds": seeds,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"float: {float_acc}")
        for r in rows:
            print(f"{r['model']:4s} {r['method']:8s} W{r['w_bits']}A{r['a_bits']}  {r['acc']:.4f}")
        print(f"golden == qonnx executor: {all(checks.values())} ({len(checks)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
