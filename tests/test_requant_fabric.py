"""A multiply-shift requantizer's product built in the fabric (LayerFold.requant = "fabric"):
the generated C++ binds it there (requant.h FabricProduct, BIND_OP impl=fabric) and the
C simulation equals the numpy reference (tests.test_hls_kernels.ref_run, written apart from
accelgen) on every layer, in both arithmetic models; the binding is per layer, as the plan says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelgen.cli import main
from accelgen.codegen import generate
from accelgen.csim import Emulator, build_group
from accelgen.errors import InputError
from accelgen.plan import FoldingPlan, LayerFold
from tests.test_hls_kernels import MODELS, GraphBuilder, assert_layers_equal_reference, qt

pytestmark = pytest.mark.csim

FABRIC = "fabric"


def _dense_then_conv():
    """dense (per-unit requantizers) in the fabric, then a dense at the DSP default."""
    b = GraphBuilder("fd", 21)
    y = b.dense(b.input("x", (24,), qt(8, True)), 12, qt(8, True), qt(8, True), fold=LayerFold(4, 24, requant=FABRIC),
                rq="ms")  # fmt: skip
    return b.finish(b.dense(y, 6, qt(8, True), qt(6, False), fold=LayerFold(3, 4), rq="ms"))


def _shared_conv():
    """a 3x3 conv whose words take 9 cycles: requantizers shared in time (SharedRequant)."""
    b = GraphBuilder("fc", 22)
    x = b.input("x", (6, 5, 4), qt(8, False, zp=128))
    y = b.conv(x, 8, (3, 3), qt(8, True), qt(8, True), pads=(1, 1, 1, 1), fold=LayerFold(4, 4, requant=FABRIC),
               rq="ms")  # fmt: skip
    return b.finish(y)


def _depthwise():
    b = GraphBuilder("fw", 23)
    x = b.input("x", (5, 6, 6), qt(8, False, zp=3))
    y = b.conv(x, 6, (3, 3), qt(8, True), qt(8, False), pads=(1, 1, 1, 1), groups=6,
               fold=LayerFold(2, 1, requant=FABRIC), rq="ms")  # fmt: skip
    return b.finish(y)


CASES = {"dense_fabric_then_dsp": _dense_then_conv, "conv_shared_fabric": _shared_conv, "depthwise_fabric": _depthwise}


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    root = tmp_path_factory.mktemp("rq_fabric")
    built = {}
    for i, (name, make) in enumerate(CASES.items()):
        graph, plan, x = make()
        built[name] = (generate(graph, plan, root / name, vectors=x, top=f"rf{i}"), graph, x)
    emus = {}
    for model in MODELS:
        lib = build_group([out for out, _, _ in built.values()], opt="-O1", ap_model=model == "ap_types")
        for name, (out, graph, x) in built.items():
            emus[name, model] = (Emulator(out, library=lib), graph, x)
    return emus


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", list(CASES))
def test_fabric_requantizers_are_bit_exact(emulators, name, model):
    assert_layers_equal_reference(*emulators[name, model])


def test_the_generated_code_binds_each_product_where_the_plan_says(emulators):
    for name in CASES:
        configs = "".join(f.read_text() for f in (emulators[name, "native"][0].outdir / "hls" / "config").glob("*.h"))
        assert "accelgen::FabricProduct" in configs, name
    # the second dense layer keeps the default: one layer of each binding in one design
    configs = "".join(
        f.read_text() for f in (emulators["dense_fabric_then_dsp", "native"][0].outdir / "hls" / "config").glob("*.h")
    )
    assert configs.count("accelgen::FabricProduct") == 1 and configs.count("accelgen::DspProduct") == 1


def test_a_plan_keeps_the_binding_through_json():
    plan = FoldingPlan({"a": LayerFold(4, 2, requant=FABRIC), "b": LayerFold(2, 1)})
    back = FoldingPlan.from_json(plan.to_json())
    assert back.layers["a"].requant == FABRIC and back.layers["b"].requant == "dsp"


def test_an_unknown_binding_names_the_layer_and_the_choices():
    plan = FoldingPlan({"a": LayerFold(4, 2, requant="bram")})
    with pytest.raises(InputError, match=r"(?s)'a'.*dsp.*fabric"):
        FoldingPlan.from_json(plan.to_json())


def test_a_bad_binding_in_folding_exits_2_naming_the_layer(tmp_path, capsys):
    """`--folding` with an unknown binding, or "fabric" on a requantizer with no product
    (the bundled CNN's classifier has none: it hands its accumulators to the host): exit 2,
    the layer and the choices."""
    cnn = str(Path(__file__).parents[1] / "examples" / "digits_cnn_w4a8.onnx")
    path = tmp_path / "plan.json"
    for requant, says in (("bram", "requant='bram'"), ("fabric", "fabric only for a multiply-shift requantizer")):
        path.write_text(json.dumps({"version": 1, "layers": {"dense:/fc/Gemm": {"pe": 10, "simd": 1, "requant": requant}}}))
        assert main(["dse", cnn, "--board", "ultra96", "--folding", str(path)]) == 2
        err = capsys.readouterr().err
        assert "dense:/fc/Gemm" in err and says in err and "Traceback" not in err
