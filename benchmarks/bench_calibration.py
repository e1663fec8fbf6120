"""Calibration of the whole-design estimate against published utilisation, and the held-out check.

    python benchmarks/bench_calibration.py          # estimate / published, in-sample and held-out
    python benchmarks/bench_calibration.py --fit    # the fitted constants (calibration.py holds them)

Reference designs (every figure is a MEASURED post-implementation utilisation: Vivado
2018.2 routed-design reports, with their timing summary, published in BNN-PYNQ's network
READMEs for PYNQ-Z1 / PYNQ-Z2, XC7Z020, 100 MHz). Each is rebuilt here as a QONNX model
(onnx.helper, benchmarks/topologies.QonnxNet) at BNN-PYNQ's bit widths and padded shapes
(LFC's 784 inputs padded to 832 and 10 outputs to 64, as in its config.h), planned by the
explorer at BNN-PYNQ's own folding (a FoldingPlan from the network's hw/config.h SIMD/PE)
and 100 MHz on pynq-z2:

* in-sample (the fit): LFC-W1A2, CNV-W1A2, CNV-W2A2;
* held-out (never fitted on): LFC-W1A1, CNV-W1A1.

The fit (``--fit``): for LUT, FF and BRAM18 separately, ``published - shell - plumbing =
scale x kernels``, least squares of the relative error, where ``kernels`` is the cost
models' sum over the layers and ``plumbing`` the stream plumbing code generation
instantiates at the plan (accelgen.kernels.plumbing, priced from hw primitives, not
fitted); the shell's LUT / FF / BRAM18 are engineering estimates (calibration.py). DSP:
``published = fixed + per_window x windows`` (windows: convolutions with a kernel above
1 x 1), the kernels pricing no DSP for 1- and 2-bit products. Three scales and two DSP
constants, no per-layer or per-design term.

Not used, and why: hls4ml's synthesis baselines (test/pytest/baselines in
fastmachinelearning/hls4ml) are Vitis/Vivado HLS C-synthesis estimates of 16- and 32-bit
fixed-point layers, which accelgen cannot rebuild (1- to 8-bit datapaths only); the
finn-examples READMEs publish no utilisation figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelgen.boards import get_board  # noqa: E402
from accelgen.dse import describe_layers, explore  # noqa: E402
from accelgen.kernels import calibration, shell  # noqa: E402
from accelgen.kernels.base import Resources  # noqa: E402
from accelgen.pipeline import compile_model  # noqa: E402
from accelgen.plan import FoldingPlan, LayerFold  # noqa: E402
from benchmarks.topologies import QonnxNet  # noqa: E402

BOARD = "pynq-z2"
CLOCK_MHZ = 100.0
KEYS = ("lut", "ff", "bram18", "dsp")
TARGET = 0.20  # held-out whole designs within +-20% of the published figures
REPO = "Xilinx/BNN-PYNQ"
README_COMMIT = "d84f6e887d224791b6a20e7a907123bf9e15ee41"
MEASURED = "measured: post-implementation (routed) utilisation, Vivado 2018.2, PYNQ-Z1/Z2 (XC7Z020)"


@dataclass(frozen=True)
class Design:
    name: str
    held_out: bool
    kind: str  # "lfc" or "cnv"
    w_bits: int
    a_bits: int
    folding: tuple[tuple[int, int], ...]  # (pe, simd) per integer layer, in graph order
    published: dict[str, int]  # lut, ff, bram18 (RAMB36 x 2 + RAMB18), dsp
    readme: str
    config: str
    config_commit: str

    def sources(self) -> str:
        return (f"{REPO} {self.readme} @ {README_COMMIT[:12]} (utilisation); "
                f"{self.config} @ {self.config_commit[:12]} (folding)")  # fmt: skip


def _bram18(ramb36: int, ramb18: int) -> int:
    return 2 * ramb36 + ramb18


# folding (PE, SIMD) per layer from each network's hw/config.h; the max pools process every
# channel of a pixel per cycle (BNN-PYNQ's StreamingMaxPool), the flatten has no folding
_LFC = ((32, 64), (64, 32), (32, 64), (16, 8))
_CNV = ((16, 3), (32, 32), (64, 1), (16, 32), (16, 32), (128, 1), (4, 32), (1, 32), (1, 1), (1, 4), (1, 8), (4, 1))
_CNV_W2A2 = ((8, 3), (16, 16), (64, 1), (8, 16), (8, 16), (128, 1), (4, 8), (1, 8), (1, 1), (1, 2), (2, 2), (4, 1))

DESIGNS = (
    Design("LFC-W1A2", False, "lfc", 1, 2, _LFC,
           {"lut": 48981, "ff": 45338, "bram18": _bram18(6, 208), "dsp": 4},
           "bnn/src/network/lfcW1A2/README.md", "bnn/src/network/lfcW1A2/hw/config.h",
           "65f212439715bfd214104b23d418b167d5f840c9"),
    Design("CNV-W1A2", False, "cnv", 1, 2, _CNV,
           {"lut": 40321, "ff": 56276, "bram18": _bram18(90, 83), "dsp": 26},
           "bnn/src/network/cnvW1A2/README.md", "bnn/src/network/cnvW1A2/hw/config.h",
           "4139b7a8391fa69d7b8e6cfd904988a413e70676"),
    Design("CNV-W2A2", False, "cnv", 2, 2, _CNV_W2A2,
           {"lut": 37302, "ff": 51386, "bram18": _bram18(138, 4), "dsp": 32},
           "bnn/src/network/cnvW2A2/README.md", "bnn/src/network/cnvW2A2/hw/config.h",
           "65f212439715bfd214104b23d418b167d5f840c9"),
    Design("LFC-W1A1", True, "lfc", 1, 1, _LFC,
           {"lut": 28360, "ff": 33470, "bram18": _bram18(6, 208), "dsp": 4},
           "bnn/src/network/lfcW1A1/README.md", "bnn/src/network/lfcW1A1/hw/config.h",
           "65f212439715bfd214104b23d418b167d5f840c9"),
    Design("CNV-W1A1", True, "cnv", 1, 1, _CNV,
           {"lut": 26072, "ff": 41312, "bram18": _bram18(76, 96), "dsp": 24},
           "bnn/src/network/cnvW1A1/README.md", "bnn/src/network/cnvW1A1/hw/config.h",
           "65f212439715bfd214104b23d418b167d5f840c9"),
)  # fmt: skip


def build(design: Design):
    """The QONNX model of a BNN-PYNQ network at its bit widths and padded shapes."""
    net = QonnxNet(design.name.lower().replace("-", "_"), design.w_bits, design.a_bits)
    if design.kind == "lfc":
        x = net.input((832,), bits=1)  # binarized, padded 784 -> 832 (L0_MW)
        for _ in range(3):
            x = net.dense(x, 1024)
        return net.model(net.dense(x, 64, quantize=False))  # 10 classes padded to 64 (L3_MH)
    x = net.input((3, 32, 32), bits=8)  # 8-bit image
    for i, channels in enumerate((64, 64, 128, 128, 256, 256)):
        x = net.conv(x, channels, 3, pad=0)
        if i in (1, 3):
            x = net.maxpool(x, 2, 2)
    x = net.flatten(x)
    for _ in range(2):
        x = net.dense(x, 512)
    return net.model(net.dense(x, 64, quantize=False))  # 10 classes padded to 64 (L8_MH)


@dataclass
class Row:
    design: Design
    kernels: Resources  # the cost models' sum over the layers (uncalibrated)
    whole: Resources  # the explorer's whole-design estimate with the committed constants
    windows: int  # window generators (shell.windows)
    plumbing: Resources  # the stream plumbing the plan instantiates (accelgen.kernels.plumbing)
    shell_part: Resources  # the shell (not fitted) and the stream plumbing (priced, not fitted)
    ii: int


def evaluate(design: Design) -> Row:
    graph = compile_model(build(design)).graph
    names = [la.name for la in describe_layers(graph)]
    if len(names) != len(design.folding):
        raise SystemExit(f"{design.name}: {len(names)} layers, folding lists {len(design.folding)}")
    plan = FoldingPlan({n: LayerFold(pe, simd) for n, (pe, simd) in zip(names, design.folding)})
    # the estimate does not depend on the part's size: a roomier copy of the board, so that a
    # design the estimate puts above 100% (CNV-W2A2 uses every BRAM) is still costed
    board = get_board(BOARD)
    roomy = dataclasses.replace(board, resources={k: 10 * v for k, v in board.resources.items()})
    e = explore(graph, roomy, folding=plan, clock_mhz=CLOCK_MHZ, max_util=1.0)
    plumb = shell.stream_plumbing(graph, plan.layers, e.interface.bus_bits)
    shell_part = (shell.shell("zynq7", len(e.interface.ports)) + plumb)._replace(dsp=0)  # the DSPs are fitted
    return Row(design, e.resources, e.whole_design, shell.windows(graph), plumb, shell_part, e.ii_cycles)


# -- the fit ----------------------------------------------------------------------------------


def _fit_linear(x: np.ndarray, y: np.ndarray, target: np.ndarray, scale: np.ndarray) -> tuple[float, float]:
    """(p, q) minimising sum(((p * x + q * y) - target) / scale)^2: least squares of the
    error relative to the published figure ``scale``; q >= 0 (refit without it if not)."""
    m = np.column_stack([x, y]) / scale[:, None]
    (p, q), *_ = np.linalg.lstsq(m, target / scale, rcond=None)
    if q < 0:
        xs, ts = x / scale, target / scale
        p, q = float(xs @ ts / (xs @ xs)), 0.0
    return float(p), float(q)


def fit(rows: list[Row]) -> dict:
    """The calibration constants from the in-sample rows."""
    rows = [r for r in rows if not r.design.held_out]
    pub = {k: np.array([r.design.published[k] for r in rows], float) for k in KEYS}
    scale = {}
    for k in ("lut", "ff", "bram18"):
        kern = np.array([r.kernels.as_dict()[k] for r in rows], float)
        rest = pub[k] - np.array([r.shell_part.as_dict()[k] for r in rows], float)
        # published - (shell + stream plumbing) = scale * kernels: one factor per resource, for
        # what the kernels' structural models do not capture (synthesis's logic optimisation
        # and register retiming, how block RAM packs); no per-layer or per-design term
        s, _ = _fit_linear(kern, np.zeros_like(kern), rest, pub[k])
        scale[k] = round(s, 3)
    win = np.array([r.windows for r in rows], float)
    per_window, dsp_fixed = _fit_linear(win, np.ones_like(win), pub["dsp"], pub["dsp"])
    zynq7 = calibration.SHELL_FIXED["zynq7"]._replace(dsp=int(round(dsp_fixed)))
    return {
        "KERNEL_SCALE": scale,
        "DSP_PER_WINDOW": round(per_window, 2),
        "SHELL_FIXED_zynq7": zynq7,
    }


def committed() -> dict:
    return {
        "KERNEL_SCALE": dict(calibration.KERNEL_SCALE),
        "DSP_PER_WINDOW": calibration.DSP_PER_WINDOW,
        "SHELL_FIXED_zynq7": calibration.SHELL_FIXED["zynq7"],
    }


# -- printing ---------------------------------------------------------------------------------


def table(rows: list[Row], held_out: bool) -> list[str]:
    misses = []
    print(f"{'design':10s} {'II':>7s} " + " ".join(f"{k + ' est/pub':>22s}" for k in KEYS))
    for r in rows:
        if r.design.held_out != held_out:
            continue
        cells = []
        for k in KEYS:
            est, pub = r.whole.as_dict()[k], r.design.published[k]
            ratio = est / pub if pub else float("inf") if est else 1.0
            cells.append(f"{est:>7,d}/{pub:<7,d} {ratio:5.2f}x")
            if held_out and abs(ratio - 1.0) > TARGET:
                misses.append(f"{r.design.name} {k}: {ratio:.2f}x ({(ratio - 1) * 100:+.0f}%, target +-20%)")
        print(f"{r.design.name:10s} {r.ii:7,d} " + " ".join(f"{c:>22s}" for c in cells))
    for r in rows:
        if r.design.held_out == held_out:
            print(f"  {r.design.name}: {r.design.sources()}")
    return misses


def why(rows: list[Row]) -> list[str]:
    """The reasons for the held-out misses, with the figures they rest on."""
    by = {r.design.name: r for r in rows}

    def ratio(name: str, k: str) -> float:
        r = by[name]
        return r.whole.as_dict()[k] / r.design.published[k]

    def per_lane(name: str, k: str) -> float:
        r = by[name]
        return r.design.published[k] / sum(pe * simd for pe, simd in r.design.folding)

    lfc, cnv = by["LFC-W1A1"], by["CNV-W1A1"]
    w2 = by["CNV-W2A2"]
    return [
        "Why (what the structural models still miss; nothing below is tuned on the held-out designs):",
        "* The misses are CNV's, in-sample as well as held-out: the estimate puts the LFCs at "
        f"{ratio('LFC-W1A2', 'ff'):.2f}x (in-sample) and {ratio('LFC-W1A1', 'ff'):.2f}x (held-out) of the "
        f"published FFs, the CNVs at {ratio('CNV-W1A2', 'ff'):.2f}x, {ratio('CNV-W2A2', 'ff'):.2f}x (in-sample) "
        f"and {ratio('CNV-W1A1', 'ff'):.2f}x (held-out). One scale per resource cannot serve both: BNN-PYNQ's "
        f"LFC-W1A1 has {per_lane('LFC-W1A1', 'ff'):.1f} FFs per multiplier lane (PE x SIMD summed over the "
        f"layers), CNV-W1A1 {per_lane('CNV-W1A1', 'ff'):.1f} and CNV-W2A2 {per_lane('CNV-W2A2', 'ff'):.1f}: "
        "CNV's registers do not scale with its arithmetic. The candidates (not measured per module: the READMEs "
        "give whole-design totals only) are what BNN-PYNQ's CNV has and its LFC lacks: six window generators "
        "(BNN-PYNQ's own ConvolutionInputGenerator), two max pools, an 8-bit first layer, and weight memories "
        "2K to 64K words deep. accelgen prices its own window generator from swg.h (hw.window_generator); the "
        "calibration designs are BNN-PYNQ's HLS, not accelgen's generated code.",
        f"* CNV-W2A2's kernels are priced at {w2.kernels.lut:,} LUT / {w2.kernels.ff:,} FF, its plumbing at "
        f"{w2.plumbing.lut:,} / {w2.plumbing.ff:,}, against {w2.design.published['lut']:,} / "
        f"{w2.design.published['ff']:,} published: the largest gap, with the fewest lanes.",
        f"* BRAM18: deep memories are bit-sliced as Vivado infers them (hw.bram18_count), which lifts CNV from "
        f"0.63x to {ratio('CNV-W1A1', 'bram18'):.2f}x; BNN-PYNQ's CNV still has more block RAM than its "
        "weights and line buffers need at their widths (BNN-PYNQ loads its weights at run time into writable "
        "memories; accelgen's are ROMs); no per-layer block-RAM term is fitted for it, since it would charge "
        "every small layer of other models with BNN-PYNQ's waste.",
        f"* LFC-W1A1 (held-out) is within the target on every resource (LUT {ratio('LFC-W1A1', 'lut'):.2f}x, "
        f"FF {ratio('LFC-W1A1', 'ff'):.2f}x, BRAM18 {ratio('LFC-W1A1', 'bram18'):.2f}x): binarized lanes are "
        "priced as compressor trees with the XNOR merged (hw.popcount), and its plumbing "
        f"({lfc.plumbing.lut:,} LUT) is what code generation instantiates. CNV-W1A1's plumbing: "
        f"{cnv.plumbing.lut:,} LUT / {cnv.plumbing.ff:,} FF.",
        "* In-sample and held-out designs share BNN-PYNQ's architecture and shell (no other published whole design "
        "at 1-8 bits could be rebuilt): the held-out check is across bit widths, not across tools or boards; "
        "nothing here is fitted for Zynq UltraScale+ (its shell stays an engineering estimate).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="print the fitted constants (paste into calibration.py)")
    args = parser.parse_args()
    rows = [evaluate(d) for d in DESIGNS]
    fitted = fit(rows)
    if args.fit:
        print("Fitted on the in-sample designs (" + ", ".join(r.design.name for r in rows if not r.design.held_out)
              + "); accelgen/kernels/calibration.py:")  # fmt: skip
        for name, value in fitted.items():
            print(f"{name} = {value!r}")
        return
    same = fitted == committed()
    print("Whole-design estimates (explorer at the published folding, 100 MHz, pynq-z2) against published figures.")
    print(f"Published figures: {MEASURED}. Estimates: accelgen's cost models + shell, calibrated.")
    print(f"Committed constants equal the fit (--fit): {'yes' if same else 'NO: rerun --fit and update calibration.py'}")
    print()
    print("In-sample (the fit):")
    table(rows, held_out=False)
    print()
    print("Held-out (never fitted on):")
    misses = table(rows, held_out=True)
    print()
    if misses:
        print(f"Target (held-out within +-20% on LUT, FF, BRAM18, DSP) NOT reached on {len(misses)} figure(s):")
        for m in misses:
            print(f"  {m}")
        print("\n".join(why(rows)))
    else:
        print("Target reached: every held-out figure within +-20%.")


if __name__ == "__main__":
    main()
