"""Ultra-low-latency RTL path: a 16-64-32-32-5 MLP measured with Yosys and cocotb.

    python benchmarks/bench_rtl.py              # the issue's benchmark (about 5 minutes)
    python benchmarks/bench_rtl.py --calibrate  # refit the estimate model against Yosys
    python benchmarks/bench_rtl.py --deep       # the LUT estimate on clock-driven deep pipelines

The MLP has the jet-tagging topology hls4ml and LogicNets report on (16 inputs, hidden
64-32-32, 5 outputs) with random weights: ternary weights with 2-bit activations, and
3-bit weights with 3-bit activations; 8-bit input codes; the last layer emits its raw
accumulator (the float tail, e.g. softmax, runs on the host). Each design is generated
at 1 and 2 register stages per layer, synthesized with Yosys (synth_xilinx -family xcup)
and simulated with cocotb under Verilator on 256 random input vectors, checked bit for bit
against the golden model under random back-pressure.

Measured here: LUT, FF, CARRY, DSP and logic levels (Yosys), latency and II in cycles
(cocotb). Estimated: the accelgen cost model's LUT/FF/levels. Not measured: clock
frequency (no place and route here). Published figures are quoted, not reproduced.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelgen import rtl  # noqa: E402
from accelgen.rtl import estimate as estimate_mod  # noqa: E402

SIZES = (16, 64, 32, 32, 5)
VARIANTS = [("ternary", 2, 2), ("3-bit", 3, 3)]
PUBLISHED = [
    ("hls4ml 16-bit (Duarte et al. 2018)", "65 ns / 13 cycles @ 200 MHz, 3,915 DSP (does not fit the ZU3EG)"),
    ("hls4ml 6-bit, pruned", "75 ns / 15 cycles @ 200 MHz, 221 DSP"),
    ("LogicNets JSC-L (Umuroglu et al. 2020)", "38.9k LUT, 5 cycles"),
]


def _vectors(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZES[0]))


def measure(graph, outdir: Path, levels: int, simulator: str | None) -> dict:
    rtl.generate(graph, outdir, pipeline_levels=levels)
    design = rtl.load_design(outdir)
    synth = rtl.synth_yosys(outdir)
    sim = rtl.simulate(outdir, _vectors(256), simulator=simulator) if simulator else None
    return {"design": design, "yosys": synth, "sim": sim}


def benchmark(simulator: str | None) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, w_bits, a_bits in VARIANTS:
            graph = rtl.random_mlp(SIZES, w_bits=w_bits, act_bits=a_bits, seed=0)
            for levels in (1, 2):
                r = measure(graph, Path(tmp) / f"{label}_{levels}", levels, simulator)
                rows.append((label, w_bits, a_bits, levels, r))
                print(f"  done: {label} weights, {levels} register stage(s) per layer", flush=True)
    print()
    print("16-64-32-32-5 MLP, random weights, 8-bit inputs, fully unrolled RTL (accelgen)")
    head = (f"{'weights':8} {'act':>4} {'stages':>6} | {'LUT':>7} {'FF':>6} {'CARRY4':>6} {'DSP':>4} {'levels':>6} | "
            f"{'latency':>7} {'II':>4} {'bit-exact':>9} | {'LUT est':>7} {'FF est':>6} {'lvl est':>7}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for label, _w, a_bits, levels, r in rows:
        y, d, s = r["yosys"], r["design"], r["sim"]
        est = d["estimate"]
        lat = f"{s['latency_cycles']:>7}" if s else f"{d['latency_cycles']:>6}*"
        ii = f"{s['ii_cycles']:>4.0f}" if s else "   -"
        ok = ("yes" if s["passed"] else "NO") if s else "-"
        print(f"{label:8} {a_bits:>4} {levels:>6} | {y['lut']:>7,} {y['ff']:>6,} {y['carry']:>6,} {y['dsp']:>4} "
              f"{y['levels']:>6} | {lat} {ii} {ok:>9} | {est['lut']:>7,} {est['ff']:>6,} {est['levels']:>7}")  # fmt: skip
    print()
    print(
        "measured: LUT/FF/CARRY4/DSP/levels by " + rows[0][4]["yosys"]["tool"] + " synth_xilinx -family xcup "
        "-nowidelut (logic levels: LUT/CARRY/MUXF cells on the deepest register-to-register path);"
    )
    print(
        "          latency (input beat taken -> output beat offered) and II by cocotb "
        + (f"under {simulator}" if simulator else "(skipped: * = designed latency)")
        + ", 256 vectors, random back-pressure"
    )
    print(
        "estimated: the 'est' columns (accelgen.rtl.estimate, calibrated against Yosys: "
        + estimate_mod.CALIBRATION_SOURCE
        + ")"
    )
    print("not measured: clock frequency (needs place and route). Yosys 0.23 maps carries to CARRY4;")
    print("          UltraScale+ has CARRY8: half as many carry cells, and fewer carry levels, in Vivado.")
    print()
    print("published, for comparison (same topology, jet-tagging data; quoted, not reproduced here):")
    for name, fig in PUBLISHED:
        print(f"  {name:42} {fig}")


def calibration_set():
    """(name, graph, levels) of the designs the estimate model is fitted to."""
    from accelgen.pipeline import compile_model

    out = []
    for name in ("qonnx_mlp_w2a2", "qonnx_mlp_w1a1"):
        out.append((name, compile_model(ROOT / "tests" / "models" / f"{name}.onnx").graph, 1))
    for w, a in ((2, 2), (3, 3), (2, 1), (4, 4)):
        g = rtl.random_mlp(SIZES, w_bits=w, act_bits=a, seed=w * 10 + a)
        for levels in (1, 2):
            out.append((f"random_w{w}a{a}", g, levels))
    out.append(("random_w2a2_comb", rtl.random_mlp((16, 32, 5), w_bits=2, act_bits=2, seed=5), 0))
    # deep pipelines: a register after (nearly) every adder-tree level, as a high --clock chooses
    out.append(("random_w2a2_deep", rtl.random_mlp((16, 48, 24, 5), w_bits=2, act_bits=2, seed=7), 6))
    out.extend(deep_set())
    return out


#: (model, board part, clock MHz): register stages chosen by the per-level delay model
DEEP = [("qonnx_mlp_w2a2", "xczu3eg-sbva484-1-i", 300.0), ("qonnx_mlp_w2a2", "xczu3eg-sbva484-1-i", 150.0)]


def deep_set():
    """(name, graph, per-layer stages) of fixture models pipelined for a clock (rtl.generate.choose_pipeline)."""
    from accelgen.pipeline import compile_model
    from accelgen.rtl.core import extract_core
    from accelgen.rtl.generate import choose_pipeline

    out = []
    for name, part, clock in DEEP:
        graph = compile_model(ROOT / "tests" / "models" / f"{name}.onnx").graph
        levels, _ = choose_pipeline(extract_core(graph), clock, part)
        out.append((f"{name}@{clock:g}MHz", graph, levels))
    return out


def deep() -> None:
    """Estimate beside Yosys on the clock-driven deep pipelines (the LUT model's weak spot)."""
    print(f"{'design':24} {'stages':>10} | {'LUT yosys':>9} {'LUT est':>8} {'error':>6} | {'alu bits':>8} "
          f"{'pipe alu':>8} {'macc bits':>9}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, graph, levels in deep_set():
            outdir = Path(tmp) / name.replace("@", "_")
            rtl.generate(graph, outdir, pipeline_levels=levels)
            design = rtl.load_design(outdir)
            synth = rtl.synth_yosys(outdir)
            est, f = design["estimate"], design["estimate"]["features"]
            err = (est["lut"] - synth["lut"]) / synth["lut"]
            print(f"{name:24} {str(levels):>10} | {synth['lut']:>9,} {est['lut']:>8,} {err:>+6.1%} | "
                  f"{f['alu_bits']:>8,} {f['reg_alu_bits']:>8,} {f['macc_bits']:>9,}", flush=True)  # fmt: skip
    print(f"measured: Yosys ({estimate_mod.CALIBRATION_SOURCE.split(',')[0]}); estimated: accelgen.rtl.estimate")


def calibrate() -> None:
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, graph, levels in calibration_set():
            outdir = Path(tmp) / f"{name}_{levels}"
            rtl.generate(graph, outdir, pipeline_levels=levels, combinational=levels == 0)
            design = rtl.load_design(outdir)
            synth = rtl.synth_yosys(outdir)
            f = estimate_mod.features_of(design)
            samples.append((f, synth))
            print(f"{name:18} levels={levels} yosys lut={synth['lut']:>6} ff={synth['ff']:>5} carry={synth['carry']:>5} "
                  f"levels={synth['levels']:>3} | est lut={design['estimate']['lut']:>6} ff={design['estimate']['ff']:>5} "
                  f"carry={design['estimate']['carry']:>5} levels={design['estimate']['levels']:>3}", flush=True)  # fmt: skip
    coeffs, errors = estimate_mod.fit(samples)
    print("\nCOEFFICIENTS =", coeffs)
    print("CALIBRATION_ERROR =", errors)
    print(f"fitted on {len(samples)} designs with {samples[0][1]['tool']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calibrate", action="store_true", help="refit the estimate model against Yosys")
    p.add_argument("--deep", action="store_true", help="estimate vs Yosys on clock-driven deep pipelines")
    p.add_argument("--sim", default="verilator", choices=["verilator", "icarus", "none"])
    args = p.parse_args()
    if not rtl.yosys_available():
        sys.exit("yosys is not installed (apt-get install yosys)")
    if args.calibrate:
        calibrate()
    elif args.deep:
        deep()
    else:
        sim = None if args.sim == "none" or not rtl.simulator_available(args.sim) else args.sim
        benchmark(sim)


if __name__ == "__main__":
    main()
