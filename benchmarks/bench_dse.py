"""Design-space exploration figures: estimated II, latency, frames/s and multiplier efficiency.

    python benchmarks/bench_dse.py [--quick]

Plans the fixture models and synthetic MLPerf Tiny topologies (benchmarks/topologies.py,
QONNX built with onnx.helper and compiled by accelgen.pipeline.compile_model) at W4A4 and
W8A8 on Ultra96-V2 at its default clock, and on Pynq-Z2 beside the published XC7Z020 /
Pynq-Z2 numbers. Every accelgen figure is an ESTIMATE of the cost models (no synthesis).
Last, the explorer's run time on a ResNet-50-sized graph (73 integer layers).

Columns: II (cycles per frame), latency (us, one frame), fps, MAC/cyc (MACs per frame / II),
mults (multipliers instantiated), eff (MAC/cyc over mults: the fraction of multiplier-cycles
doing useful work), DSP / BRAM18 / LUT used, MAC bnd (the lower bound total MACs / multipliers
the budget affords, in cycles), opt (the II is proven the smallest that fits the budget).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelgen.boards import get_board  # noqa: E402
from accelgen.dse import explore  # noqa: E402
from accelgen.errors import FitError, InputError  # noqa: E402
from accelgen.pipeline import compile_model  # noqa: E402
from benchmarks import topologies  # noqa: E402

#: published FPGA latencies set beside ours: (where, latency in us)
PUBLISHED = {
    "resnet8": ("fpgaConvNet, XC7Z020", 410.0),
    "ds_cnn": ("fpgaConvNet, XC7Z020", 320.0),
    "mobilenet_v1_025": ("fpgaConvNet, XC7Z020", 9490.0),
    "fc_autoencoder": ("hls4ml/FINN, Pynq-Z2", 18.7),
    "kws_mlp": ("hls4ml/FINN, Pynq-Z2", 17.5),
    "cnv": ("FINN binarized CNV (W1A1), Pynq-Z2", 1510.0),
}
HEADER = (
    f"{'model':30s} {'board':10s} {'II':>9s} {'lat us':>9s} {'fps':>10s} {'MAC/cyc':>8s} {'mults':>6s} "
    f"{'eff':>5s} {'DSP':>5s} {'BRAM18':>6s} {'LUT':>7s} {'MAC bnd':>8s} {'opt':>3s}"
)


def row(name: str, board_name: str, graph) -> tuple[str, float | None]:
    board = get_board(board_name)
    try:
        e = explore(graph, board)
    except FitError as exc:
        return f"{name:30s} {board.name:10s} does not fit: {str(exc)[:110]}...", None
    r = e.resources
    line = (
        f"{name:30s} {board.name:10s} {e.ii_cycles:9,d} {e.latency_us:9.2f} {e.fps:10,.0f} "
        f"{e.total_macs / e.ii_cycles:8.1f} {e.multipliers:6d} {e.multiplier_efficiency():5.2f} {r.dsp:5d} "
        f"{r.bram18:6d} {r.lut:7,d} {e.bound.macs_per_multiplier:8,d} {'yes' if e.bound.proven_optimal else 'no':>3s}"
    )
    return line, e.latency_us


def fixtures() -> None:
    print("Fixture models (tests/models), estimates on Ultra96-V2 at its default clock")
    print(HEADER)
    manifest = json.loads((ROOT / "tests" / "models" / "manifest.json").read_text())["models"]
    for entry in manifest:
        graph = compile_model(ROOT / "tests" / "models" / entry["file"]).graph
        print(row(entry["file"].removesuffix(".onnx"), "ultra96v2", graph)[0])


def topologies_table(quick: bool) -> None:
    print()
    print("Synthetic MLPerf Tiny topologies (and a KWS MLP and CNV), estimates; published figures beside")
    print(HEADER + f"  {'published latency':>30s}")
    models = dict(topologies.MLPERF_TINY, kws_mlp=topologies.kws_mlp, cnv=topologies.cnv)
    precisions = [(4, 4)] if quick else [(4, 4), (8, 8)]
    for name, build in models.items():
        for w_bits, a_bits in precisions:
            if name == "cnv":  # FINN's binarized CNV (W1A1) and a W2A2 variant
                w_bits, a_bits = (1, 1) if (w_bits, a_bits) == (4, 4) else (2, 2)
            label = f"{name} W{w_bits}A{a_bits}"
            try:
                graph = compile_model(build(w_bits, a_bits)).graph
            except InputError as exc:
                print(f"{label:30s} front end refused it: {exc}")
                continue
            for board in ("ultra96v2", "pynq-z2"):
                line, _ = row(label, board, graph)
                where, published = PUBLISHED[name]
                extra = f"  {published:>9,.1f} us ({where})" if board == "pynq-z2" else ""
                print(line + extra)


def resnet50_timing() -> None:
    print()
    print("Explorer run time on a ResNet-50-sized graph (W4A4, 53 convolutions, 16 adds, 73 integer layers)")
    t0 = time.perf_counter()
    graph = compile_model(topologies.resnet50(4, 4)).graph
    print(f"  compile (front end + passes): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    try:
        explore(graph, get_board("ultra96v2"))
        outcome = "fits"
    except FitError as exc:
        outcome = f"FitError: {str(exc)[:150]}..."
    print(f"  explore on Ultra96-V2: {time.perf_counter() - t0:.3f} s ({outcome})")
    zcu102 = get_board("zcu102")
    big = dataclasses.replace(zcu102, name="10x-zcu102", title="hypothetical 10x ZCU102",
                              resources={k: 10 * v for k, v in zcu102.resources.items()})  # fmt: skip
    t0 = time.perf_counter()
    e = explore(graph, big)
    dt = time.perf_counter() - t0
    print(f"  explore on a hypothetical board with 10x ZCU102's resources: {dt:.3f} s; II {e.ii_cycles:,} cycles "
          f"(bottleneck {e.bottleneck.name}, {e.fps:,.0f} fps at {e.clock_mhz:g} MHz, estimate), "
          f"lower bound {e.bound.ii_cycles:,}, proven optimal: {e.bound.proven_optimal}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="W4A4 only (the W8A8 compiles take ~20 s)")
    args = parser.parse_args()
    print("All accelgen figures are ESTIMATES of its cost models (accelgen.kernels), not synthesis results.")
    print()
    fixtures()
    topologies_table(args.quick)
    resnet50_timing()


if __name__ == "__main__":
    main()
