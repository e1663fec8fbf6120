"""The whole design around the kernels: AXI-Stream beats per frame bound the II; the shell
and port adapters are their own line, taken off the kernels' budget."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from accelgen import dse, ir
from accelgen.boards import get_board
from accelgen.errors import FitError
from accelgen.kernels import calibration, shell
from accelgen.plan import FoldingPlan, LayerFold

U8, S8 = ir.QType(8, False), ir.QType(8, True)


def mlp(n_in: int, hidden: int = 8, n_out: int = 4) -> ir.Graph:
    """x (n_in uint8) -> dense -> dense -> y (n_out uint8): a small all-hardware MLP."""
    ms = ir.MultiplyShift(np.array([3]), np.array([0]), 10, np.array([0]), np.array([255]), np.array([1]))
    ops = [
        ir.Dense("fc1", ("x",), ("h",), weights=np.zeros((hidden, n_in), np.int64), w_qtype=S8, requant=ms),
        ir.Dense("fc2", ("h",), ("y",), weights=np.zeros((n_out, hidden), np.int64), w_qtype=S8, requant=ms),
    ]
    shapes = {"x": (n_in,), "h": (hidden,), "y": (n_out,)}
    tensors = {n: ir.Tensor(n, (None, *s), "codes", U8) for n, s in shapes.items()}
    return ir.Graph("mlp", tensors, ops, ["x"], ["y"])


def test_beats_per_frame_written_out():
    iface = shell.interface(mlp(64), bus_bits=64)
    # 64 uint8 codes = 512 bits over a 64-bit bus: 8 codes per beat, 8 beats; 4 outputs fit one beat
    assert [(p.direction, p.elements, p.bits, p.lanes, p.beats) for p in iface.ports] == [
        ("in", 64, 8, 8, 8),
        ("out", 4, 8, 8, 1),
    ]
    assert iface.beats == 8
    assert shell.interface(mlp(64), bus_bits=128).beats == 4
    assert shell.interface(mlp(65), bus_bits=64).beats == 9  # a partial last beat is a beat


@pytest.mark.parametrize("board", ["zcu104", "pynq-z2", "ultra96v2"])
def test_mlp_512_bit_input_on_64_bit_bus_has_ii_at_least_8(board):
    e = dse.explore(mlp(64), get_board(board))
    assert e.interface.beats == 8
    assert e.ii_cycles >= 8
    assert e.bound.ii_cycles >= 8
    assert e.fps <= e.clock_mhz * 1e6 / 8


def test_interface_bound_lets_the_layers_fold_down():
    """With the ports at 8 beats, no layer needs to be faster: the plan at II 8 is no
    costlier than the fastest kernels, and every layer takes at most the interface's II."""
    e = dse.explore(mlp(64, hidden=16), get_board("zcu104"))
    assert e.ii_cycles == max(8, max(lp.cost.cycles for lp in e.layers))
    assert all(lp.cost.cycles <= e.ii_cycles for lp in e.layers)
    # fc1 at 64 x 16 MACs must do 1024 MACs in 8 cycles: 128 per cycle, no more
    fc1 = next(lp for lp in e.layers if lp.name == "fc1")
    assert fc1.fold.pe * fc1.fold.simd == 128


@pytest.mark.parametrize("n_in", [8, 64, 200, 1024])
def test_explorer_never_reports_an_ii_below_the_interface_beats(n_in):
    for board in ("pynq-z2", "zcu104"):
        for mode in ("min-ii", "given"):
            # given: the kernels faster than the ports (fc1 takes at most 16 cycles)
            fast = {"fc1": LayerFold(1, min(n_in, 128) if n_in != 200 else 100), "fc2": LayerFold(4, 8)}
            folding = FoldingPlan(fast) if mode == "given" else None
            e = dse.explore(mlp(n_in), get_board(board), folding=folding)
            beats = -(-n_in // 8)
            assert e.interface.beats == beats
            assert e.ii_cycles >= beats and e.latency_cycles >= beats


def test_target_fps_beyond_the_interface_is_refused():
    with pytest.raises(FitError, match="beats per frame"):
        dse.explore(mlp(64), get_board("zcu104"), target_fps=get_board("zcu104").default_clock_mhz * 1e6 / 7)


def test_shell_is_its_own_line_and_off_the_kernels_budget():
    board = get_board("pynq-z2")
    e = dse.explore(mlp(64), board)
    expected = (
        calibration.SHELL_FIXED["zynq7"]
        + calibration.SHELL_PER_PORT * 2
        + shell.adapters(shell.interface(mlp(64), 64))
        + calibration.PLUMBING_PER_LAYER * 2  # two dense layers, no window generator
    )
    assert e.overhead == expected and e.overhead.lut > 0
    full = board.budget(e.max_util)
    over, scale = e.overhead.as_dict(), calibration.KERNEL_SCALE
    # the kernels' budget is in the cost models' units: what the overhead leaves, over the scale
    assert all(e.budget[k] == int((full[k] - over[k]) / scale.get(k, 1.0) + 1e-9) for k in e.budget)
    kernels = e.resources.as_dict()
    assert e.whole_design.as_dict() == {k: -int(-kernels[k] * scale.get(k, 1.0) // 1) + over[k] for k in kernels}
    used = e.whole_design.as_dict()
    assert all(used[k] <= full[k] for k in e.budget)  # the whole design within max_util of the chip
    zu = dse.explore(mlp(64), get_board("zcu104"))
    assert zu.overhead.lut > e.overhead.lut  # the UltraScale+ shell has the HP-port upsizer


def test_shell_crowds_out_kernels_on_a_tiny_board():
    """A board whose budget the kernels alone would fit, but not with the shell, does not fit."""
    base = get_board("pynq-z2")
    e = dse.explore(mlp(64), base)
    need = e.resources.as_dict()
    tiny = {k: need[k] + (1 if need[k] else 0) for k in base.resources}
    tiny_board = dataclasses.replace(base, name="tiny", title="Tiny", resources=tiny)
    with pytest.raises(FitError):
        dse.explore(mlp(64), tiny_board, max_util=1.0)


def test_plan_records_the_bus_width():
    e = dse.explore(mlp(64), get_board("zcu104"))
    assert e.plan().meta["bus_bits"] == 64


def test_report_shows_the_shell_as_its_own_line():
    from accelgen import report

    e = dse.explore(mlp(64), get_board("pynq-z2"))
    r = report.build_report(e)
    t = r["totals"]
    assert t["shell"] == e.overhead.as_dict() and t["shell"]["lut"] > 0
    assert all(t["whole_design"][k] >= t["shell"][k] for k in ("lut", "ff", "dsp", "bram18"))
    assert t["whole_design"] == e.whole_design.as_dict()
    assert t["utilisation"]["lut"] == pytest.approx(t["whole_design"]["lut"] / t["available"]["lut"], abs=1e-4)
    assert t["interface"]["beats"] == 8 and t["interface"]["bus_bits"] == 64
    md = report.render_markdown(r)
    assert f"| lut | {t['lut']:,} | {t['shell']['lut']:,} | {t['whole_design']['lut']:,} |" in md
    assert "calibrated" in md
    assert "8 beats per frame" in md


def test_window_generators_and_layers_are_counted():
    ms = ir.MultiplyShift(np.array([3]), np.array([0]), 10, np.array([0]), np.array([255]), np.array([1]))
    ops = [
        ir.Conv("c3", ("x",), ("t",), weights=np.zeros((4, 4, 3, 3), np.int64), w_qtype=S8, requant=ms),
        ir.Conv("c1", ("t",), ("u",), weights=np.zeros((4, 4, 1, 1), np.int64), w_qtype=S8, requant=ms),
        ir.Reshape("flat", ("u",), ("y",)),
    ]
    shapes = {"x": (6, 6, 4), "t": (4, 4, 4), "u": (4, 4, 4), "y": (64,)}
    tensors = {n: ir.Tensor(n, (None, *s), "codes", U8, "NHWC" if len(s) == 3 else "") for n, s in shapes.items()}
    graph = ir.Graph("g", tensors, ops, ["x"], ["y"])
    assert shell.windows(graph) == 1  # the 1 x 1 convolution needs no window
    assert shell.stream_layers(graph) == 2  # the Reshape renames a stream
    iface = shell.interface(graph)
    expected = shell.overhead("zynq7", iface) + calibration.PLUMBING_PER_LAYER * 2
    expected = expected + ir_free_dsp(calibration.DSP_PER_WINDOW)
    assert shell.graph_overhead("zynq7", iface, graph) == expected


def ir_free_dsp(per_window: float):
    from accelgen.kernels.base import Resources

    return Resources(dsp=round(per_window))


def test_target_fps_plan_is_never_below_the_interface_beats():
    board = get_board("zcu104")
    rate = board.default_clock_mhz * 1e6 / 9  # 9 cycles per frame allowed, the ports need 8
    e = dse.explore(mlp(64), board, target_fps=rate)
    assert 8 <= e.ii_cycles <= 9 and e.fps >= rate


def test_committed_calibration_equals_the_fit():
    """calibration.py holds what `bench_calibration.py --fit` prints (the fit is reproducible)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import bench_calibration as bench

    rows = [bench.evaluate(d) for d in bench.DESIGNS if not d.held_out]
    assert bench.fit(rows) == bench.committed()
    assert {d.name for d in bench.DESIGNS if d.held_out} == {"LFC-W1A1", "CNV-W1A1"}
