"""The unrolled RTL generator without simulators: arithmetic of the netlist, fit check, output files.

The netlist each layer module is rendered from is evaluated here in numpy, signal by
signal, with the meaning each Verilog construct in templates/rtl/layer.v.j2 has, and
compared with the golden interpreter on the digits test split and on random networks
(including falling thresholds and multiply-shift with a negative direction, which the
fixtures do not exercise). The cocotb tests then show the Verilog means the same.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from accelgen import golden, ir
from accelgen.errors import InputError
from accelgen.pipeline import compile_model
from accelgen.rtl import check_fits, describe, generate, random_mlp
from accelgen.rtl.core import core_to_json, extract_core, graph_from_json
from accelgen.rtl.estimate import COEFFICIENTS, FEATURES
from accelgen.rtl.names import identifier
from accelgen.rtl.netlist import register_units, signed_digits, thermometer_to_binary
from tests.data import digits_split

MODELS = Path(__file__).parent / "models"
FIXTURES = ["qonnx_mlp_w2a2", "qonnx_mlp_w1a1", "qonnx_mlp_w4a4", "qonnx_mlp_w4a4_po2"]


# -- a numpy reading of the netlist -------------------------------------------------------------


def _mask(width: int) -> int:
    return (1 << width) - 1


def eval_layer(layer: dict, x: np.ndarray) -> np.ndarray:
    """(N, in_size) unsigned words -> (N, out_size), one signal at a time."""
    v: dict[str, np.ndarray] = {}
    for s in layer["signals"]:
        k, w = s["kind"], s["width"]
        if k == "input":
            r = x[:, s["index"]]
        elif k == "not":
            r = ~v[s["src"]] & _mask(w)
        elif k == "add":
            r = sum(v[o["name"]] << o["shift"] for o in s["operands"]) & _mask(w)
        elif k == "copy":
            r = v[s["src"]]
        elif k == "cmp":
            r = (v[s["src"]] >= s["value"]) if s["op"] == "ge" else (v[s["src"]] <= s["value"])
            r = r.astype(np.int64)
        elif k == "count":
            r = np.zeros(len(x), dtype=np.int64)
            for bit, terms in enumerate(s["terms"]):
                if terms is True or terms is False:
                    r |= int(terms) << bit
                    continue
                on = np.zeros(len(x), dtype=bool)
                for term in terms:
                    on |= np.all([v[t[1:]] == 0 if t.startswith("~") else v[t] == 1 for t in term], axis=0)
                r |= on.astype(np.int64) << bit
        elif k == "const":
            r = np.full(len(x), s["value"], dtype=np.int64)
        elif k == "offset":
            r = ((v[s["src"]] << s["src_shift"]) + s["offset"]) & _mask(w)
        elif k == "clip":
            q = (v[s["src"]] >> s["lsb"]) & _mask(s["q_width"])
            if s["lo"] is not None:
                q = np.maximum(q, s["lo"])
            if s["hi"] is not None:
                q = np.minimum(q, s["hi"])
            r = (q + s["add"]) & _mask(w)
        else:
            raise AssertionError(f"unknown signal kind {k}")
        v[s["name"]] = np.asarray(r, dtype=np.int64)
    return np.stack([v[o] for o in layer["outputs"]], axis=1)


def eval_design(design: dict, codes: np.ndarray) -> np.ndarray:
    """Input codes -> output codes through the core's lane conversions and every layer."""
    pin, pout = design["input"], design["output"]
    if pin["bipolar"]:
        u = (codes > 0).astype(np.int64)
    else:
        u = (codes + pin["elements"][0]["add"]) & _mask(pin["bits"])
    for layer in design["layers"]:
        u = eval_layer(layer, u)
    adds = np.array([e["add"] for e in pout["elements"]])
    code = ((u << pout["shift"]) + adds) & _mask(pout["code_bits"])
    if pout["signed"]:
        code = np.where(code >> (pout["code_bits"] - 1), code - (1 << pout["code_bits"]), code)
    return code


def core_io(graph: ir.Graph, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The core's input codes and golden output for the model's float input ``x``."""
    core = extract_core(graph)
    env = golden.run(graph, x, keep=True)
    return env[core.input.name].reshape(len(x), -1), env[core.output.name].reshape(len(x), -1)


# -- arithmetic ---------------------------------------------------------------------------------


def test_signed_digits_sum_and_length():
    for c in range(-600, 601):
        digits = signed_digits(c)
        assert sum(d << k for k, d in digits) == c
        assert len(digits) <= bin(abs(c)).count("1")
        assert len({k for k, _ in digits}) == len(digits)
    assert signed_digits(7) == [(0, -1), (3, 1)]  # 8 - 1 beats 4 + 2 + 1
    assert signed_digits(5) == [(0, 1), (2, 1)]


@pytest.mark.parametrize("levels", range(1, 16))
def test_thermometer_to_binary_counts(levels):
    rng = np.random.default_rng(levels)
    bits = levels.bit_length()
    for _ in range(20):
        # a thermometer code: leading constant-true flags, live comparators, constant-false tail
        n_true = rng.integers(0, levels + 1)
        n_false = rng.integers(0, levels - n_true + 1)
        flags = [True] * n_true + [f"t{j}" for j in range(levels - n_true - n_false)] + [False] * n_false
        terms = thermometer_to_binary(flags, bits)
        live = [f for f in flags if isinstance(f, str)]
        for k in range(len(live) + 1):  # the first k live comparators fire
            value = {f: (1 if i < k else 0) for i, f in enumerate(live)}
            got = 0
            for bit, t in enumerate(terms):
                on = (
                    t
                    if isinstance(t, bool)
                    else any(all((1 - value[x[1:]]) if x[0] == "~" else value[x] for x in term) for term in t)
                )
                got |= int(on) << bit
            assert got == n_true + k


def test_register_units_split_evenly():
    assert register_units(7, 1) == {7}
    assert register_units(7, 2) == {4, 7}
    assert register_units(7, 3) == {3, 5, 7}
    assert register_units(3, 9) == {1, 2, 3}  # at most one register per unit
    assert register_units(5, 0) == set()


@pytest.mark.parametrize("name", FIXTURES)
def test_netlist_equals_golden_on_digits(name):
    graph = compile_model(MODELS / f"{name}.onnx").graph
    x_codes, want = core_io(graph, digits_split()[2])
    for levels in (1, 2):
        design = describe(graph, pipeline_levels=levels)
        np.testing.assert_array_equal(eval_design(design, x_codes), want)


def _falling(graph: ir.Graph) -> ir.Graph:
    """The same network with every hidden requantizer falling (direction -1) in the accumulator."""
    ops = []
    for op in graph.ops:
        if isinstance(op, ir.Dense) and isinstance(op.requant, ir.Thresholds):
            th = op.requant
            op = op.replace(weights=-op.weights, requant=dataclasses.replace(th, direction=-th.direction))
        ops.append(op)
    return graph.copy(ops=ops)


def _multiply_shift_last(graph: ir.Graph, direction: int) -> ir.Graph:
    """Replace the raw accumulator out of the last layer by a 4-bit signed multiply-shift."""
    last = graph.ops[-1]
    n = last.weights.shape[0]
    rq = ir.MultiplyShift(multiplier=np.arange(5, 5 + n, dtype=np.int64) * 37, offset=np.arange(n, dtype=np.int64) * 301 - 900,
                          shift=9, lo=np.full(n, -8), hi=np.full(n, 7), direction=np.full(n, direction))  # fmt: skip
    out = last.outputs[0]
    tensors = dict(graph.tensors)
    tensors[out] = ir.Tensor(out, tensors[out].shape, "codes", ir.QType(4, True))
    g = graph.copy(ops=graph.ops[:-1] + [last.replace(requant=rq)], tensors=tensors)
    ir.verify(g, lowered=True)
    return g


@pytest.mark.parametrize("variant", ["ternary", "bipolar", "3bit", "falling", "ms_up", "ms_down"])
def test_netlist_equals_golden_on_random_networks(variant):
    w, a = {"ternary": (2, 2), "bipolar": (2, 1), "3bit": (3, 3)}.get(variant, (3, 2))
    graph = random_mlp((12, 24, 16, 6), w_bits=w, act_bits=a, seed=3)
    if variant == "falling":
        graph = _falling(graph)
    elif variant.startswith("ms"):
        graph = _multiply_shift_last(graph, 1 if variant == "ms_up" else -1)
    x = np.random.default_rng(0).integers(0, 256, (400, 12))
    want = golden.run(graph, {"x": x})[graph.outputs[0]]
    for levels in (0, 1, 3):
        design = describe(graph, pipeline_levels=levels)
        np.testing.assert_array_equal(eval_design(design, x), want)


# -- fit check ----------------------------------------------------------------------------------


def test_fixtures_fit():
    for name in FIXTURES:
        check_fits(compile_model(MODELS / f"{name}.onnx").graph)


def test_wide_weights_are_refused_with_the_other_architecture():
    graph = compile_model(MODELS / "qdq_mlp_s8.onnx").graph
    with pytest.raises(InputError) as err:
        check_fits(graph)
    msg = str(err.value)
    assert "8-bit weights" in msg and "at most 4 bits" in msg
    assert "--arch dataflow" in msg
    assert "fc1" in msg  # names the layer


def test_cnn_is_refused():
    graph = compile_model(MODELS / "qonnx_cnn_w4a8.onnx").graph
    with pytest.raises(InputError) as err:
        check_fits(graph)
    assert "Conv" in str(err.value) and "--arch dataflow" in str(err.value)


def test_wide_hidden_activations_are_refused():
    graph = random_mlp((8, 8, 4), w_bits=2, act_bits=6)
    with pytest.raises(InputError, match="6-bit hidden activations"):
        check_fits(graph)


def test_too_large_for_the_budget():
    graph = compile_model(MODELS / "qonnx_mlp_w2a2.onnx").graph
    with pytest.raises(InputError, match=r"needs about [\d,]+ LUTs, more than the 1,000"):
        check_fits(graph, max_luts=1000)


def test_bad_pipeline_levels():
    with pytest.raises(InputError, match="pipeline_levels"):
        describe(random_mlp((8, 8, 4)), pipeline_levels=[1])


# -- files ----------------------------------------------------------------------------------------


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_output_is_deterministic_and_atomic(tmp_path):
    graph = compile_model(MODELS / "qonnx_mlp_w2a2.onnx").graph
    x_codes, _ = core_io(graph, digits_split()[2][:20])
    a = generate(graph, tmp_path / "a", x_codes=x_codes)
    b = generate(graph, tmp_path / "b", x_codes=x_codes)
    assert _tree(a) == _tree(b)
    (a / "stale.txt").write_text("left over from a previous build")
    generate(graph, a, x_codes=x_codes)
    assert not (a / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temporary directories left
    files = _tree(a)
    for rel in ("design.json", "core.json", "Makefile", "README.md", "tb/run.py", "tb/test_accel.py",
                "synth/synth.ys", "tb/vectors/x_codes.npy", "tb/vectors/y_expected.npy"):  # fmt: skip
        assert rel in files, rel
    design = json.loads(files["design.json"])
    assert design["latency_cycles"] == 3 and design["ii_cycles"] == 1
    # the core's sources, and the board's: the core's plus the AXI wrapper around it
    assert sorted(design["board"]["files"]) == sorted(f for f in files if f.startswith("rtl/"))
    assert set(design["files"]) == set(design["board"]["files"]) - {f"rtl/{design['board']['top']}.v"}


def test_model_names_never_reach_verilog(tmp_path):
    evil = "evil */ module x; `define Y \n endmodule // name"
    graph = random_mlp((6, 5, 3), name=evil)
    out = generate(graph, tmp_path / "d")
    top = json.loads((out / "design.json").read_text())["top"]
    assert top == identifier(f"accel_{evil}")
    assert top.replace("_", "").isalnum()
    for v in (out / "rtl").glob("*.v"):
        text = v.read_text()
        assert "evil */" not in text and "`define Y" not in text and "module x;" not in text
    assert identifier("module") == "module_m"
    assert identifier("3d conv") == "m_3d_conv"
    assert identifier("") == "m"


def test_core_json_round_trip():
    graph = compile_model(MODELS / "qonnx_mlp_w2a2.onnx").graph
    rebuilt = graph_from_json(json.loads(json.dumps(core_to_json(extract_core(graph)))))
    x_codes, want = core_io(graph, digits_split()[2][:50])
    np.testing.assert_array_equal(golden.run(rebuilt, {"t0": x_codes})["t3"], want)


def test_estimate_is_a_pure_function_of_the_netlist():
    graph = random_mlp((16, 32, 5), seed=1)
    a, b = describe(graph)["estimate"], describe(graph)["estimate"]
    assert a == b and a["dsp"] == 0
    assert set(a["features"]) == set(FEATURES) - {"one"}
    assert a["lut"] > 0 and a["ff"] > 0 and a["levels"] > 0
    assert set(COEFFICIENTS) == {"lut", "ff", "carry", "levels"}
    deeper = describe(graph, pipeline_levels=3)["estimate"]
    assert deeper["ff"] > a["ff"] and deeper["levels"] < a["levels"]
    assert describe(graph, combinational=True)["estimate"]["ff"] == 0


def test_latency_is_the_sum_of_register_stages():
    """design.json's latency is the sum of per-layer register stages (no hidden registers)."""
    graph = random_mlp((8, 6, 3), seed=2)
    for levels in (0, 1, 2, 5):
        d = describe(graph, pipeline_levels=levels)
        assert d["latency_cycles"] == sum(d["pipeline_levels"])
        assert all(0 <= p <= levels for p in d["pipeline_levels"])


# -- register stages for a target clock ---------------------------------------------------------


def test_delay_model_arithmetic_and_families():
    from accelgen.rtl.estimate import DELAY_MODELS, family_of, max_levels, stage_ns

    assert family_of("xc7z020clg400-1") == "zynq-7000"
    assert family_of("xczu3eg-sbva484-1-i") == family_of("xck26-sfvc784-2LV-c") == "zynq-ultrascale+"
    assert family_of(None) == "zynq-7000"  # unknown: the slower model
    m = DELAY_MODELS["zynq-7000"]
    assert stage_ns(10, "zynq-7000") == pytest.approx(m["overhead_ns"] + 10 * m["ns_per_level"])
    for family in DELAY_MODELS:
        for mhz in (50, 100, 187.5, 300):
            n = max_levels(mhz, family)
            assert stage_ns(n, family) <= 1e3 / mhz or n == 1
            assert stage_ns(n + 1, family) > 1e3 / mhz


@pytest.mark.parametrize("part", ["xc7z020clg400-1", "xczu3eg-sbva484-1-i"])
def test_register_stages_fit_the_clock_and_are_few(part):
    from accelgen.rtl.estimate import layer_levels, max_levels
    from accelgen.rtl.netlist import lower_core

    graph = compile_model(MODELS / "qonnx_mlp_w2a2.onnx").graph
    previous = None
    for mhz in (50, 100, 200, 300):
        d = describe(graph, clock_mhz=mhz, part=part)
        t, stages = d["timing"], d["pipeline_levels"]
        assert d["latency_cycles"] == sum(stages) and t["clock_mhz"] == mhz
        limit = max_levels(mhz, t["family"])
        for i, (levels, n) in enumerate(zip(t["stage_levels"], stages)):
            assert levels <= limit or n == d["layers"][i]["units"]  # fits, or every unit has its register
            if n > 1:  # one register fewer would not fit
                fewer = list(stages)
                fewer[i] -= 1
                shared = lower_core(extract_core(graph), fewer, share_sums=True)[0]
                assert layer_levels(shared[i]) > limit
        assert t["meets_clock"] == all(ns <= 1e3 / mhz for ns in t["stage_ns"])
        if previous is not None:  # a faster clock never takes fewer registers
            assert all(a >= b for a, b in zip(stages, previous))
        previous = stages
        x_codes, want = core_io(graph, digits_split()[2][:100])
        np.testing.assert_array_equal(eval_design(d, x_codes), want)
    assert sum(describe(graph, clock_mhz=50, part=part)["pipeline_levels"]) < sum(previous)


def test_bad_target_clock():
    with pytest.raises(InputError, match="positive frequency"):
        describe(random_mlp((8, 8, 4)), clock_mhz=0)
