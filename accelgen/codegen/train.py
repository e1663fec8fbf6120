"""``accelgen train-build``: the on-device training project of a TT network.

Writes OUTDIR atomically (:class:`accelgen.workspace.Workspace`), like ``accelgen build``::

    OUTDIR/
      report.json report.md     what was generated and estimated (cycles, bytes, fit)
      hls/                      top.h top.cpp emu.cpp (templates/hls_train), train.json
                                (the TrainConfig and the initial state), lib/accelgen/
      csim/libaccel.so          the C-simulation library (the runtime Trainer's csim backend)
      logs/                     one log per stage

The arithmetic is :mod:`accelgen.runtime.training.spec`; shapes, shifts, cycles and memories
come from :mod:`accelgen.kernels.tt_train` (one description, read by the templates and the
cost figures alike).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelgen import __version__, boards
from accelgen.csim import build_group
from accelgen.errors import InputError
from accelgen.kernels import tt_train
from accelgen.resources import data_dir
from accelgen.runtime.training import spec
from accelgen.templating import environment
from accelgen.workspace import Workspace

TOP = "tt_train_top"
NAMESPACE = "tt_train"
#: the paper's measured ratios (arXiv 2104.03420), printed beside our estimates, never as ours
PAPER_ANCHORS = {"memory_reduction_vs_dense": 292, "speedup_vs_embedded_cpu": 59}


@dataclass
class TrainDesign:
    """A generated training project: its directory, configuration, initial state and report."""

    outdir: Path
    config: spec.TrainConfig
    state: spec.TrainState
    report: dict


def render(config: spec.TrainConfig, lanes: int) -> dict[str, str]:
    """The project's C++ files from the templates (hls_train/), by relative path."""
    cores = tt_train.core_steps(config, lanes)
    for s in cores:
        s["err_next"], s["err"] = tt_train.error_buffer_of(s["k"] + 1), tt_train.error_buffer_of(s["k"])
    context = {
        "version": __version__, "top": TOP, "namespace": NAMESPACE, "w": config.widths, "cores": cores,
        "h": tt_train.head_step(config, lanes), "in_features": config.in_features, "max_batch": config.max_batch,
        "param_words": config.draws_per_sample + 1, "error_buffers": tt_train.error_buffers(config),
        "hidden_error_buffer": tt_train.error_buffer_of(config.d), "tt_out_bits": tt_train.tt_out_bits(config),
        "exp_table": [int(v) for v in spec.exp_table(config.widths)],
        "summary": f"modes {config.modes_in} -> {config.modes_out}, ranks {config.ranks}, {config.classes} classes",
    }  # fmt: skip
    env = environment("hls_train")
    return {f"hls/{name}": env.get_template(f"{name}.j2").render(**context) for name in ("top.h", "top.cpp", "emu.cpp")}


def check_interface(config: spec.TrainConfig) -> None:
    """The top's ports are 32-bit words: every code and logit must fit one."""
    bits = dict(config.accumulators())["head logits"]
    if bits > 32 or config.widths.bias_bits > 32:
        raise InputError(f"the logits need {bits} bits; the training top's 32-bit results port cannot carry them: "
                         "narrow --act-bits or --head-bits")  # fmt: skip


def report(config: spec.TrainConfig, board, lanes: int, clock_mhz: float, max_util: float) -> dict:
    """Cost of the design: on-chip bytes vs dense training, cycles per sample, fit on the board."""
    dense = tt_train.dense_training_bytes(config)
    device = tt_train.device_bytes(config)
    cycles = tt_train.cycles_per_sample(config, lanes)
    return {
        "config": config.to_dict(),
        "board": board.name,
        "clock_mhz": clock_mhz,
        "lanes": lanes,
        "train_bytes_device": device,
        "train_bytes_dense": dense["total"],
        "train_bytes_dense_parts": dense,
        "memory_reduction_est": dense["total"] / device,
        "memories": [
            {"name": m.name, "bits": m.bits, "depth": m.depth, "bytes": m.bytes} for m in tt_train.memories(config)
        ],  # fmt: skip
        "cycles_per_sample_est": cycles,
        "inference_cycles_per_sample_est": tt_train.cycles_per_sample(config, lanes, train=False),
        "phases": [
            {
                "name": p.name,
                "elements": p.elements,
                "reduction": p.reduction,
                "lanes": p.lanes,
                "cycles": p.cycles,
                "dsp": p.dsp,
            }
            for p in tt_train.phases(config, lanes)
        ],  # fmt: skip
        "samples_per_s_est": clock_mhz * 1e6 / cycles,
        "fit": tt_train.fit(config, board, lanes, max_util),
        "paper_anchors": PAPER_ANCHORS,
        "estimates": "cycles, resources and bytes are this model's estimates (no vendor tool ran)",
    }


def report_markdown(rep: dict) -> str:
    fit = rep["fit"]
    lines = [
        "# On-device training design (estimates)",
        "",
        f"- board {rep['board']} at {rep['clock_mhz']} MHz, {rep['lanes']} lanes per reduction",
        f"- on-chip training state: {rep['train_bytes_device']:,} B; dense fp32 training: "
        f"{rep['train_bytes_dense']:,} B; ratio {rep['memory_reduction_est']:.1f}x (estimate; paper: "
        f"{PAPER_ANCHORS['memory_reduction_vs_dense']}x measured)",
        f"- cycles per training sample: {rep['cycles_per_sample_est']:,} (estimate); "
        f"{rep['samples_per_s_est']:,.0f} samples/s (paper: {PAPER_ANCHORS['speedup_vs_embedded_cpu']}x vs an "
        "embedded CPU, measured there, not here)",
        f"- fit ({fit['max_util']:.0%} budget): {'fits' if fit['fits'] else 'DOES NOT FIT: ' + str(fit['over'])}; "
        f"need {fit['need']}",
        "",
        "| phase | elements | reduction | cycles | DSP |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {p['name']} | {p['elements']} | {p['reduction']} | {p['cycles']} | {p['dsp']} |" for p in rep["phases"]
    ]
    return "\n".join(lines) + "\n"


def _copy_library(dest: Path) -> None:
    target = dest / "hls" / "lib" / "accelgen"
    target.mkdir(parents=True)
    for f in sorted((data_dir("hls") / "accelgen").glob("*.h")):
        shutil.copyfile(f, target / f.name)


def generate(config: spec.TrainConfig, state: spec.TrainState, outdir: str | Path, *, board: str = "ultra96",
             lanes: int = tt_train.DEFAULT_LANES, clock_mhz: float | None = None, max_util: float = 0.8,
             csim: bool = True) -> TrainDesign:  # fmt: skip
    """Write the training project into OUTDIR (atomically) and compile its C simulation."""
    config.check()
    check_interface(config)
    if lanes < 1:
        raise InputError(f"--lanes must be at least 1, got {lanes}")
    b = boards.get_board(board)
    clock = float(clock_mhz if clock_mhz is not None else b.default_clock_mhz)
    ws = Workspace(Path(outdir))
    try:
        t0 = time.perf_counter()
        for rel, text in render(config, lanes).items():
            (ws.path / rel).parent.mkdir(parents=True, exist_ok=True)
            (ws.path / rel).write_text(text)
        _copy_library(ws.path)
        meta = {"top": TOP, "entry": f"{TOP}_call", "config": config.to_dict(),
                "initial_state": [int(v) for v in state.flat()]}  # fmt: skip
        (ws.path / "hls" / "train.json").write_text(json.dumps(meta, indent=1) + "\n")
        ws.log_path("codegen").write_text(f"generated in {time.perf_counter() - t0:.2f} s\n")
        if csim:
            t0 = time.perf_counter()
            library = build_group([ws.path])
            (ws.path / "csim").mkdir()
            shutil.copyfile(library, ws.path / "csim" / "libaccel.so")
            ws.log_path("csim").write_text(f"compiled (or reused) {library} in {time.perf_counter() - t0:.1f} s\n")
        rep = report(config, b, lanes, clock, max_util)
        (ws.path / "report.json").write_text(json.dumps(rep, indent=1) + "\n")
        (ws.path / "report.md").write_text(report_markdown(rep))
        ws.record("train-build", "", {"csim": csim}, [])
        path = ws.commit()
    except BaseException:
        ws.discard()
        raise
    return TrainDesign(path, config, state, rep)


def design_from_data(modes_in, modes_out, ranks, classes: int, x: np.ndarray, y: np.ndarray, *,
                     widths: spec.Widths | None = None, seed: int = 0, max_batch: int = 4096,
                     calibration_samples: int = 64) -> tuple[spec.TrainConfig, spec.TrainState]:  # fmt: skip
    """A configuration calibrated on the first samples of (x, y) and its initial state."""
    params = spec.initial_parameters(modes_in, modes_out, ranks, classes, seed)
    n = min(calibration_samples, len(x))
    try:
        config = spec.calibrate(modes_in, modes_out, ranks, classes, params["cores"], params["head"], x[:n], y[:n],
                                widths or spec.Widths(), max_batch=max_batch)  # fmt: skip
        lfsr_seed = 0xACE1 ^ (seed * 0x9E3779B1 & 0xFFFFFFFF) or 0xACE1
        state = spec.quantize_state(config, params["cores"], params["tt_bias"], params["head"], params["head_bias"],
                                    lfsr_seed)  # fmt: skip
    except spec.TrainingError as exc:
        raise InputError(str(exc)) from None
    return config, state
