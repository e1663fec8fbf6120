"""The whole design around the kernels: AXI-Stream beats per frame bound the II; the shell
and the stream plumbing are their own line, taken off the kernels' budget."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from accelgen import dse, ir
from accelgen.boards import get_board
from accelgen.errors import FitError
from accelgen.kernels import calibration, hw, shell
from accelgen.kernels.base import Resources
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
    folds = {lp.name: lp.fold for lp in e.layers}
    expected = (
        calibration.SHELL_FIXED["zynq7"]
        + calibration.SHELL_PER_PORT * 2
        + shell.stream_plumbing(mlp(64), folds, 64)  # no window generator
    )
    assert e.overhead == expected and e.overhead.lut > calibration.SHELL_FIXED["zynq7"].lut
    full = board.budget(e.max_util)
    over, scale = e.overhead.as_dict(), calibration.KERNEL_SCALE
    # the search reserves the fully folded plan's plumbing: the kernels' budget is what that and
    # the shell leave, over the scale (in the cost models' units)
    reserved = (shell.overhead("zynq7", e.interface, shell.stream_plumbing(mlp(64), None, 64))).as_dict()
    assert all(e.budget[k] == int((full[k] - reserved[k]) / scale.get(k, 1.0) + 1e-9) for k in e.budget)
    kernels = e.resources.as_dict()
    assert e.whole_design.as_dict() == {k: -int(-kernels[k] * scale.get(k, 1.0) // 1) + over[k] for k in kernels}
    used = e.whole_design.as_dict()
    assert all(used[k] <= full[k] for k in e.budget)  # the whole design within max_util of the chip
    zu = dse.explore(mlp(64), get_board("zcu104"))
    assert zu.overhead.lut > e.overhead.lut  # the UltraScale+ shell has the HP-port upsizer


def test_stream_plumbing_by_hand():
    """mlp(64) at fc1 (pe 2, simd 8), fc2 (pe 4, simd 4) on a 64-bit bus."""
    from accelgen.kernels import hw, plumbing
    from accelgen.kernels.base import Resources

    graph = mlp(64)
    folds = {"fc1": LayerFold(2, 8), "fc2": LayerFold(4, 4)}
    p = plumbing.plumbing(graph, shell_specs(graph), folds, 64)
    # x: 8 codes per beat are fc1's 8-lane words: axis_read alone (64-bit fields), no converter;
    # h: fc1 writes 2 lanes (16 bits), fc2 reads 4 (32 bits): a gearbox reading the 16-bit stream;
    # y: fc2's 4 lanes, 4 codes in a beat of 8 fields: a gearbox 32 -> 64 and the axis_write
    assert p.reads == ((64, 64),) and p.writes == ((64, 64),) and p.duplicates == ()
    assert sorted(p.gearboxes) == [(16, 32), (32, 64)]
    assert sorted((f.width, f.depth) for f in p.fifos) == [(16, 2), (32, 2), (64, 2)]
    # by hand: four HLS processes (64 + 64 each); both gearboxes widen by 2 (streams.h's
    # gearbox_widen: each input word into one of two slots, a keep-or-take LUT per output bit,
    # the output register): 16 -> 32: 32 LUTs + two 6-bit counters, 32 + 12 FFs; 32 -> 64: 64 +
    # two 7-bit counters, 64 + 14; axis_read: a 64-bit field register; axis_write: the 64-bit beat
    # and TLAST; FIFOs of depth 2: one SRL per bit plus two 2-bit counters
    assert hw.gearbox(16, 32) == Resources(lut=44, ff=44) and hw.gearbox(32, 64) == Resources(lut=78, ff=78)
    # narrowing by 4 picks one of 4 slices (one LUT6 per output bit) and holds the input word
    assert hw.gearbox(64, 16) == Resources(lut=16 + 14, ff=80 + 14)
    # 24 -> 16 bits is neither: the general form, a 40-bit buffer and one shift stage (24 // 16 = 1)
    assert hw.gearbox(24, 16) == Resources(lut=40 + 12, ff=40 + 12)
    fifo_lut = (16 + 4) + (32 + 4) + (64 + 4)
    lut = 4 * 64 + 44 + 78 + fifo_lut
    ff = 4 * 64 + 44 + 78 + 64 + 65 + fifo_lut
    assert p.resources() == Resources(lut=lut, ff=ff, lutram=16 + 32 + 64)
    # the explorer's overhead for this plan is the shell plus exactly that
    e = dse.explore(graph, get_board("pynq-z2"), folding=FoldingPlan(folds))
    assert e.overhead == calibration.SHELL_FIXED["zynq7"] + calibration.SHELL_PER_PORT * 2 + p.resources()


def shell_specs(graph):
    from accelgen.kernels.streams import layer_specs

    return layer_specs(graph)


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


def test_window_generators_are_counted_and_reshapes_cost_no_plumbing():
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
    iface = shell.interface(graph)
    plumb = shell.stream_plumbing(graph, None, iface.bus_bits)
    expected = shell.overhead("zynq7", iface, plumb) + ir_free_dsp(calibration.DSP_PER_WINDOW)
    assert shell.graph_overhead("zynq7", iface, graph) == expected
    # the Reshape renames a stream: no plumbing kernel between the two convolutions (pe = simd = 1)
    from accelgen.kernels import plumbing

    p = plumbing.plumbing(graph, shell_specs(graph), {}, iface.bus_bits)
    # the ports: 8 codes per 64-bit beat, read whole into 64-bit fields, converted to 1-lane words
    # and back
    assert p.duplicates == () and p.reads == ((64, 64),) and p.writes == ((64, 64),)
    assert p.gearboxes == ((64, 8), (8, 64))


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
    # BNN-PYNQ's LFC and CNV stay out of the fit: every variant with published figures is held out
    held_out = {d.name for d in bench.DESIGNS if d.held_out}
    assert held_out == {"LFC-W1A1", "LFC-W1A2", "CNV-W1A1", "CNV-W1A2", "CNV-W2A2"}
    assert not any(d.name.startswith(("LFC", "CNV")) for d in bench.DESIGNS if not d.held_out)


def test_every_calibration_design_names_its_sources():
    """Each published figure is traceable: repository, file and a full commit for every design."""
    import re
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import bench_calibration as bench

    for d in bench.DESIGNS:
        assert d.sources, d.name
        for src in d.sources:
            assert "/" in src.repo and src.path and re.fullmatch(r"[0-9a-f]{40}", src.commit), (d.name, src)
        assert set(d.published) == set(bench.KEYS) and all(v >= 0 for v in d.published.values())
    # the fit has data: at least two in-sample designs, none of them BNN-PYNQ's
    assert sum(not d.held_out for d in bench.DESIGNS) >= 2


def test_wide_shallow_memories_are_block_ram():
    """The memory policy the published syntheses show: FINN's UNSW-NB15 MLP keeps 60- and 64-deep
    weight memories of 128 to 1280 bits in block RAM; 32 deep or 1024 bits at most stays in LUTs."""
    assert hw.rom(80, 60) == Resources(bram18=3)  # 80 bits: three 36-bit columns of a 512 x 36 block
    assert hw.rom(128, 64) == Resources(bram18=4)
    assert hw.rom(64, 32) == Resources(lut=64)  # 32 deep: LUT ROM, one LUT per bit
    assert hw.rom(16, 64) == Resources(lut=16)  # 1024 bits: LUT ROM
    assert hw.ram(36, 33).bram18 == 1 and hw.ram(36, 32).bram18 == 0
