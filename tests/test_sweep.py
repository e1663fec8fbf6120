"""`accelgen sweep`: rows agree with the explorer run directly, results are reused by
content key, a failing point leaves the others, the --json / CSV / plot contracts, bad
input and the message without Ray. One local Ray on 2 CPUs for the whole module."""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import logging
import sys
import uuid
from pathlib import Path

import onnx
import pytest

from accelgen import sweep
from accelgen.boards import get_board
from accelgen.cli import main
from accelgen.dse import explore
from accelgen.errors import InputError
from accelgen.pipeline import compile_model
from accelgen.render import sweep_figure

MODELS = Path(__file__).parent / "models"
MLP_A = MODELS / "qonnx_mlp_w2a2.onnx"
MLP_B = MODELS / "qdq_mlp_s8.onnx"
BOARDS = ("pynq-z2", "ultra96v2")
CLOCKS = (100.0, 200.0)
#: the columns the --json rows and sweep.csv promise (issue 17)
CONTRACT = ["model", "board", "clock_mhz", "status", "fps", "ii_cycles", "lut", "dsp", "bram18"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


def _sweep_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["sweep", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def first_sweep(tmp_path_factory):
    """One sweep through the command line: (exit code, stdout, stderr, OUTDIR); module
    scope has no capsys, so the streams are captured here."""
    outdir = tmp_path_factory.mktemp("sweep")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["sweep", str(MLP_A), str(MLP_B), "--boards", ",".join(BOARDS),
                     "--clocks", ",".join(f"{c:g}" for c in CLOCKS), "-o", str(outdir), "--json"])  # fmt: skip
    return code, out.getvalue(), err.getvalue(), outdir


# -- the rows against the explorer, called here on its own ------------------------------------


def test_rows_agree_with_the_explorer_run_directly(first_sweep):
    code, out, _, _ = first_sweep
    assert code == 0
    rows = json.loads(out)["rows"]
    expected = [(m.stem, b, c) for m in (MLP_A, MLP_B) for b in BOARDS for c in CLOCKS]
    assert [(r["model"], r["board"], r["clock_mhz"]) for r in rows] == expected
    graphs = {m.stem: compile_model(m).graph for m in (MLP_A, MLP_B)}
    for r in rows:
        est = explore(graphs[r["model"]], get_board(r["board"]), clock_mhz=r["clock_mhz"])
        whole = est.whole_design.as_dict()
        assert r["status"] == "ok"
        assert r["ii_cycles"] == est.ii_cycles
        assert r["fps"] == pytest.approx(r["clock_mhz"] * 1e6 / est.ii_cycles, rel=1e-6)
        assert (r["lut"], r["dsp"], r["bram18"]) == (whole["lut"], whole["dsp"], whole["bram18"])
    # the clock matters: at twice the clock the same plan runs twice as fast
    by = {(r["model"], r["board"], r["clock_mhz"]): r for r in rows}
    for m, b in {(r["model"], r["board"]) for r in rows}:
        assert by[m, b, 200.0]["fps"] == pytest.approx(2 * by[m, b, 100.0]["fps"], rel=1e-6)


def test_json_prints_one_object_with_the_rows(first_sweep):
    _, out, err, _ = first_sweep
    document = json.loads(out)  # the whole of stdout is one JSON document
    assert isinstance(document, dict) and len(document["rows"]) == 8
    for r in document["rows"]:
        assert set(CONTRACT) <= set(r)
        assert isinstance(r["fps"], float) and isinstance(r["ii_cycles"], int) and isinstance(r["lut"], int)
    assert "8/8" in err  # the progress bar went to stderr
    assert json.loads((first_sweep[3] / "sweep.json").read_text())["rows"] == document["rows"]


def test_csv_has_the_contract_columns_and_the_rows(first_sweep):
    _, out, _, outdir = first_sweep
    rows = json.loads(out)["rows"]
    with open(outdir / "sweep.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames[: len(CONTRACT)] == CONTRACT
        lines = list(reader)
    assert len(lines) == len(rows)
    for line, r in zip(lines, rows):
        assert (line["model"], line["board"], float(line["clock_mhz"]), line["status"]) == (
            r["model"], r["board"], r["clock_mhz"], r["status"])  # fmt: skip
        assert float(line["fps"]) == pytest.approx(r["fps"])
        assert [int(line[k]) for k in ("ii_cycles", "lut", "dsp", "bram18")] == [r[k] for k in
                                                                               ("ii_cycles", "lut", "dsp", "bram18")]  # fmt: skip


def _front_by_hand(points: list[tuple[float, float]]) -> set[tuple[float, float]]:
    """Points no other point dominates (cost <=, fps >=, one strictly), by pairwise comparison."""
    return {
        p for p in points
        if not any(q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1]) for q in points)
    }  # fmt: skip


def test_plot_written_with_the_pareto_front_per_board(first_sweep):
    _, out, _, outdir = first_sweep
    png = (outdir / "sweep.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    document = json.loads((outdir / "sweep.json").read_text())
    fig = sweep_figure(document)
    axes = fig.get_axes()
    assert len(axes) == len(BOARDS) * 2
    for ax, (board, res) in zip(axes, [(b, r) for b in BOARDS for r in ("lut", "dsp")]):
        mine = [(r[res], r["fps"]) for r in document["rows"] if r["board"] == board]
        plotted = {tuple(xy) for coll in ax.collections for xy in coll.get_offsets().tolist()}
        assert plotted == set(mine)
        (front_line,) = ax.get_lines()
        front = list(zip(front_line.get_xdata(), front_line.get_ydata()))
        assert set(front) == _front_by_hand(mine)
        assert [x for x, _ in front] == sorted(x for x, _ in front)


def test_pareto_front_drops_dominated_and_duplicate_points():
    pts = [(10, 5.0), (10, 7.0), (20, 7.0), (5, 1.0), (30, 9.0), (30, 9.0)]
    front = sweep.pareto_front(pts)
    assert [pts[i] for i in front] == [(5, 1.0), (10, 7.0), (30, 9.0)]


# -- resumability -------------------------------------------------------------------------


def _counting_evaluate(marker_dir: str, point, model_bytes, options, build_root):
    """The sweep's evaluation, leaving one marker file per run (in the Ray worker)."""
    Path(marker_dir, f"{point['model']}_{point['board']}_{point['clock_mhz']:g}_{uuid.uuid4().hex}").touch()
    return sweep.evaluate_point(point, model_bytes, options, build_root)


def _runs(marker_dir: Path) -> list[str]:
    return sorted(p.name.rsplit("_", 1)[0] for p in marker_dir.iterdir())


def test_rerun_reuses_every_point_and_new_model_bytes_invalidate(tmp_path, local_ray):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers need not import tests/
    markers = tmp_path / "markers"
    markers.mkdir()
    model_a = tmp_path / "mlp_a.onnx"
    model_a.write_bytes(MLP_A.read_bytes())
    options = sweep.SweepOptions()
    evaluate = functools.partial(_counting_evaluate, str(markers))

    def run():
        grid = sweep.make_grid([str(model_a), str(MLP_B)], ["pynq-z2"], [100.0, 150.0], options)
        return sweep.run_sweep(grid, tmp_path / "out", options, evaluate=evaluate)

    first = run()
    assert len(_runs(markers)) == 4 and not any(r["reused"] for r in first)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "points").iterdir()}
    second = run()
    assert len(_runs(markers)) == 4  # no point evaluated again
    assert all(r["reused"] for r in second)
    assert [{k: r[k] for k in CONTRACT} for r in second] == [{k: r[k] for k in CONTRACT} for r in first]
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "points").iterdir()} == stamps

    proto = onnx.load(model_a)
    proto.doc_string = "the same network, other bytes"
    onnx.save(proto, model_a)
    third = run()
    assert _runs(markers) == sorted(["mlp_a_pynq-z2_100", "mlp_a_pynq-z2_150"] * 2 + ["qdq_mlp_s8_pynq-z2_100",
                                                                                      "qdq_mlp_s8_pynq-z2_150"])  # fmt: skip
    assert [r["reused"] for r in third] == [False, False, True, True]
    assert [r["ii_cycles"] for r in third] == [r["ii_cycles"] for r in first]  # same network, same plan


def test_key_follows_content_board_clock_and_options():
    board = get_board("pynq-z2")
    base = sweep.point_key("a" * 64, board, 100.0, sweep.SweepOptions())
    assert base == sweep.point_key("a" * 64, board, 100.0, sweep.SweepOptions(max_util=0.8))  # the default, resolved
    others = [
        sweep.point_key("b" * 64, board, 100.0, sweep.SweepOptions()),
        sweep.point_key("a" * 64, get_board("ultra96v2"), 100.0, sweep.SweepOptions()),
        sweep.point_key("a" * 64, board, 125.0, sweep.SweepOptions()),
        sweep.point_key("a" * 64, board, 100.0, sweep.SweepOptions(max_util=0.5)),
        sweep.point_key("a" * 64, board, 100.0, sweep.SweepOptions(build=True)),
    ]
    assert len({base, *others}) == 6


# -- a failing point ------------------------------------------------------------------------


def _tiny_board(tmp_path: Path) -> Path:
    text = (Path(get_board("pynq-z2").source)).read_text()
    lines = []
    in_resources = False
    for line in text.splitlines():
        if line.strip().startswith("["):
            in_resources = line.strip() == "[resources]"
        key = line.split("=")[0].strip()
        if in_resources and key in ("lut", "ff", "dsp", "bram18", "lutram"):
            line = f"{key} = 40"
        if key == "name":
            line = 'name = "tiny"'
        if key == "aliases":
            line = "aliases = []"
        lines.append(line)
    path = tmp_path / "tiny.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_failing_point_is_reported_and_the_rest_go_on(tmp_path, capsys):
    tiny = _tiny_board(tmp_path)
    code, out, err = _sweep_cli(capsys, str(MLP_A), "--boards", f"pynq-z2,{tiny}", "--clocks", "100",
                                "-o", str(tmp_path / "out"))  # fmt: skip
    assert code == 1
    document = json.loads((tmp_path / "out" / "sweep.json").read_text())
    ok, failed = document["rows"]
    assert ok["status"] == "ok" and ok["board"] == "pynq-z2" and ok["fps"] > 0
    assert failed["status"] == "failed" and failed["board"] == str(tiny) and failed["fps"] is None
    assert "does not fit" in failed["error"]
    assert "does not fit" in out and "failed" in err  # the table's error line; the progress line
    assert document["failed"] == 1
    assert list(document["pareto"]) == ["pynq-z2"]
    # a failure is not kept: the rerun tries it again, reusing the point that worked
    rerun = sweep.run_sweep(sweep.make_grid([str(MLP_A)], ["pynq-z2", str(tiny)], [100.0], sweep.SweepOptions()),
                            tmp_path / "out", sweep.SweepOptions())  # fmt: skip
    assert [r["reused"] for r in rerun] == [True, False]


# -- bad input, no Ray ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, named",
    [
        ([str(MLP_A), "--boards", "pynq-z2,zybo9", "--clocks", "100"], "zybo9"),
        ([str(MLP_A), "--boards", "pynq-z2", "--clocks", "100,fast"], "'fast'"),
        ([str(MLP_A), "--boards", "pynq-z2", "--clocks", "100,-5"], "-5"),
        (["no/such/model.onnx", "--boards", "pynq-z2", "--clocks", "100"], "no/such/model.onnx"),
        ([str(MLP_A), "--boards", "pynq-z2", "--clocks", "100", "--max-util", "1.5"], "--max-util"),
        ([str(MLP_A), "--boards", ",", "--clocks", "100"], "--boards"),
    ],
)
def test_bad_input_exits_2_naming_it(capsys, tmp_path, argv, named):
    code, out, err = _sweep_cli(capsys, *argv, "-o", str(tmp_path / "out"))
    assert code == 2
    assert named in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_without_ray_says_to_install_the_extra(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, out, err = _sweep_cli(capsys, str(MLP_A), "--boards", "pynq-z2", "--clocks", "100", "-o",
                                str(tmp_path / "out"))  # fmt: skip
    assert code == 2
    assert "accelgen[sweep]" in err and "pip install" in err
    assert out == ""


def test_help_describes_the_sweep(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = capsys.readouterr().out
    for words in ("--boards", "--clocks", "--address", "--build", "sweep.csv", "accelgen[sweep]"):
        assert words in text


# -- --build: whole builds, C-simulation included ---------------------------------------------


@pytest.mark.csim
@pytest.mark.slow
def test_build_points_are_whole_builds_with_csim(tmp_path, capsys):
    code, out, _ = _sweep_cli(capsys, str(MLP_A), "--boards", "pynq-z2", "--clocks", "125", "--build",
                              "-o", str(tmp_path / "out"), "--json")  # fmt: skip
    assert code == 0
    (row,) = json.loads(out)["rows"]
    assert row["status"] == "ok" and row["csim"].startswith("passed")
    built = Path(row["outdir"])
    assert built.parent == (tmp_path / "out" / "builds").resolve()
    report = json.loads((built / "report.json").read_text())
    assert report["csim"]["passed"] is True and report["csim"]["mismatches"] == 0
    assert report["clock_mhz"] == 125.0 and report["board"] == "pynq-z2"
    assert (built / "csim" / "libaccel.so").is_file() and (built / "hls").is_dir()
    est = explore(compile_model(MLP_A).graph, get_board("pynq-z2"), clock_mhz=125.0)
    whole = est.whole_design.as_dict()
    assert (row["ii_cycles"], row["lut"], row["dsp"], row["bram18"]) == (est.ii_cycles, whole["lut"], whole["dsp"],
                                                                         whole["bram18"])  # fmt: skip


def test_an_address_nobody_answers_exits_2_at_once():
    import socket
    import types

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    calls = []
    fake_ray = types.SimpleNamespace(is_initialized=lambda: False, init=lambda **kw: calls.append(kw))
    with pytest.raises(InputError, match=f"--address 127.0.0.1:{port}"):
        sweep.start_ray(fake_ray, f"127.0.0.1:{port}")
    assert calls == []  # refused before Ray's minutes of retries
