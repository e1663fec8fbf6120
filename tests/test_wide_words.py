"""Generated sources that Vitis HLS reads as intended: AP_INT_MAX_W raised before the first
ap_int.h when a word exceeds 1024 bits (bit-exact in C simulation with the ap_types model,
which refuses such words otherwise), and each constant parameter defined as a static const of
the top function with its ARRAY_PARTITION pragmas right after its definition."""

from __future__ import annotations

import re

import numpy as np
import pytest

from accelgen.csim import Emulator
from tests.test_hls_kernels import F, GraphBuilder, build_group, generate, qt, ref_run


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    root = tmp_path_factory.mktemp("wide")
    out = {}
    for name, simd in (("wide", 256), ("narrow", 16)):
        b = GraphBuilder("p", 990 + simd)
        x = b.input("x", (256,), qt(8, True))
        graph, plan, xs = b.finish(b.dense(x, 3, qt(8, True), qt(8, False), fold=F(1, simd)))
        out[name] = (generate(graph, plan, root / name, vectors=xs, bus_bits=64, top=f"k{name}"), graph, xs)
    return out


def test_ap_int_max_w_is_set_before_ap_int_when_a_word_exceeds_1024_bits(designs):
    wide, narrow = designs["wide"][0] / "hls", designs["narrow"][0] / "hls"
    for name in ("top.h", "emu.cpp", "tb.cpp"):
        text = (wide / name).read_text()
        (value,) = re.findall(r"^#define AP_INT_MAX_W (\d+)$", text, re.M)
        assert int(value) >= 256 * 8 + 64  # the weights' SIMD word, the width converter's register
        assert text.index("#define AP_INT_MAX_W") < text.index("#include"), name
        assert "AP_INT_MAX_W" not in (narrow / name).read_text()


@pytest.mark.parametrize("ap_model", [True, False])
def test_a_design_with_2048_bit_words_is_bit_exact(designs, ap_model):
    out, graph, xs = designs["wide"]
    emu = Emulator(out, library=build_group([out], opt="-O1", ap_model=ap_model))
    got, ref = emu.run_layers(xs), ref_run(graph, xs)
    for t in graph.outputs:
        np.testing.assert_array_equal(got[t], ref[t])


def test_parameters_are_static_consts_of_the_top_with_their_partitions_beside(designs):
    hls = designs["narrow"][0] / "hls"
    top = (hls / "top.cpp").read_text()
    body = top[top.index("void knarrow(") :]
    (params,) = re.findall(r'^#include "(params/\w+\.h)"$', body, re.M)  # inside the top function
    assert not re.search(r'^#include "params/', top[: top.index("void knarrow(")], re.M)
    text = (hls / params).read_text()
    for m in re.finditer(r"^static const \S+ (\w+) = ", text, re.M):
        name = m.group(1)
        pragmas = re.findall(rf"^#pragma HLS ARRAY_PARTITION variable = {name}\.(\w+) type = complete dim = (\d)", text, re.M)
        assert pragmas, f"{name}: no partition"
        first = text.index(f"#pragma HLS ARRAY_PARTITION variable = {name}.")
        assert text.index(";\n", m.end()) < first  # after the definition, before the next one
        nxt = re.search(r"^static const ", text[m.end() :], re.M)
        assert nxt is None or first < m.end() + nxt.start()
    assert ("chunk", "1") in re.findall(r"variable = \w+_weights\.(\w+) type = complete dim = (\d)", text)
    assert "ARRAY_PARTITION" not in top.replace(body, "")  # nothing names a namespace-scope global
