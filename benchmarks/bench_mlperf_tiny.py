"""The MLPerf Tiny networks planned by accelgen beside the published MLPerf Tiny FPGA results.

    python benchmarks/bench_mlperf_tiny.py

Networks: the fixtures of tests/models/mlperf_tiny (ResNet-8 32x32x3, DS-CNN 49x10x1,
MobileNetV1 0.25 96x96x3, FC AutoEncoder 640; 8-bit weights per channel and 8-bit activations,
tests/models/make_mlperf_tiny.py). Boards: pynq-z2, ultra96 (Ultra96-V2), kv260, each at its
default clock. Columns: II (cycles per frame), latency (us, one frame), frames/s, the whole design's
LUT / FF / DSP / BRAM18, the explorer's proven lower bound on the II at this budget (II bnd: the
plan is optimal in its design space when equal) and the MAC bound (total MACs over the
multipliers the budget affords, the target's reference). Every accelgen figure is an ESTIMATE of its cost models (accelgen.kernels,
calibrated whole-design resources; no synthesis, no board run): latency is one frame through
the layer pipeline (``latency_cycles / clock``), frames/s is ``clock / II``.

Published figures (read from the MLCommons tiny results repositories, never copied code):

* like for like, set side by side: fpgaConvNet's closed-division v1.1 entries on the ZedBoard,
  a Zynq XC7Z020-1CLG400C, the same part as the PYNQ-Z2: ResNet-8, DS-CNN and MobileNetV1 0.25,
  the MLPerf Tiny reference INT8 models (8-bit weights, feature maps as signed INT9, 24-bit
  accumulators), at 143 / 143 / 111 MHz. accelgen is planned on pynq-z2 at the same clock. The
  latency is MEASURED on the board by the EEMBC runner in performance mode (single stream,
  ``1 / median throughput``; it includes the Zynq PS driver and DMA, which accelgen's estimate
  does not); LUT / FF / DSP / BRAM are the published Vivado 2019.1 utilisation (the README's
  table; BRAM counted in BRAM36 tiles, 140 on the part).
* not like for like, listed and never set beside an estimate: hls4ml's and FINN's open-division
  entries (v0.7 / v1.0, PYNQ-Z2, 100 MHz) run other networks (RN07 / RN08: 4x4 kernels, stride 4,
  no skip connections; AD08: 64 inputs, 12- and 13-bit fixed point; KWS-W3A3: an MLP; CNV-W1A1:
  a binarized VGG-like CNN); fpgaConvNet's ZC706 (XC7Z045), ZyBo (XC7Z010) and Cora-Z7
  (XC7Z007S) are not the class of any board here; kai_jiang's ZCU106 (XCZU7EV) entry is a
  processor-style NPU. No MLPerf Tiny FPGA entry exists on an Ultra96 (ZU3EG) or KV260 (K26)
  class part in v0.5 .. v1.3, so those rows have no published figure.

Target (issue 15): estimated latency at most half the best published FPGA entry for the same
network and bits on the same board class. Where it is not reached the benchmark prints by how
much and why: the slowest layers' cycles against their MAC lower bound (MACs / multipliers).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelgen.boards import get_board  # noqa: E402
from accelgen.dse import Estimate, explore  # noqa: E402
from accelgen.errors import FitError  # noqa: E402
from accelgen.pipeline import compile_model  # noqa: E402

MODELS = ROOT / "tests" / "models" / "mlperf_tiny"
BOARDS = ("pynq-z2", "ultra96", "kv260")
TARGET = 0.5  # estimated latency / best published latency, same network, bits and board class
REPO = "mlcommons/tiny_results_v1.1"
COMMIT = "c32ef94d19429ef1d318e9c7a60002a4bd70e11b"
NETWORK_NAMES = {"ic": "ResNet-8", "kws": "DS-CNN", "vww": "MobileNetV1-0.25", "ad": "FC AutoEncoder"}


@dataclass(frozen=True)
class Published:
    """One published MLPerf Tiny FPGA entry, like for like with a fixture."""

    network: str  # ic, kws, vww, ad
    entry: str
    board: str  # the board class it is set beside
    part: str
    clock_mhz: float
    bits: str
    throughput: float  # median inferences/s, MEASURED
    lut: int
    ff: int
    dsp: int
    bram36: int
    results: str  # the performance results file (throughput)

    @property
    def latency_us(self) -> float:
        return 1e6 / self.throughput

    def source(self) -> str:
        return (f"{REPO} @ {COMMIT[:12]}: {self.results} (median throughput, measured); "
                "closed/fpgaconvnet/README.md (utilisation, clock); closed/fpgaconvnet/systems/zedboard.json (part, INT8)")  # fmt: skip


_BITS = "INT8 weights, INT9 signed feature maps, 24-bit accumulators"
PUBLISHED = (
    Published("ic", "fpgaConvNet v1.1 closed, ZedBoard", "pynq-z2", "XC7Z020-1CLG400C", 143, _BITS, 2431.435,
              47_000, 42_000, 211, 93, "closed/fpgaconvnet/results/zedboard/ic/performance/results.txt"),
    Published("kws", "fpgaConvNet v1.1 closed, ZedBoard", "pynq-z2", "XC7Z020-1CLG400C", 143, _BITS, 3087.887,
              37_000, 37_000, 188, 97, "closed/fpgaconvnet/results/zedboard/kws/performance/results.txt"),
    Published("vww", "fpgaConvNet v1.1 closed, ZedBoard", "pynq-z2", "XC7Z020-1CLG400C", 111, _BITS, 105.412,
              34_000, 36_000, 189, 123, "closed/fpgaconvnet/results/zedboard/vww/performance/results.txt"),
)  # fmt: skip

NOT_LIKE_FOR_LIKE = (
    "hls4ml v1.0 open RN08, PYNQ-Z2 100 MHz, 130.8 inf/s (mlcommons/tiny_results_v1.0 open/hls4ml/results/pynq-z2/ic/"
    "RN08/performance/results.txt): not MLPerf's ResNet-8 (open/hls4ml/code/ic/RN08/training/RN08.yml: filters "
    "32/4/32/32, 4x4 kernels, stride 4, no skip), ap_fixed 8-bit weights / 9-bit activations",
    "hls4ml v0.7 open AD08, PYNQ-Z2 100 MHz, 53,365 inf/s (mlcommons/tiny_results_v0.7 open/hls4ml-finn/results/pynq-z2/"
    "ad/AD08/performance/results.txt): 64 inputs (ad08.yml input_dim 64, hidden 72, latent 8), not 640; 13-bit weights, "
    "7-bit activations (hls4ml_config.yml)",
    "FINN v0.7 open KWS-W3A3 (57,268 inf/s) and CNV-W1A1 (661.5 inf/s), PYNQ-Z2 100 MHz (open/hls4ml-finn/results/"
    "pynq-z2/kws/KWS-W3A3, ic/CNV-W1A1): an MLP and a binarized VGG-like CNN, not DS-CNN / ResNet-8",
    "fpgaConvNet v1.1 closed on ZC706 (XC7Z045: IC 6,789.6 inf/s at 187 MHz, VWW 1,388.3 inf/s at 200 MHz), ZyBo "
    "(XC7Z010) and Cora-Z7 (XC7Z007S): parts of no board class planned here",
    "kai_jiang v1.1 closed on ZCU106 (XCZU7EV, 200 MHz): a RISC-V + NPU processor, not a per-network accelerator, and "
    "not an Ultra96 / KV260 class part",
)


def fixtures(models: Path) -> dict[str, Path]:
    manifest = json.loads((models / "manifest.json").read_text())["models"]
    return {m["network"]: models / m["file"] for m in manifest}


def plan(graph, board: str, clock_mhz: float | None = None) -> Estimate | str:
    try:
        return explore(graph, get_board(board), clock_mhz=clock_mhz)
    except FitError as exc:
        return f"does not fit: {str(exc)[:100]}"


HEADER = (f"{'network':22s} {'board':8s} {'MHz':>4s} {'II cyc':>9s} {'lat us':>9s} {'frames/s':>10s} "
          f"{'LUT':>7s} {'FF':>7s} {'DSP':>4s} {'BRAM18':>6s} {'II bnd':>8s} {'MAC bnd':>8s}")  # fmt: skip


def row(name: str, board: str, e: Estimate | str) -> str:
    if isinstance(e, str):
        return f"{name:22s} {board:8s} {e}"
    r = e.whole_design
    return (f"{name:22s} {board:8s} {e.clock_mhz:4.0f} {e.ii_cycles:9,d} {e.latency_us:9.1f} {e.fps:10,.0f} "
            f"{r.lut:7,d} {r.ff:7,d} {r.dsp:4d} {r.bram18:6d} {e.bound.ii_cycles:8,d} {e.bound.macs_per_multiplier:8,d}")  # fmt: skip


def published_row(p: Published) -> str:
    return (f"{'  published':22s} {p.board:8s} {p.clock_mhz:4.0f} {'-':>9s} {p.latency_us:9.1f} {p.throughput:10,.0f} "
            f"{p.lut:7,d} {p.ff:7,d} {p.dsp:4d} {str(p.bram36) + 'x36':>6s} {'-':>8s} {'-':>8s}  "
            f"measured latency/throughput; {p.entry}")  # fmt: skip


def why(e: Estimate, layers: int = 3) -> list[str]:
    """The slowest layers against their MAC lower bound: cycles vs MACs / multipliers."""
    out = [f"    II {e.ii_cycles:,} cycles vs the whole-design MAC lower bound {e.bound.macs_per_multiplier:,} "
           f"(total MACs {e.total_macs:,} / the multipliers the budget affords); latency {e.latency_cycles:,} cycles "
           f"= {e.latency_cycles / e.ii_cycles:.2f} x II (pipeline fill of {len(e.layers)} layers)"]  # fmt: skip
    for lp in sorted(e.layers, key=lambda lp: -lp.cost.cycles)[:layers]:
        macs = lp.layer.kernel.multiplier(lp.layer.spec).macs
        mults = max(lp.cost.multipliers, 1)
        bound = -(-macs // mults)
        out.append(f"    {lp.name:26s} {lp.layer.op.__class__.__name__:8s} cycles {lp.cost.cycles:8,d}  MACs {macs:10,d}  "
                   f"multipliers {lp.cost.multipliers:4d} (pe {lp.fold.pe}, simd {lp.fold.simd}, pixels {lp.fold.pixels})  "
                   "MACs/multipliers "
                   f"{bound:8,d}  -> busy {bound / lp.cost.cycles:5.1%}")  # fmt: skip
    in_dsp = sum(lp.fold.requant == "dsp" and "requant" in lp.layer.legal for lp in e.layers)
    in_fabric = sum(lp.fold.requant == "fabric" for lp in e.layers)
    out.append(f"    why: the slowest layers keep their multipliers busy, but there are too few of them: the plan "
               f"instantiates {e.multipliers} multipliers ({e.whole_design.dsp} DSPs of the board's "
               f"{e.board.resources['dsp']}, budget {e.max_util:.0%}; DSPs beside the products are requantizers, "
               "window generators and the shell (an exact multiply-shift requantizer's 22-27-bit product takes two "
               f"DSPs or a few hundred LUTs: {in_fabric} layers' are in the fabric, {in_dsp} in DSPs); two 8-bit products "
               "share a DSP only in a matrix unit's PE pairs, and products wider than 4 bits are never built in "
               "LUTs); a layer's parallelism moves "
               "in whole folds (pe = ceil(channels / n), simd = ceil(K / n) of the K elements an output sums, pixels a "
               "divisor of the output width, and pixels only with pe = every output channel), so the next step of a "
               "bottleneck layer adds more multipliers than the DSPs left; the MAC bound assumes the budget's "
               "multipliers spread perfectly.")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=MODELS, help="a directory of networks with a manifest.json")
    args = parser.parse_args()
    print("accelgen figures are ESTIMATES (cost models, calibrated whole design; no synthesis, no board).")
    print("Published figures: MEASURED latency / throughput on the board (EEMBC runner, single stream) and the")
    print("published Vivado utilisation; sources below each entry.")
    print()
    graphs = {k: compile_model(path).graph for k, path in fixtures(args.models).items()}
    print("Each network on each board at the board's default clock (estimates):")
    print(HEADER)
    for kind, graph in graphs.items():
        for board in BOARDS:
            print(row(NETWORK_NAMES[kind], board, plan(graph, board)))
    print()
    print("Like for like: the same network and bits, an XC7Z020 (pynq-z2 class), the published clock:")
    print(HEADER)
    verdicts = []
    for p in PUBLISHED:
        e = plan(graphs[p.network], p.board, p.clock_mhz)
        print(row(NETWORK_NAMES[p.network] + " W8A8", p.board, e))
        print(published_row(p))
        print(f"    bits: accelgen 8-bit weights (per channel) / 8-bit unsigned activations; published {p.bits}")
        print(f"    source: {p.source()}")
        if isinstance(e, str):
            verdicts.append((p, None, [f"    {e}"]))
            continue
        verdicts.append((p, e.latency_us / p.latency_us, why(e)))
    print()
    print(
        f"Target: estimated latency <= {TARGET:.0%} of the best published FPGA entry (same network, bits, board class)"
    )
    for p, ratio, reasons in verdicts:
        name = NETWORK_NAMES[p.network]
        if ratio is None:
            print(f"  {name}: no plan;")
        elif ratio <= TARGET:
            print(f"  {name} on {p.board}: reached, {ratio:.2f}x of fpgaConvNet's measured {p.latency_us:,.0f} us")
            continue
        else:
            print(f"  {name} on {p.board}: NOT reached: {ratio:.2f}x of fpgaConvNet's measured {p.latency_us:,.0f} us, "
                  f"{ratio / TARGET:.2f}x above the target; the slowest layers:")  # fmt: skip
        print("\n".join(reasons))
    print("  FC AutoEncoder: no like-for-like published FPGA entry (hls4ml's AD08 has 64 inputs), no target")
    print("  ultra96, kv260: no MLPerf Tiny FPGA entry on a ZU3EG / K26 class part, no target")
    print()
    print("Published MLPerf Tiny FPGA entries that are NOT like for like (never set beside an estimate):")
    for line in NOT_LIKE_FOR_LIKE:
        print(f"  - {line}")


if __name__ == "__main__":
    main()
