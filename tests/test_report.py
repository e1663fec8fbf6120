"""report.json (DESIGN.md section 7), report.md, report.png, and a Vitis csynth.xml beside the estimates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelgen import report as rep
from accelgen.boards import get_board
from accelgen.cli import main
from accelgen.dse import explore
from accelgen.errors import InputError
from accelgen.pipeline import compile_model

MODELS = Path(__file__).parent / "models"
CNN = MODELS / "qdq_cnn_perchannel_residual.onnx"

CSYNTH = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <ReportVersion><Version>2023.2</Version></ReportVersion>
  <UserAssignments>
    <Part>xczu3eg-sbva484-1-i</Part>
    <TopModelName>accel_top</TopModelName>
    <TargetClockPeriod>6.67</TargetClockPeriod>
  </UserAssignments>
  <PerformanceEstimates>
    <SummaryOfTimingAnalysis><EstimatedClockPeriod>5.120</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency>
      <Best-caseLatency>1490</Best-caseLatency>
      <Worst-caseLatency>1602</Worst-caseLatency>
      <Interval-min>590</Interval-min>
      <Interval-max>601</Interval-max>
    </SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources><BRAM_18K>6</BRAM_18K><DSP>131</DSP><FF>7012</FF><LUT>12950</LUT><URAM>0</URAM></Resources>
    <AvailableResources><BRAM_18K>432</BRAM_18K><DSP>360</DSP><FF>141120</FF><LUT>70560</LUT><URAM>0</URAM>
    </AvailableResources>
  </AreaEstimates>
</profile>
"""


@pytest.fixture(scope="module")
def estimate():
    return explore(compile_model(CNN).graph, get_board("ultra96"))


def test_report_json_has_the_design_fields(estimate):
    r = rep.build_report(estimate)
    for key in ("model", "board", "clock_mhz", "layers", "totals", "bound", "csim", "synth"):
        assert key in r
    assert r["model"] == "qdq_cnn_perchannel_residual" and r["board"] == "ultra96v2" and r["clock_mhz"] == 150
    assert r["estimate"] is True and "estimate" in r["estimate_source"]
    assert r["csim"] is None and r["synth"] is None
    for layer in r["layers"]:
        for key in ("name", "op", "in_shape", "out_shape", "w_bits", "a_bits", "pe", "simd", "cycles", "dsp",
                    "bram18", "lut"):  # fmt: skip
            assert key in layer
    conv1 = r["layers"][0]
    assert (conv1["op"], conv1["in_shape"], conv1["out_shape"], conv1["w_bits"], conv1["a_bits"]) == (
        "Conv", [8, 8, 1], [8, 8, 16], 8, 8)  # fmt: skip
    # where each multiply-shift requantizer's product is built, as planned; absent for layers without one
    for layer, lp in zip(r["layers"], estimate.layers):
        assert layer.get("requant_product") == (lp.fold.requant if "requant" in lp.layer.legal else None)
    assert any("requant_product" in layer for layer in r["layers"])
    assert any("requant_product" not in layer for layer in r["layers"])
    assert "| pixels | requant product |" in rep.render_markdown(r)
    t = r["totals"]
    for key in ("ii_cycles", "latency_cycles", "fps", "latency_us", "dsp", "bram18", "lut", "ff", "utilisation"):
        assert key in t
    for key in ("dsp", "bram18", "lut", "ff"):
        assert t[key] == sum(layer[key] for layer in r["layers"])
    assert t["ii_cycles"] == max(layer["cycles"] for layer in r["layers"])
    assert t["fps"] == pytest.approx(150e6 / t["ii_cycles"], rel=1e-6)
    assert t["latency_us"] == pytest.approx(t["latency_cycles"] / 150, rel=1e-4)
    # utilisation is of the whole design: the kernels plus the shell and plumbing line
    assert t["utilisation"]["dsp"] == pytest.approx(t["whole_design"]["dsp"] / 360, abs=1e-4)
    assert t["whole_design"]["dsp"] == t["dsp"] + t["shell"]["dsp"]  # DSPs are not scaled
    assert t["latency_cycles"] >= t["ii_cycles"]
    (bottleneck,) = [la for la in r["layers"] if la["bottleneck"]]
    assert bottleneck["cycles"] == t["ii_cycles"] and r["bottleneck"] == bottleneck["name"]
    assert r["bound"]["ii_cycles"] <= t["ii_cycles"] and "gap" in r["bound"]
    json.dumps(r)  # serialisable


def test_csynth_parsed_and_shown_beside_the_estimates(estimate, tmp_path):
    xml = tmp_path / "csynth.xml"
    xml.write_text(CSYNTH)
    s = rep.parse_csynth(xml)
    assert s["top"] == "accel_top" and s["part"] == "xczu3eg-sbva484-1-i"
    assert s["target_clock_ns"] == 6.67 and s["estimated_clock_ns"] == 5.12
    assert s["latency_cycles"] == {"best": 1490, "worst": 1602} and s["ii_cycles"] == {"min": 590, "max": 601}
    assert s["resources"] == {"bram18": 6, "dsp": 131, "ff": 7012, "lut": 12950, "uram": 0}
    assert s["available"]["lut"] == 70560
    r = rep.build_report(estimate, synth=xml)
    compare = r["synth"]["compare"]
    assert compare["dsp"] == {"estimate": r["totals"]["dsp"], "synthesis": 131}
    assert compare["ii_cycles"] == {"estimate": r["totals"]["ii_cycles"], "synthesis": 601}
    assert compare["latency_cycles"]["synthesis"] == 1602
    md = rep.render_markdown(r)
    assert "## Estimate and synthesis" in md
    section = md.split("## Estimate and synthesis")[1]
    row = next(line for line in section.splitlines() if line.startswith("| dsp |"))
    assert f"| {r['totals']['dsp']} | 131 |" in row
    assert "accel_top" in md


def test_csynth_errors_and_old_dsp_name(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<profile><oops>")
    with pytest.raises(InputError, match="bad.xml"):
        rep.parse_csynth(bad)
    other = tmp_path / "other.xml"
    other.write_text("<profile><Nothing/></profile>")
    with pytest.raises(InputError, match="not a csynth.xml"):
        rep.parse_csynth(other)
    old = tmp_path / "old.xml"  # older Vivado HLS reports name the DSPs DSP48E; latencies may be undef
    old.write_text(CSYNTH.replace("<DSP>131</DSP>", "<DSP48E>17</DSP48E>").replace("1602", "undef"))
    s = rep.parse_csynth(old)
    assert s["resources"]["dsp"] == 17 and s["latency_cycles"]["worst"] is None


def test_csim_section_is_optional_and_checked(estimate):
    r = rep.build_report(estimate, csim={"passed": True, "vectors": 450, "mismatches": 0})
    assert r["csim"] == {"passed": True, "vectors": 450, "mismatches": 0}
    assert "## C simulation" in rep.render_markdown(r) and "450 vectors" in rep.render_markdown(r)
    with pytest.raises(ValueError, match="mismatches"):
        rep.build_report(estimate, csim={"passed": True, "vectors": 1})


def test_markdown_names_bottleneck_and_utilisation(estimate):
    r = rep.build_report(estimate)
    md = rep.render_markdown(r)
    assert "**estimates**" in md
    assert f"`{r['bottleneck']}`" in md and "(bottleneck)" in md
    dsp_row = next(line for line in md.splitlines() if line.startswith("| dsp |"))
    # used, the kernels' budget (80% less the shell and plumbing), available
    assert f"| {r['totals']['dsp']} | {288 - r['totals']['shell']['dsp']} | 360 |" in dsp_row
    assert md.count("\n| ") >= len(r["layers"]) + 10


def test_png_is_a_deterministic_png(estimate):
    r = rep.build_report(estimate)
    a, b = rep.render_png(r), rep.render_png(r)
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == b and len(a) > 10_000


def test_dse_outdir_refuses_a_foreign_directory(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["dse", str(CNN), "--board", "ultra96", "-o", str(foreign)]) == 2
    assert "not an accelgen build" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = tmp_path / "out"
    assert main(["dse", str(CNN), "--board", "ultra96", "-o", str(out)]) == 0
    assert main(["dse", str(CNN), "--board", "pynq-z2", "-o", str(out)]) == 0  # replaces its own output
    assert json.loads((out / "report.json").read_text())["board"] == "pynq-z2"
    assert json.loads((out / "folding.json").read_text())["board"] == "pynq-z2"


def test_png_lower_bound_drawn_visibly_over_the_ii_line(estimate):
    r = rep.build_report(estimate)
    ax = rep.report_figure(r).axes[0]
    ii = next(line for line in ax.get_lines() if line.get_label().startswith("II "))
    bound = next(line for line in ax.get_lines() if line.get_label().startswith("lower bound"))
    assert ii.get_ydata()[0] == r["totals"]["ii_cycles"] and bound.get_ydata()[0] == r["bound"]["ii_cycles"]
    # drawn above the II line, thinner (the II line shows around it) and in another style and colour
    assert bound.get_zorder() > ii.get_zorder()
    assert bound.get_linewidth() < ii.get_linewidth()
    assert bound.get_linestyle() != ii.get_linestyle() and bound.get_color() != ii.get_color()
    # both above the bars
    assert min(line.get_zorder() for line in (ii, bound)) > max(p.get_zorder() for p in ax.patches)


def test_png_resource_panels_share_the_board_as_denominator(estimate):
    r = rep.build_report(estimate)
    per_layer, totals = rep.report_figure(r).axes[1:]
    assert per_layer.get_ylabel() == totals.get_xlabel() == "% of Ultra96-V2 (estimate)"
    available = r["totals"]["available"]
    lut = next(c for c in per_layer.containers if c.get_label() == "lut")
    heights = [bar.get_height() for bar in lut]
    assert heights == pytest.approx([100.0 * la["lut"] / available["lut"] for la in r["layers"]])
    widths = {label.get_text(): bar.get_width() for label, bar in zip(totals.get_yticklabels(), totals.patches)}
    assert widths["lut"] == pytest.approx(100.0 * r["totals"]["lut"] / available["lut"])
