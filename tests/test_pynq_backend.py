"""The pynq backend against a stand-in for the board: register writes, DMA, packing, timeouts.

The fake DMA engine decodes the packed words with numpy views written here (not with
accelgen's packer), runs the words' codes through the design's C-simulation library and
encodes the results the same way, so the driver's packing is checked independently.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from accelgen.cli import main
from accelgen.runtime import Accelerator
from accelgen.runtime.csim_backend import CsimBackend
from accelgen.runtime.program import load_program
from tests.data import as_images, digits_split

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits_cnn_w4a8.onnx"


class FakeBuffer(np.ndarray):
    def flush(self):
        pass

    def invalidate(self):
        pass

    def freebuffer(self):
        self.freed = True


class FakePynq:
    def __init__(self):
        self.buffers = []

    def allocate(self, shape, dtype):
        buf = np.zeros(shape, dtype=dtype).view(FakeBuffer)
        self.buffers.append(buf)
        return buf


class Channel:
    def __init__(self, on_transfer=None, hang=False):
        self.on_transfer, self.hang, self.buffer = on_transfer, hang, None

    def transfer(self, buf):
        self.buffer = buf
        if self.on_transfer:
            self.on_transfer(buf)

    @property
    def idle(self):
        return not self.hang


class FakeIP:
    def __init__(self):
        self.writes = []

    def write(self, offset, value):
        self.writes.append((offset, value))


class FakeOverlay:
    """accel + dma_in0 + dma_out0; the hardware is the C-simulation library."""

    def __init__(self, outdir: Path, hang=False):
        self.accel = FakeIP()
        meta = json.loads((outdir / "hls" / "design.json").read_text())
        (self.inp,), (self.outp,) = meta["inputs"], meta["outputs"]
        assert self.inp["code"] == {"bits": 8, "signed": True, "bipolar": False} and meta["bus_bits"] == 64
        assert self.outp["code"]["bits"] == 32
        program = load_program(outdir / "driver" / "program.json")
        from accelgen.runtime.accelerator import Partition

        self.hw = CsimBackend(outdir, program, Partition(program))
        self.dma_out0 = type("D", (), {})()
        self.dma_out0.recvchannel = Channel(hang=hang)
        self.dma_in0 = type("D", (), {})()
        self.dma_in0.sendchannel = Channel(self._compute)
        self.freed = False

    def _compute(self, words):
        reps = dict(self.accel.writes)[0x10]
        codes = np.asarray(words).view(np.int8).reshape(reps, -1)[:, : self.inp["elements"]]
        out = self.hw.run({self.inp["tensor"]: codes.reshape(reps, *self.inp["shape"]).astype(np.int64)})
        acc = out[self.outp["tensor"]].reshape(reps, -1).astype(np.int32)
        per = self.outp["words_per_sample"] * 2
        padded = np.zeros((reps, per), np.int32)
        padded[:, : acc.shape[1]] = acc
        self.dma_out0.recvchannel.buffer[:] = padded.reshape(-1).view(np.uint64)

    def free(self):
        self.freed = True


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pynq") / "design"
    assert main(["build", str(EXAMPLE), "--board", "ultra96", "-o", str(out), "--json"]) == 0
    return out


def test_pynq_backend_end_to_end_on_a_fake_board(outdir):
    _, _, x, _ = digits_split()
    x = as_images(x[:37])
    fake, overlay = FakePynq(), FakeOverlay(outdir)
    with Accelerator(outdir / "driver", backend="pynq", pynq_module=fake, overlay=overlay) as accel:
        y = accel.run(x)
        assert accel.stats.summary()["samples"] == 37
    with Accelerator(outdir, backend="golden") as ref:
        assert np.array_equal(y, ref.run(x))
    assert overlay.accel.writes == [(0x10, 37), (0x00, 1)]  # reps, then ap_start
    assert all(getattr(b, "freed", False) for b in fake.buffers)
    assert overlay.freed


def test_pynq_backend_times_out_with_a_clear_error(outdir):
    _, _, x, _ = digits_split()
    accel = Accelerator(outdir / "driver", backend="pynq", pynq_module=FakePynq(), overlay=FakeOverlay(outdir, hang=True),
                        timeout_s=0.05)  # fmt: skip
    with pytest.raises(TimeoutError, match="did not finish receiving out0 within 0.05 s"):
        accel.run(as_images(x[:2]))
    accel.close()
    with pytest.raises(RuntimeError, match="closed"):
        accel.run(as_images(x[:2]))


def test_pynq_backend_needs_pynq_on_the_host(outdir):
    with pytest.raises(RuntimeError, match="runs on the board"):
        Accelerator(outdir / "driver", backend="pynq")


def test_wrong_input_is_refused(outdir):
    from accelgen.runtime import InputValidationError

    with Accelerator(outdir, backend="csim") as accel:
        with pytest.raises(InputValidationError, match="shape"):
            accel.run(np.zeros((2, 1, 8, 7), np.float32))
        bad = np.zeros((1, 1, 8, 8), np.float32)
        bad[0, 0, 1, 1] = np.nan
        with pytest.raises(InputValidationError, match="NaN"):
            accel.run(bad)
        with pytest.raises(InputValidationError, match="dtype"):
            accel.run(np.zeros((1, 1, 8, 8), dtype="U1"))


def test_an_empty_batch_on_the_board_starts_nothing(outdir):
    fake, overlay = FakePynq(), FakeOverlay(outdir)
    with Accelerator(outdir / "driver", backend="pynq", pynq_module=fake, overlay=overlay) as accel:
        y = accel.run(np.zeros((0, 1, 8, 8), np.float32))
    assert y.shape == (0, 10)
    assert overlay.accel.writes == [] and fake.buffers == []  # no DMA waits for words that never come
