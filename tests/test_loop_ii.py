"""The achieved II of every pipelined loop, from Vitis HLS reports of the shape the tool writes
(made here: the top's csynth.xml and a <module>_csynth.xml per module beside it, or one
csynth.xml listing every module under ModuleInformation), checked against the plan's II=1."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelgen import report as rep
from accelgen.boards import get_board
from accelgen.dse import explore
from accelgen.errors import InputError
from accelgen.pipeline import compile_model
from accelgen.vendor_reports import check_loop_ii, csynth_loops

CNN = Path(__file__).parent / "models" / "qdq_cnn_perchannel_residual.onnx"

TOP = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <ReportVersion><Version>2023.2</Version></ReportVersion>
  <UserAssignments><Part>xczu3eg-sbva484-1-i</Part><TopModelName>accel_top</TopModelName>
    <TargetClockPeriod>6.67</TargetClockPeriod></UserAssignments>
  <PerformanceEstimates>
    <SummaryOfTimingAnalysis><EstimatedClockPeriod>5.120</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency><Best-caseLatency>undef</Best-caseLatency><Worst-caseLatency>undef</Worst-caseLatency>
      <Interval-min>undef</Interval-min><Interval-max>undef</Interval-max></SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates><Resources><BRAM_18K>6</BRAM_18K><DSP>131</DSP><FF>7012</FF><LUT>12950</LUT><URAM>0</URAM></Resources>
  </AreaEstimates>
</profile>
"""


def module(name: str, loops: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <ReportVersion><Version>2023.2</Version></ReportVersion>
  <UserAssignments><Part>xczu3eg-sbva484-1-i</Part><TopModelName>{name}</TopModelName>
    <TargetClockPeriod>6.67</TargetClockPeriod></UserAssignments>
  <PerformanceEstimates>
    <SummaryOfOverallLatency><Best-caseLatency>undef</Best-caseLatency><Worst-caseLatency>undef</Worst-caseLatency>
    </SummaryOfOverallLatency>
    <SummaryOfLoopLatency>{loops}</SummaryOfLoopLatency>
  </PerformanceEstimates>
  <AreaEstimates><Resources><LUT>100</LUT></Resources></AreaEstimates>
</profile>
"""


def loop(name: str, ii: str, trip: str = "<TripCount>576</TripCount>", inner: str = "") -> str:
    return (f"<{name}><Name>{name}</Name>{trip}<Latency>undef</Latency><IterationLatency>3</IterationLatency>"
            f"<PipelineII>{ii}</PipelineII><PipelineDepth>3</PipelineDepth>{inner}</{name}>")  # fmt: skip


LAYERS = {"L1_conv_a": "conv:/a", "L11_conv_a": "conv:/a11", "L3_conv_conv2_Conv": "conv:/conv2/Conv"}


def write_reports(tmp_path: Path) -> list[Path]:
    d = tmp_path / "solution" / "syn" / "report"
    d.mkdir(parents=True)
    files = {
        "csynth.xml": TOP,
        # the reps loop is not pipelined (no II); the (pixel, tile) loop inside it runs at II 8, not 1
        "mvau_L3_conv_conv2_Conv_mvau_cfg_s_csynth.xml": module(
            "mvau_L3_conv_conv2_Conv_mvau_cfg_s",
            loop("mvau_samples", "undef", "<TripCount>undef</TripCount>", loop("mvau_loop", "8")),
        ),
        # a loop Vitis outlined into its own module, with a bounded trip count
        "sliding_window_L1_conv_a_swg_cfg_Pipeline_swg_emit_csynth.xml": module(
            "sliding_window_L1_conv_a_swg_cfg_Pipeline_swg_emit",
            loop("swg_emit", "1", "<TripCount><range><min>0</min><max>72</max></range></TripCount>"),
        ),
        "mvau_L11_conv_a_mvau_cfg_s_csynth.xml": module("mvau_L11_conv_a_mvau_cfg_s", loop("mvau_loop", "3")),
        "axis_read_axis_in0_read_cfg_s_csynth.xml": module("axis_read_axis_in0_read_cfg_s", loop("axis_read_words", "2")),
    }
    for name, text in files.items():
        (d / name).write_text(text)
    return [d / "csynth.xml", *sorted(p for p in d.glob("*_csynth.xml"))]


def test_loops_slower_than_planned_are_named_with_their_layer(tmp_path):
    reports = write_reports(tmp_path)
    loops = csynth_loops(reports[-1])  # one per-module file
    assert {(lp["module"], lp["loop"]) for lp in loops} == {("sliding_window_L1_conv_a_swg_cfg_Pipeline_swg_emit", "swg_emit")}
    assert loops[0]["ii"] == 1 and loops[0]["trip_count"] == 72
    result = check_loop_ii(reports, LAYERS)
    assert result["loops_checked"] == 4  # mvau_samples has no II: not a pipelined loop
    assert not result["ok"]
    slower = {(s["layer"], s["loop"]): (s["ii"], s["slowdown"]) for s in result["slower"]}
    assert slower == {
        ("conv:/conv2/Conv", "mvau_loop"): (8, 8.0),
        ("conv:/a11", "mvau_loop"): (3, 3.0),  # L11_..., not L1_...
        (None, "axis_read_words"): (2, 2.0),  # the stream adapters belong to no layer
    }
    assert [s["trip_count"] for s in result["slower"] if s["layer"] == "conv:/conv2/Conv"] == [576]


def test_one_csynth_with_module_information_and_all_loops_at_plan(tmp_path):
    xml = tmp_path / "csynth.xml"
    xml.write_text(f"""<?xml version="1.0"?>
<profile><ModuleInformation>
  <Module><Name>global_pool_L3_conv_conv2_Conv_pool_cfg_s</Name><PerformanceEstimates><SummaryOfLoopLatency>
    {loop("global_pool_accumulate", "1")}{loop("global_pool_emit", "1")}
  </SummaryOfLoopLatency></PerformanceEstimates></Module>
  <Module><Name>accel_top</Name><PerformanceEstimates><SummaryOfOverallLatency/></PerformanceEstimates></Module>
</ModuleInformation></profile>""")
    result = check_loop_ii([xml, xml], LAYERS)  # the same loops twice count once
    assert result == {"planned_ii": 1, "loops_checked": 2, "slower": [], "ok": True}
    bad = tmp_path / "bad_csynth.xml"
    bad.write_text("<profile>")
    with pytest.raises(InputError, match="bad_csynth.xml: cannot read it"):
        check_loop_ii([bad], LAYERS)


def test_the_report_shows_the_loops_slower_than_planned(tmp_path):
    reports = write_reports(tmp_path)
    estimate = explore(compile_model(CNN).graph, get_board("ultra96"))
    r = rep.build_report(estimate, synth=reports[0])
    design = {"layers": [{"ident": ident, "name": name} for ident, name in LAYERS.items()]}
    rep.add_loop_ii(r, reports[0], design)
    assert r["synth"]["loop_ii"]["loops_checked"] == 4 and len(r["synth"]["loop_ii"]["slower"]) == 3
    md = rep.render_markdown(r)
    assert "Pipelined loops: 4 checked against the planned II=1; 3 slower" in md
    assert "- `mvau_L3_conv_conv2_Conv_mvau_cfg_s` loop `mvau_loop` (layer conv:/conv2/Conv): II 8, 8x the plan" in md
