"""The PYNQ driver of an `--arch rtl` build on the stand-in board: the same driver as the
dataflow path, packing, chunking, DMA error bits and recovery.

The stand-in hardware decodes the packed words with numpy written here (not accelgen's
packer), runs the codes through the golden model of the design's own core.json, and encodes
the results the same way; the wrapper itself is checked against the packer in
tests/test_rtl_axi.py (Icarus), so together the driver is checked against the Verilog.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from accelgen import golden
from accelgen.cli import main
from accelgen.rtl.core import graph_from_json
from accelgen.runtime import Accelerator
from tests.data import digits_split
from tests.test_pynq_backend import FakeDMA, FakeIP, FakePynq, StandInOverlay

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "models" / "qonnx_mlp_w2a2.onnx"


def decode(words: np.ndarray, elements: int, bits: int, signed: bool) -> np.ndarray:
    """(samples, words) uint64 -> (samples, elements) codes: code i in bits [i % per * bits, +bits) of word i // per."""
    per = 64 // bits
    lanes = [(words >> np.uint64(k * bits)) & np.uint64((1 << bits) - 1) for k in range(per)]
    codes = np.stack(lanes, axis=2).reshape(len(words), -1)[:, :elements].astype(np.int64)
    return np.where(codes >= 1 << (bits - 1), codes - (1 << bits), codes) if signed else codes


def encode(codes: np.ndarray, words: int, bits: int) -> np.ndarray:
    per = 64 // bits
    padded = np.zeros((len(codes), words * per), np.uint64)
    padded[:, : codes.shape[1]] = (codes & ((1 << bits) - 1)).astype(np.uint64)
    lanes = padded.reshape(len(codes), words, per)
    out = np.zeros((len(codes), words), np.uint64)
    for k in range(per):
        out |= lanes[:, :, k] << np.uint64(k * bits)
    return out


class RtlBoard(StandInOverlay):
    """accel + dma_in0 + dma_out0 of the RTL block design; the core is its golden model."""

    def __init__(self, outdir: Path, hang=False, max_size=(1 << 14) - 1):
        self.accel = FakeIP(self)
        hw = json.loads((outdir / "driver" / "accel.json").read_text())["hardware"]
        assert hw["architecture"] == "rtl" and hw["bus_bits"] == 64
        (self.inp,), (self.outp,) = hw["inputs"], hw["outputs"]
        self.core = graph_from_json(json.loads((outdir / "rtl" / "core.json").read_text()))
        self.dma_in0, self.dma_out0 = FakeDMA(max_size), FakeDMA(max_size)
        self.hang, self.freed, self.downloads = hang, False, 0

    def _compute(self, words, reps):
        code = self.inp["code"]
        x = decode(words.view(np.uint64).reshape(reps, -1), self.inp["elements"], code["bits"], code["signed"])
        y = golden.run(self.core, {self.core.inputs[0]: x})[self.core.outputs[0]].reshape(reps, -1)
        return encode(y, self.outp["words_per_sample"], self.outp["code"]["bits"])


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    out = tmp_path_factory.mktemp("rtl_pynq") / "design"
    assert main(["build", str(MODEL), "--arch", "rtl", "--board", "ultra96", "-o", str(out), "--no-csim",
                 "--synth", "off", "--json"]) == 0  # fmt: skip
    return out


def _digits(n: int) -> np.ndarray:
    _, _, x, _ = digits_split()
    return np.resize(x, (n, x.shape[1])).astype(np.float32)


def test_an_rtl_build_has_a_driver_and_a_block_design(outdir):
    files = {p.relative_to(outdir).as_posix() for p in outdir.rglob("*") if p.is_file()}
    assert {"driver/accel.json", "driver/notebook.ipynb", "driver/run_accelerator.py", "driver/program.json",
            "scripts/bd.tcl", "scripts/Makefile"} <= files  # fmt: skip
    assert any(f.startswith("driver/accelgen_runtime/") for f in files)
    hw = json.loads((outdir / "driver" / "accel.json").read_text())["hardware"]
    design = json.loads((outdir / "rtl" / "design.json").read_text())
    assert hw["top"] == design["board"]["top"]
    assert f"-reference {hw['top']} accel" in (outdir / "scripts" / "bd.tcl").read_text()
    # the report gives the rate the bus allows (the wrapper moves one word per cycle per port)
    board = json.loads((outdir / "report.json").read_text())["rtl"]["board_interface"]
    words = (hw["inputs"][0]["words_per_sample"], hw["outputs"][0]["words_per_sample"])
    assert (board["words_in"], board["words_out"]) == words and board["ii_cycles"] == max(words)


def test_the_driver_runs_an_rtl_build_on_the_stand_in_board(outdir):
    x = _digits(37)
    fake, board = FakePynq(), RtlBoard(outdir)
    with Accelerator(outdir / "driver", backend="pynq", pynq_module=fake, overlay=board) as accel:
        y = accel.run(x)
    with Accelerator(outdir, backend="golden") as ref:
        assert np.array_equal(y, ref.run(x))
    assert board.accel.writes == [(0x10, 37), (0x00, 1)]  # reps, then ap_start: the wrapper's register map
    assert all(getattr(b, "freed", False) for b in fake.buffers) and board.freed


def test_rtl_batches_are_chunked_within_the_dma_limit(outdir):
    x = _digits(29)
    board = RtlBoard(outdir, max_size=200)
    board.dma_in0.buffer_max_size = board.dma_out0.buffer_max_size = 200
    with Accelerator(outdir / "driver", backend="pynq", pynq_module=FakePynq(), overlay=board) as accel:
        y = accel.run(x)
    with Accelerator(outdir, backend="golden") as ref:
        assert np.array_equal(y, ref.run(x))
    hw = json.loads((outdir / "driver" / "accel.json").read_text())["hardware"]
    in_bytes = hw["inputs"][0]["words_per_sample"] * 8
    sends = board.dma_in0.sendchannel.sizes
    assert len(sends) >= 3 and all(b <= 200 and b % in_bytes == 0 for b in sends) and sum(sends) == 29 * in_bytes


def test_rtl_dma_error_and_timeout_recover(outdir):
    from accelgen.runtime.pynq_backend import DmaError

    x = _digits(5)
    board = RtlBoard(outdir)
    accel = Accelerator(outdir / "driver", backend="pynq", pynq_module=FakePynq(), overlay=board, timeout_s=0.05,
                        timeout_per_sample_s=0.01)  # fmt: skip
    board.dma_in0.inject_error = 0x40
    with pytest.raises(DmaError, match="dma_in0 reported DMADecErr.*reset dma_in0"):
        accel.run(x)
    board.hang = True
    with pytest.raises(TimeoutError, match="did not finish") as err:
        accel.run(x)
    assert "overlay was downloaded again" in str(err.value) and board.downloads >= 1
    with Accelerator(outdir, backend="golden") as ref:
        assert np.array_equal(accel.run(x), ref.run(x))
    accel.close()
