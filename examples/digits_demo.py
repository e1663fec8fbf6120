"""The main job on the bundled example: build the digits CNN for Ultra96-V2 and run it.

    python examples/digits_demo.py [MODEL.onnx] [--board ultra96] [-o OUTDIR]

Builds the accelerator (plan, HLS project, C-simulation against the golden model,
driver, report), then runs the digits test split through the emulated hardware and
prints its accuracy beside the golden model's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from digits_inputs import IMAGE_SHAPE, digits_test_split  # the same directory

from accelgen.pipeline import build

HERE = Path(__file__).resolve().parent


def show_stage(stage: str, state: str, detail: str) -> None:
    if state != "start":
        print(f"{stage:>9s}  {state:8s} {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(HERE / "digits_cnn_w4a8.onnx"))
    parser.add_argument("--board", default="ultra96")
    parser.add_argument("-o", "--output", default="out/digits_ultra96")
    args = parser.parse_args()
    x, y = digits_test_split()
    images = x.reshape(-1, *IMAGE_SHAPE)
    t0 = time.perf_counter()
    design = build(args.model, args.output, board=args.board, vectors=images, labels=y, progress=show_stage)
    print(f"built {design.outdir} in {time.perf_counter() - t0:.1f} s")
    t = design.report["totals"]
    print(f"estimate on {design.report['board']}: II {t['ii_cycles']:,} cycles, {t['fps']:,.0f} frames/s, "
          f"latency {t['latency_us']:.2f} us")  # fmt: skip
    for backend in ("csim", "golden"):
        out = design.run(images, backend=backend)
        print(f"{backend:>6s} accuracy on {len(y)} digits test samples: {(out.argmax(1) == y).mean():.4f}")


if __name__ == "__main__":
    main()
