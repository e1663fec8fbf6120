"""C-simulation compile time and emulator throughput: accelgen vs hls4ml 1.3.0.

Both tools get the same QONNX fixture files (tests/models/qonnx_*.onnx) in the same run:

* accelgen: compile the model, plan it for the Ultra96-V2 with the explorer (and, as a
  second row, the all-pe=simd=1 default plan), generate the HLS project, build it with
  g++ into a fresh cache (compile time = the library and the testbench), then run the
  emulator (ctypes, batch entry point) on the digits test split repeated ``--repeat``
  times: samples/s on all CPUs and on one thread (best of 3 runs), and accuracy.
* hls4ml: qonnx cleanup, channels-last and Gemm->MatMul (hls4ml's documented QONNX
  flow), ``convert_from_onnx_model`` (Vitis backend, io_parallel, default precision),
  ``compile()`` (its g++ build) and ``predict()`` on the same batch (best of 3). When
  hls4ml cannot convert a model the table says why.

Prints one table; the ratios are hls4ml compile s / accelgen compile s, and accelgen
samples/s / hls4ml samples/s.

First, "a model to a verified C-simulation" for the bundled CNN
(examples/digits_cnn_w4a8.onnx, Ultra96-V2 plan, 64 vectors): compile, plan, generate,
g++ and the testbench run, in one process and as `accelgen build --synth off` (a new
process, Python start included), with a cold cache (nothing compiled), a warm kernel
library (the precompiled kernel headers cached, the design new) and a warm design (the
design's library cached); each row gives the g++ seconds and their share.

Run: ``python benchmarks/bench_csim.py`` (``--e2e-only``: only the first table).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accelgen.boards import get_board  # noqa: E402
from accelgen.codegen import generate  # noqa: E402
from accelgen.csim import Emulator, build, build_group, run_csim  # noqa: E402
from accelgen.dse import explore  # noqa: E402
from accelgen.pipeline import compile_model  # noqa: E402
from tests.data import as_images, digits_split  # noqa: E402

MODELS = ROOT / "tests" / "models"
DEFAULT_FILES = ["qonnx_mlp_w4a4_po2.onnx", "qonnx_mlp_w4a4.onnx", "qonnx_mlp_w2a2.onnx", "qonnx_mlp_w1a1.onnx",
                 "qonnx_cnn_w4a8.onnx"]  # fmt: skip


def digits(file: str, repeat: int) -> tuple[np.ndarray, np.ndarray]:
    _, _, x, y = digits_split()
    if "cnn" in file:
        x = as_images(x)
    return np.concatenate([x] * repeat), np.concatenate([y] * repeat)


def throughput(fn, x: np.ndarray, runs: int = 3) -> tuple[float, np.ndarray]:
    """Samples/s of the best of ``runs`` runs (the machine may be shared), and the output."""
    fn(x[:8])  # warm up (loads, first-touch allocations)
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        y = fn(x)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best, y


def accelgen_row(file: str, plan_kind: str, x: np.ndarray, labels: np.ndarray, work: Path) -> dict:
    compiled = compile_model(MODELS / file)
    plan = explore(compiled.graph, get_board("ultra96v2")).plan() if plan_kind == "dse" else None
    t0 = time.perf_counter()
    outdir = generate(compiled, plan, work / f"{Path(file).stem}_{plan_kind}", vectors=(x[:450],))
    gen_s = time.perf_counter() - t0
    b = build(outdir, cache_dir=work / "cache")  # a fresh cache: a cold build
    emu = Emulator(outdir)
    rate, y = throughput(emu.run_float, x)
    emu.threads = 1
    rate1, _ = throughput(emu.run_float, x)
    return {"compile_s": b.seconds, "generate_s": gen_s, "rate": rate, "rate1": rate1,
            "accuracy": float((y.argmax(axis=1) == labels).mean())}  # fmt: skip


EXAMPLE = ROOT / "examples" / "digits_cnn_w4a8.onnx"


def verified_csim(outdir: Path, cache: Path) -> dict:
    """The bundled CNN from ONNX to a passing C-simulation, in this process."""
    t0 = time.perf_counter()
    compiled = compile_model(EXAMPLE)
    plan = explore(compiled.graph, get_board("ultra96v2")).plan()
    generate(compiled, plan, outdir)
    result = run_csim(outdir, cache_dir=cache)
    total = time.perf_counter() - t0
    assert result["passed"], result.get("first_mismatch")
    return {"total_s": total, "gxx_s": result["build_s"], "cached": result["cached"]}


def cli_build_seconds(outdir: Path, cache: Path) -> float:
    """`accelgen build --synth off` of the bundled CNN as a user runs it (a new process)."""
    env = {**os.environ, "ACCELGEN_CACHE_DIR": str(cache.parent)}
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "accelgen", "build", str(EXAMPLE), "--board", "ultra96", "-o", str(outdir),
           "--synth", "off", "--json"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - t0


def _drop_designs(cache: Path) -> None:
    """Forget every compiled design, keep the precompiled kernel library (cache/pch)."""
    for entry in cache.iterdir() if cache.is_dir() else []:
        if entry.name != "pch":
            shutil.rmtree(entry, ignore_errors=True)


def end_to_end(work: Path) -> None:
    print(f"model to a verified C-simulation: {EXAMPLE.relative_to(ROOT)} on Ultra96-V2, 64 vectors")
    header = f"{'cache':34s} {'in-process s':>12s} {'g++ s':>7s} {'g++ share':>9s} {'accelgen build s':>17s}"
    print(header)
    print("-" * len(header))
    cache = work / "e2e-cache" / "csim"  # what ACCELGEN_CACHE_DIR=work/e2e-cache means
    states = [("cold (nothing compiled)", lambda: shutil.rmtree(cache, ignore_errors=True)),
              ("warm kernel library, new design", lambda: _drop_designs(cache)),
              ("warm design", lambda: None)]  # fmt: skip
    for i, (name, prepare) in enumerate(states):
        prepare()
        r = verified_csim(work / f"e2e_{i}", cache)
        prepare()
        cli = cli_build_seconds(work / f"e2e_cli_{i}", cache)
        print(f"{name:34s} {r['total_s']:12.2f} {r['gxx_s']:7.2f} {r['gxx_s'] / r['total_s']:9.0%} {cli:17.2f}")
    opt_tradeoff(work)
    print()


def opt_tradeoff(work: Path) -> None:
    """The design library at -O2 (what accelgen uses) and -O1: compile seconds with the
    kernel library already precompiled, and the emulator's samples/s on one thread."""
    compiled = compile_model(EXAMPLE)
    outdir = generate(compiled, explore(compiled.graph, get_board("ultra96v2")).plan(), work / "opt_design")
    x, _ = digits("cnn", 4)
    ref = None
    for opt in ("-O2", "-O1"):
        cache = work / f"opt-cache{opt}"
        build_group([outdir], cache_dir=cache, opt=opt)  # the precompiled header for this -O level
        for entry in cache.iterdir():
            if entry.name != "pch":
                shutil.rmtree(entry)
        t0 = time.perf_counter()
        lib = build_group([outdir], cache_dir=cache, opt=opt)
        seconds = time.perf_counter() - t0
        emu = Emulator(outdir, library=lib, threads=1)
        rate, y = throughput(emu.run_float, x)
        ref = y if ref is None else ref
        print(f"design library {opt}: g++ {seconds:.2f} s (kernel library warm), emulator {rate:,.0f} samples/s on "
              f"1 thread, outputs {'identical to -O2' if np.array_equal(y, ref) else 'DIFFER from -O2'}")  # fmt: skip


def hls4ml_row(file: str, x: np.ndarray, labels: np.ndarray, work: Path) -> dict:
    try:
        import hls4ml
        import qonnx.util.cleanup
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
        from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    except ImportError as exc:
        return {"error": f"not installed ({exc})"}
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = qonnx.util.cleanup.cleanup_model(ModelWrapper(str(MODELS / file)))
            model = model.transform(ConvertToChannelsLastAndClean())
            model = model.transform(GemmToMatMul())
            model = qonnx.util.cleanup.cleanup_model(model)
            config = hls4ml.utils.config.config_from_onnx_model(model, granularity="name", backend="Vitis")
            hls_model = hls4ml.converters.convert_from_onnx_model(
                model, output_dir=str(work / f"hls4ml_{Path(file).stem}"), io_type="io_parallel", backend="Vitis",
                hls_config=config,
            )  # fmt: skip
            t0 = time.perf_counter()
            hls_model.compile()
            compile_s = time.perf_counter() - t0
            xin = np.ascontiguousarray(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x)
            rate, y = throughput(hls_model.predict, xin)
    except Exception as exc:  # report why hls4ml cannot take this model, and where it failed
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "hls4ml" in f.filename or "qonnx" in f.filename]
        where = ""
        if frames:
            f = frames[-1]
            where = f" in {f.filename.split('site-packages/')[-1]}:{f.lineno} {f.name}()"
        return {"error": f"{type(exc).__name__}: {msg}{where}"[:220]}
    y = np.asarray(y).reshape(len(x), -1)
    return {"compile_s": compile_s, "rate": rate, "accuracy": float((y.argmax(axis=1) == labels).mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="batch = the 450-sample test split times this")
    parser.add_argument("--models", nargs="*", default=DEFAULT_FILES, help="QONNX fixture files")
    parser.add_argument("--e2e-only", action="store_true", help="only the model-to-verified-C-simulation table")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-csim-e2e-") as tmp:
        end_to_end(Path(tmp))
    if args.e2e_only:
        return 0
    print(f"accelgen vs hls4ml 1.3.0 on {os.cpu_count()} CPU(s); batch = 450 x {args.repeat} digits test samples")
    header = (f"{'model':26s} {'tool':22s} {'compile s':>9s} {'samples/s':>10s} {'1 thread':>9s} {'acc':>6s}  "
              f"{'compile ratio':>13s} {'speed ratio':>11s}")  # fmt: skip
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="bench-csim-") as tmp:
        work = Path(tmp)
        for file in args.models:
            x, labels = digits(file, args.repeat)
            theirs = hls4ml_row(file, x, labels, work)
            name = Path(file).stem
            if "error" in theirs:
                print(f"{name:26s} {'hls4ml 1.3.0':22s} cannot convert: {theirs['error']}")
            else:
                print(f"{name:26s} {'hls4ml 1.3.0':22s} {theirs['compile_s']:9.2f} {theirs['rate']:10.0f} "
                      f"{theirs['rate']:9.0f} {theirs['accuracy']:6.4f}")  # fmt: skip
            for plan_kind in ("dse", "default"):
                ours = accelgen_row(file, plan_kind, x, labels, work)
                label = "accelgen (ultra96 plan)" if plan_kind == "dse" else "accelgen (pe=simd=1)"
                ratios = ""
                if "error" not in theirs:
                    ratios = (f"{theirs['compile_s'] / ours['compile_s']:12.2f}x {ours['rate'] / theirs['rate']:10.1f}x "
                              f"(1 thread {ours['rate1'] / theirs['rate']:.1f}x)")  # fmt: skip
                print(f"{'':26s} {label:22s} {ours['compile_s']:9.2f} {ours['rate']:10.0f} {ours['rate1']:9.0f} "
                      f"{ours['accuracy']:6.4f}  {ratios}")  # fmt: skip
    print("compile ratio = hls4ml compile s / accelgen compile s (> 1: accelgen compiles faster); "
          "speed ratio = accelgen samples/s / hls4ml samples/s")  # fmt: skip
    print("accelgen's accuracy is bit-exact with its golden model (the C-sim tests prove it on every element)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
