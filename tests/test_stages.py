"""The stage runner: order, logs, reuse by content key, skipped stages."""

from __future__ import annotations

import pytest

from accelgen.stages import BuildContext, Skipped, Stage, run_stages
from accelgen.workspace import Workspace


def _ctx(outdir):
    return BuildContext(model_path=outdir / "m.onnx", options=None, ws=Workspace(outdir))


def test_stages_run_in_order_with_logs_and_reuse(tmp_path):
    calls = []

    def make(ctx):
        calls.append("make")
        ctx.log.info("generating")
        (ctx.path / "hls").mkdir()
        (ctx.path / "hls" / "top.cpp").write_text("// top")
        return {"files": 1}

    def sim(ctx):
        calls.append("sim")
        (ctx.path / "csim").mkdir()
        (ctx.path / "csim" / "result.json").write_text("{}")
        return {"passed": True}

    def restore(ctx, result):
        ctx.results["restored"] = result

    stages = [
        Stage("codegen", make, outputs=("hls",)),
        Stage("csim", sim, outputs=("csim",), key=lambda ctx: (ctx.path / "hls" / "top.cpp").read_text(), restore=restore),
        Stage("synth", lambda ctx: Skipped("vitis_hls not on PATH")),
    ]
    out = tmp_path / "out"
    ctx = _ctx(out)
    events = []
    run_stages(ctx, stages, lambda *e: events.append(e[:2]))
    ctx.ws.commit()
    assert calls == ["make", "sim"]
    assert ctx.status == {"codegen": "done", "csim": "done", "synth": "skipped"}
    assert events[0] == ("codegen", "start") and events[-1] == ("synth", "skipped")
    assert "generating" in (out / "logs" / "codegen.log").read_text()
    assert "vitis_hls not on PATH" in (out / "logs" / "synth.log").read_text()

    ctx2 = _ctx(out)
    run_stages(ctx2, stages)
    assert calls == ["make", "sim", "make"]  # csim reused: same generated source
    assert ctx2.status["csim"] == "reused" and ctx2.results["restored"] == {"passed": True}
    assert (ctx2.path / "csim" / "result.json").exists()
    ctx2.ws.discard()


def test_failing_stage_propagates_and_log_is_closed(tmp_path):
    def boom(ctx):
        ctx.log.info("about to fail")
        raise RuntimeError("compiler exploded")

    ctx = _ctx(tmp_path / "out")
    with pytest.raises(RuntimeError, match="exploded"):
        run_stages(ctx, [Stage("codegen", boom)])
    assert "about to fail" in ctx.ws.log_path("codegen").read_text()
    ctx.ws.discard()
    assert not (tmp_path / "out").exists()
