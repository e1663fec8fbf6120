"""Which ops run on the host is defined once (the runtime's is_host); the compiler's graph
and the runtime's Partition of the saved program split every fixture model alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from accelgen import ir
from accelgen.pipeline import compile_model
from accelgen.runtime.accelerator import HOST_KINDS, Partition
from accelgen.runtime.program import load_program, save_program

MODELS = Path(__file__).parent / "models"
FIXTURES = sorted(p.name for p in MODELS.glob("*.onnx"))


@pytest.mark.parametrize("name", FIXTURES)
def test_compiler_and_runtime_split_alike(name, tmp_path):
    graph = compile_model(MODELS / name).graph
    save_program(*graph.to_program(), tmp_path / "program.json")
    partition = Partition(load_program(tmp_path / "program.json"))
    hardware = [op.name for op in graph.integer_ops()]
    assert hardware, name
    assert [op.name for op in partition.hardware] == hardware
    host = [op.name for op in graph.ops if ir.is_host_op(op, graph.tensors)]
    assert [op.name for op in partition.prologue + partition.epilogue] == host


def test_on_host_kinds_are_the_runtimes_list():
    assert {kind for kind, cls in ir.OP_TYPES.items() if cls.kind in HOST_KINDS} == set(HOST_KINDS)
    quantize = ir.Quantize("q", ("x",), ("y",))
    dense_like = ir.Requantize("r", ("a",), ("b",))
    assert quantize.on_host and not dense_like.on_host


def test_runtime_imports_without_the_compiler():
    code = (
        "import sys, accelgen.runtime\n"
        "bad = [m for m in sys.modules if m.startswith('accelgen.') and not m.startswith('accelgen.runtime')]\n"
        "assert bad == [], bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
