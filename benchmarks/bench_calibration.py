"""Calibration of the whole-design estimate against published utilisation, and the held-out check.

    python benchmarks/bench_calibration.py          # estimate / published, in-sample and held-out
    python benchmarks/bench_calibration.py --fit    # the fitted constants (calibration.py holds them)

Every published design is rebuilt here as a QONNX model (benchmarks/topologies.py) at its
bit widths and padded shapes and planned by the explorer at its own folding (a FoldingPlan
from its PE / SIMD) and clock; each row names its sources (repository, file, commit).

* **In-sample (the fit)**: FINN's UNSW-NB15 MLP (W2A2, 600-64-64-64-1, xc7z020, 100 MHz)
  at the two foldings FINN's cybersecurity notebook published out-of-context synthesis
  results for (FINN of Dec 2020; FINN of Jun 2022 with Vivado 2022.1): the accelerator
  alone (stitched IP: layers, FIFOs, width converters), no DMA or interconnect shell.
* **Held-out (never fitted on)**: every BNN-PYNQ LFC and CNV variant with published
  figures (LFC-W1A1, LFC-W1A2, CNV-W1A1, CNV-W1A2, CNV-W2A2: Vivado 2018.2 routed-design
  utilisation of the whole Zynq design, shell included, in the networks' READMEs).

The fit (``--fit``): for LUT and FF separately, ``published - shell - plumbing = scale x
kernels``, least squares of the relative error, where ``kernels`` is the cost models' sum
over the layers and ``plumbing`` the stream plumbing code generation instantiates at the
plan (accelgen.kernels.plumbing, priced from hw primitives, not fitted); the shell (only in
whole-Zynq figures) is an engineering estimate (calibration.py). BRAM18 is the structural
count, not scaled (UNFITTED_SCALE says why). DSP: nothing to fit (the in-sample designs use none and have no window
generator); the held-out DSPs are BNN-PYNQ's own HLS index arithmetic, which accelgen's
generated code does not have.

Not used, and why: hls4ml's synthesis baselines (fastmachinelearning/hls4ml
test/pytest/baselines/<backend>/<version>/*.json) are HLS C-synthesis estimates of
16-bit fixed-point layers (ap_fixed<16,6>, the tests' default precision), which accelgen
cannot rebuild (1- to 8-bit datapaths, frontend/values.MAX_BITS); finn-examples' READMEs and
build folders publish folding configurations but no utilisation figures; FINN's other
notebooks publish its analytical estimates, not synthesis results.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelgen.boards import get_board  # noqa: E402
from accelgen.dse import describe_layers, explore  # noqa: E402
from accelgen.kernels import calibration, shell  # noqa: E402
from accelgen.kernels.base import Resources  # noqa: E402
from accelgen.pipeline import compile_model  # noqa: E402
from accelgen.plan import FoldingPlan, LayerFold  # noqa: E402
from benchmarks import topologies  # noqa: E402

KEYS = ("lut", "ff", "bram18", "dsp")
TARGET = 0.20  # held-out whole designs within +-20% of the published figures


@dataclass(frozen=True)
class Source:
    """Where a published figure or folding comes from."""

    repo: str
    path: str
    commit: str
    what: str

    def __str__(self) -> str:
        return f"{self.repo} {self.path} @ {self.commit[:12]} ({self.what})"


@dataclass(frozen=True)
class Design:
    name: str
    held_out: bool
    build: Callable[[], onnx.ModelProto]
    folding: tuple[tuple[int, int], ...]  # (pe, simd) per integer layer, in graph order
    published: dict[str, int]  # lut, ff, bram18 (RAMB36 x 2 + RAMB18), dsp
    measured: str  # what the published figure is
    sources: tuple[Source, ...]
    #: the board family whose DMA + interconnect shell the published figure includes; None:
    #: an out-of-context synthesis of the accelerator alone
    shell: str | None = "zynq7"
    board: str = "pynq-z2"
    clock_mhz: float = 100.0


def _bram18(ramb36: int, ramb18: int) -> int:
    return 2 * ramb36 + ramb18


BNN_PYNQ = "Xilinx/BNN-PYNQ"
BNN_README_COMMIT = "d84f6e887d224791b6a20e7a907123bf9e15ee41"
BNN_MEASURED = "post-implementation (routed) utilisation of the whole design, Vivado 2018.2, PYNQ-Z1/Z2"
FINN = "Xilinx/finn"
CYBSEC_NB = "notebooks/end2end_example/cybersecurity/3-build-accelerator-with-finn.ipynb"
CYBSEC_MEASURED = "out-of-context synthesis of the stitched accelerator (no shell), xc7z020clg400-1, 100 MHz"


def _bnn(net: str, config_commit: str) -> tuple[Source, ...]:
    return (Source(BNN_PYNQ, f"bnn/src/network/{net}/README.md", BNN_README_COMMIT, "utilisation"),
            Source(BNN_PYNQ, f"bnn/src/network/{net}/hw/config.h", config_commit, "folding"))  # fmt: skip


# folding (PE, SIMD) per layer from each BNN-PYNQ network's hw/config.h; the max pools process
# every channel of a pixel per cycle (BNN-PYNQ's StreamingMaxPool), the flatten has no folding
_LFC = ((32, 64), (64, 32), (32, 64), (16, 8))
_CNV = ((16, 3), (32, 32), (64, 1), (16, 32), (16, 32), (128, 1), (4, 32), (1, 32), (1, 1), (1, 4), (1, 8), (4, 1))
_CNV_W2A2 = ((8, 3), (16, 16), (64, 1), (8, 16), (8, 16), (128, 1), (4, 8), (1, 8), (1, 1), (1, 2), (2, 2), (4, 1))
_OLD = "65f212439715bfd214104b23d418b167d5f840c9"

DESIGNS = (
    # FINN's UNSW-NB15 MLP: folding from the notebook's printed final_hw_config.json (PE, SIMD of
    # MatrixVectorActivation / StreamingFCLayer_Batch 0..3), figures from its printed
    # report/ooc_synth_and_timing.json ("BRAM" counts RAMB36 tiles, a RAMB18 as half)
    Design("UNSW-MLP-A", False, lambda: topologies.cybsec_mlp(2, 2), ((32, 15), (4, 16), (4, 16), (1, 1)),
           {"lut": 7073, "ff": 7534, "bram18": 2 * 18, "dsp": 0}, CYBSEC_MEASURED + ", FINN of Dec 2020",
           (Source(FINN, CYBSEC_NB, "5243b77eaf115b984cb79960940cf40b0cae6afd", "utilisation and folding"),),
           shell=None),
    Design("UNSW-MLP-B", False, lambda: topologies.cybsec_mlp(2, 2), ((16, 40), (1, 64), (1, 64), (1, 1)),
           {"lut": 7234, "ff": 10233, "bram18": _bram18(22, 0), "dsp": 0}, CYBSEC_MEASURED + ", FINN of Jun 2022, Vivado 2022.1",
           (Source(FINN, CYBSEC_NB, "365a5781926a5b0424c2af81dc714735b9bbc42b", "utilisation and folding"),),
           shell=None),
    Design("LFC-W1A1", True, lambda: topologies.bnn_pynq_lfc(1, 1), _LFC,
           {"lut": 28360, "ff": 33470, "bram18": _bram18(6, 208), "dsp": 4}, BNN_MEASURED, _bnn("lfcW1A1", _OLD)),
    Design("LFC-W1A2", True, lambda: topologies.bnn_pynq_lfc(1, 2), _LFC,
           {"lut": 48981, "ff": 45338, "bram18": _bram18(6, 208), "dsp": 4}, BNN_MEASURED, _bnn("lfcW1A2", _OLD)),
    Design("CNV-W1A1", True, lambda: topologies.bnn_pynq_cnv(1, 1), _CNV,
           {"lut": 26072, "ff": 41312, "bram18": _bram18(76, 96), "dsp": 24}, BNN_MEASURED, _bnn("cnvW1A1", _OLD)),
    Design("CNV-W1A2", True, lambda: topologies.bnn_pynq_cnv(1, 2), _CNV,
           {"lut": 40321, "ff": 56276, "bram18": _bram18(90, 83), "dsp": 26}, BNN_MEASURED,
           _bnn("cnvW1A2", "4139b7a8391fa69d7b8e6cfd904988a413e70676")),
    Design("CNV-W2A2", True, lambda: topologies.bnn_pynq_cnv(2, 2), _CNV_W2A2,
           {"lut": 37302, "ff": 51386, "bram18": _bram18(138, 4), "dsp": 32}, BNN_MEASURED, _bnn("cnvW2A2", _OLD)),
)  # fmt: skip


@dataclass
class Row:
    design: Design
    kernels: Resources  # the cost models' sum over the layers (uncalibrated)
    whole: Resources  # the whole-design estimate with the committed constants (the published scope)
    windows: int  # window generators (shell.windows)
    plumbing: Resources  # the stream plumbing the plan instantiates (accelgen.kernels.plumbing)
    shell_part: Resources  # the shell (not fitted, none out of context) and the stream plumbing (priced)
    ii: int
    vector_bits: int  # sum over the matrix layers of fan-in x input bits (one input vector each)


def _without(a: Resources, b: Resources) -> Resources:
    return Resources(*(x - y for x, y in zip(a, b)))


def evaluate(design: Design) -> Row:
    graph = compile_model(design.build()).graph
    layers = describe_layers(graph)
    names = [la.name for la in layers]
    if len(names) != len(design.folding):
        raise SystemExit(f"{design.name}: {len(names)} layers, folding lists {len(design.folding)}")
    plan = FoldingPlan({n: LayerFold(pe, simd) for n, (pe, simd) in zip(names, design.folding)})
    # the estimate does not depend on the part's size: a roomier copy of the board, so that a
    # design the estimate puts above 100% (CNV-W2A2 uses every BRAM) is still costed
    board = get_board(design.board)
    roomy = dataclasses.replace(board, resources={k: 10 * v for k, v in board.resources.items()})
    e = explore(graph, roomy, folding=plan, clock_mhz=design.clock_mhz, max_util=1.0)
    plumb = shell.stream_plumbing(graph, plan.layers, e.interface.bus_bits)
    ports = len(e.interface.ports)
    own_shell = shell.shell(board.processing_system, ports)
    # the published scope: the explorer's whole design, less its shell when the figure has none
    whole = e.whole_design if design.shell else _without(e.whole_design, own_shell)
    shell_part = (shell.shell(design.shell, ports) if design.shell else Resources()) + plumb
    vector_bits = sum(_fan_in(la.spec) * la.spec.in_bits[0] for la in layers if hasattr(la.spec, "arith"))
    return Row(design, e.resources, whole, shell.windows(graph), plumb, shell_part._replace(dsp=0), e.ii_cycles,
               vector_bits)  # fmt: skip


def _fan_in(spec) -> int:
    """Inputs per output of a matrix layer (dense: its features; convolution: its window)."""
    if hasattr(spec, "in_features"):
        return spec.in_features
    w = spec.win
    return w.ic * (1 if spec.pointwise else w.kh * w.kw)


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


#: BRAM18 is counted, not scaled: the in-sample designs keep each layer's weights in one memory
#: as wide as all its PEs (FINN's decoupled weight streamer: 1280 bits / 36 -> 36 BRAM18 for
#: UNSW-MLP-B's first layer) where accelgen's generated code partitions them per PE (16 x
#: ceil(80 / 36) = 48), so a scale fitted on them would carry FINN's packing into accelgen's
#: count; :func:`bram18_scale_if_fitted` prints what it would have been
UNFITTED_SCALE = {"bram18": 1.0}


def _scale_fit(rows: list[Row], key: str) -> float:
    """published - (shell + stream plumbing) = scale * kernels, least squares of the relative
    error: one factor per resource, for what the kernels' structural models do not capture
    (synthesis's logic optimisation and register retiming); no per-layer or per-design term."""
    rows = [r for r in rows if not r.design.held_out]
    pub = np.array([r.design.published[key] for r in rows], float)
    kern = np.array([r.kernels.as_dict()[key] for r in rows], float)
    rest = pub - np.array([r.shell_part.as_dict()[key] for r in rows], float)
    s, _ = _fit_linear(kern, np.zeros_like(kern), rest, pub)
    return round(s, 3)


def fit(rows: list[Row]) -> dict:
    """The calibration constants from the in-sample rows."""
    scale = {k: _scale_fit(rows, k) for k in ("lut", "ff")}
    return {"KERNEL_SCALE": {**scale, **UNFITTED_SCALE}}


def bram18_scale_if_fitted(rows: list[Row]) -> float:
    return _scale_fit(rows, "bram18")


def committed() -> dict:
    return {"KERNEL_SCALE": dict(calibration.KERNEL_SCALE)}


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
            print(f"  {r.design.name}: {r.design.measured}")
            for src in r.design.sources:
                print(f"    {src}")
    return misses


def why(rows: list[Row]) -> list[str]:
    """What the held-out misses rest on (read from finn-hlslib, BNN-PYNQ's library; nothing
    below is added to the estimate: accelgen's generated code does not build it)."""
    by = {r.design.name: r for r in rows}

    def ratio(r: Row, k: str, extra: int = 0) -> str:
        return f"{(r.whole.as_dict()[k] + extra) / r.design.published[k]:.2f}x"

    lfc, cnv = by["LFC-W1A1"], by["CNV-W1A1"]
    return [
        "Why the held-out designs miss (BNN-PYNQ's HLS against accelgen's generated structure):",
        "* FF: finn-hlslib's matrix-vector unit keeps its whole input vector in registers (inputBuf[SF], "
        "ARRAY_PARTITION complete): fan-in x input bits FFs per layer, "
        f"{cnv.vector_bits:,} in CNV-W1A1, {lfc.vector_bits:,} in LFC-W1A1. accelgen's mvau.h keeps it in a "
        "RAM (vector[SF]), priced as one. Counted in, CNV-W1A1's FF would be "
        f"{ratio(cnv, 'ff', cnv.vector_bits)} and LFC-W1A1's {ratio(lfc, 'ff', lfc.vector_bits)}: the "
        "registers are about half of CNV's shortfall, while the LFCs are already over (the FF scale, fitted "
        "on a 2-bit MLP whose FINN design has them too, is high for binarized lanes).",
        "* LUT: the binarized designs (LFC, CNV) are short although the 2-bit in-sample MLP is met: no "
        "in-sample design has XNOR-popcount lanes, so hw.popcount (a compressor tree with the XNOR merged) "
        "is not calibrated by the fit; BNN-PYNQ's LFC-W1A1 spends ~4 LUTs per lane "
        f"({lfc.design.published['lut']:,} LUTs, {sum(p * q for p, q in lfc.design.folding):,} lanes).",
        "* BRAM18: counted from the structure (no scale). CNV's remaining shortfall: finn-hlslib's window "
        "generator keeps K / stride + 1 line blocks (swg.h keeps K + stride rows) and BNN-PYNQ's weights and "
        "thresholds are run-time writable RAMs partitioned per PE.",
        "* DSP: accelgen prices DSPs only for products of operands wider than 4 bits (CNV-W2A2's 8-bit "
        "first layer: PE x SIMD = 24); BNN-PYNQ's other DSPs are its own HLS index and address arithmetic "
        "(the m_axi top level, the window generators' counters), which nothing in the in-sample set has "
        "and accelgen's code does not build.",
    ]


def breakdown(rows: list[Row]) -> None:
    """Each design's estimate by part (uncalibrated kernels, stream plumbing, shell)."""
    print(f"{'design':10s} {'kernels LUT/FF/BRAM18':>24s} {'plumbing LUT/FF/BRAM18':>24s} {'shell LUT/FF/BRAM18':>22s}")
    for r in rows:
        sh = _without(r.shell_part, r.plumbing)
        cells = [f"{p.lut:,}/{p.ff:,}/{p.bram18:,}" for p in (r.kernels, r.plumbing, sh)]
        print(f"{r.design.name:10s} {cells[0]:>24s} {cells[1]:>24s} {cells[2]:>22s}")


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
    print("Whole-design estimates (explorer at each design's published folding and clock) against published")
    print("figures, in each figure's scope (whole Zynq design, or the accelerator alone out of context).")
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
        print()
    else:
        print("Target reached: every held-out figure within +-20%.")
    print(f"BRAM18 is counted, not scaled (UNFITTED_SCALE); a fitted BRAM18 scale would be "
          f"{bram18_scale_if_fitted(rows):.3f}.")
    print("Parts of the estimate (uncalibrated kernels; plumbing and shell are not scaled):")
    breakdown(rows)


if __name__ == "__main__":
    main()
