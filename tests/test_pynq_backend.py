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
    """One channel of an AXI DMA in direct register mode, as PYNQ drives it: refuses transfers over
    the length register, must be started after a reset, idle once the stream side is done."""

    def __init__(self, dma, base, max_size):
        self.dma, self.base, self.max_size = dma, base, max_size
        self.running, self.busy, self.armed = True, False, None
        self.sizes = []  # bytes of every transfer accepted

    def transfer(self, buf, start=0, nbytes=0):
        if not self.running:
            raise RuntimeError("DMA channel not started")
        if self.busy:
            raise RuntimeError("DMA channel not idle")
        nbytes = nbytes or buf.nbytes - start
        if nbytes > self.max_size:
            raise ValueError(f"Transfer size is {nbytes} bytes, which exceeds the maximum DMA buffer size")
        self.sizes.append(nbytes)
        self.armed, self.busy = (buf, start, nbytes), True
        if self.dma.inject_error:
            self.dma.status[self.base] |= self.dma.inject_error  # the engine halts with an error bit
            self.dma.inject_error = 0

    def start(self):
        self.running = True

    @property
    def idle(self):
        return not self.busy


class FakeDMA:
    """Registers as PG021 lays them out: DMACR at 0x00/0x30, DMASR at 0x04/0x34; DMACR bit 2 resets."""

    def __init__(self, max_size):
        self.status = {0x00: 0, 0x30: 0}
        self.sendchannel, self.recvchannel = Channel(self, 0x00, max_size), Channel(self, 0x30, max_size)
        self.inject_error, self.resets = 0, 0

    def read(self, offset):
        if offset in (0x00, 0x30):
            return 0x1 if self._channel(offset).running else 0x0  # the reset bit has cleared itself
        base = offset - 4
        return self.status[base] | (0x0 if self._channel(base).busy else 0x2)

    def write(self, offset, value):
        if offset in (0x00, 0x30) and value & 0x4:
            self.resets += 1
            for chan in (self.sendchannel, self.recvchannel):
                chan.running, chan.busy, chan.armed = False, False, None
            self.status = {0x00: 0, 0x30: 0}

    def _channel(self, base):
        return self.sendchannel if base == 0x00 else self.recvchannel


class FakeIP:
    """The accelerator's control registers; ap_start runs the C-simulation library on the armed buffers."""

    def __init__(self, overlay):
        self.overlay, self.writes, self.busy = overlay, [], False

    def write(self, offset, value):
        self.writes.append((offset, value))
        if offset == 0x00 and value & 1:
            self.busy = True
            self.overlay._start(dict(self.writes)[0x10])

    def read(self, offset):
        assert offset == 0x00
        return 0x0 if self.busy else 0x4  # ap_idle


class StandInOverlay:
    """What every stand-in overlay shares: ap_start's DMA hand-off (``_start``), ``download``
    (reloading the bitstream resets the programmable logic: the IP idles, the DMAs restart)
    and ``free``. A subclass holds ``accel``, ``dma_in0``, ``dma_out0``, ``hang``, ``freed``
    and ``downloads``, and computes a chunk's output words from its input bytes (``_compute``)."""

    def _start(self, reps):
        send, recv = self.dma_in0.sendchannel, self.dma_out0.recvchannel
        if send.armed is None or recv.armed is None or self.dma_in0.status[0x00] or self.dma_out0.status[0x30]:
            return  # the IP waits for words that never come: stays busy
        buf, start, nbytes = send.armed
        words = np.asarray(buf).view(np.uint8)[start : start + nbytes]
        send.busy = False
        if self.hang:
            return
        out = self._compute(words, reps)
        rbuf, rstart, rbytes = recv.armed
        assert rbytes == out.nbytes, "the receive channel is armed for exactly the chunk's words"
        np.asarray(rbuf).view(np.uint8)[rstart : rstart + rbytes] = out.reshape(-1).view(np.uint8)
        recv.busy, self.accel.busy = False, False

    def download(self):
        self.downloads += 1
        self.accel.busy = False
        for dma in (self.dma_in0, self.dma_out0):
            dma.write(0x00, 0x4)
            for chan in (dma.sendchannel, dma.recvchannel):
                chan.start()
        self.hang = False

    def free(self):
        self.freed = True


class FakeOverlay(StandInOverlay):
    """accel + dma_in0 + dma_out0; the hardware is the C-simulation library."""

    def __init__(self, outdir: Path, hang=False, max_size=(1 << 14) - 1):
        self.accel = FakeIP(self)
        meta = json.loads((outdir / "hls" / "design.json").read_text())
        (self.inp,), (self.outp,) = meta["inputs"], meta["outputs"]
        assert self.inp["code"] == {"bits": 8, "signed": True, "bipolar": False} and meta["bus_bits"] == 64
        assert self.outp["code"]["bits"] == 32
        program = load_program(outdir / "driver" / "program.json")
        from accelgen.runtime.accelerator import Partition

        self.hw = CsimBackend(outdir, program, Partition(program))
        self.dma_in0, self.dma_out0 = FakeDMA(max_size), FakeDMA(max_size)
        self.hang, self.freed, self.downloads = hang, False, 0

    def _compute(self, words, reps):
        codes = words.view(np.int8).reshape(reps, -1)[:, : self.inp["elements"]]
        out = self.hw.run({self.inp["tensor"]: codes.reshape(reps, *self.inp["shape"]).astype(np.int64)})
        acc = out[self.outp["tensor"]].reshape(reps, -1).astype(np.int32)
        per = self.outp["words_per_sample"] * 2
        padded = np.zeros((reps, per), np.int32)
        padded[:, : acc.shape[1]] = acc
        return padded


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


def test_pynq_backend_times_out_with_a_clear_error_and_recovers(outdir):
    _, _, x, _ = digits_split()
    overlay = FakeOverlay(outdir, hang=True)
    accel = Accelerator(outdir / "driver", backend="pynq", pynq_module=FakePynq(), overlay=overlay, timeout_s=0.05,
                        timeout_per_sample_s=0.01)  # fmt: skip
    with pytest.raises(TimeoutError, match=r"did not finish receiving out0 \(samples 0\.\.1\) within 0.07 s") as err:
        accel.run(as_images(x[:2]))  # the timeout grows with the chunk: 0.05 + 2 x 0.01
    assert "reset dma_in0, dma_out0" in str(err.value) and "overlay was downloaded again" in str(err.value)
    assert overlay.dma_in0.resets >= 1 and overlay.dma_out0.resets >= 1 and overlay.downloads == 1
    y = accel.run(as_images(x[:3]))  # the next call works
    with Accelerator(outdir, backend="golden") as ref:
        assert np.array_equal(y, ref.run(as_images(x[:3])))
    accel.close()
    with pytest.raises(RuntimeError, match="closed"):
        accel.run(as_images(x[:2]))


def _sample_bytes(outdir, which):
    (port,) = json.loads((outdir / "hls" / "design.json").read_text())[which]
    return port["words_per_sample"] * 8


@pytest.mark.parametrize("max_size", [(1 << 14) - 1, 1000])
def test_batches_are_split_into_chunks_of_whole_samples_within_the_dma_limit(outdir, max_size):
    _, _, x, _ = digits_split()
    n = 600 if max_size > 1000 else 53
    x = as_images(np.resize(x, (n, x.shape[1])))
    fake, overlay = FakePynq(), FakeOverlay(outdir, max_size=max_size)
    overlay.dma_in0.buffer_max_size = overlay.dma_out0.buffer_max_size = max_size  # as PYNQ reads it from the .hwh
    with Accelerator(outdir / "driver", backend="pynq", pynq_module=fake, overlay=overlay) as accel:
        y = accel.run(x)
    with Accelerator(outdir, backend="golden") as ref:
        assert np.array_equal(y, ref.run(x))
    in_bytes, out_bytes = _sample_bytes(outdir, "inputs"), _sample_bytes(outdir, "outputs")
    sends, recvs = overlay.dma_in0.sendchannel.sizes, overlay.dma_out0.recvchannel.sizes
    assert len(sends) == len(recvs) >= 3  # several chunks
    assert all(0 < b <= max_size and b % in_bytes == 0 for b in sends)
    assert all(0 < b <= max_size and b % out_bytes == 0 for b in recvs)
    assert sum(sends) == n * in_bytes and sum(recvs) == n * out_bytes
    reps = [v for off, v in overlay.accel.writes if off == 0x10]
    assert reps == [b // in_bytes for b in sends] and sum(reps) == n
    assert overlay.accel.writes[1::2] == [(0x00, 1)] * len(reps)  # reps, then ap_start, per chunk
    assert all(getattr(b, "freed", False) for b in fake.buffers)


@pytest.mark.parametrize("bit, name", [(0x10, "DMAIntErr"), (0x20, "DMASlvErr"), (0x40, "DMADecErr")])
def test_a_dma_error_bit_gives_a_clear_error_and_the_next_call_works(outdir, bit, name):
    from accelgen.runtime.pynq_backend import DmaError

    _, _, x, _ = digits_split()
    x = as_images(x[:5])
    overlay = FakeOverlay(outdir)
    accel = Accelerator(outdir / "driver", backend="pynq", pynq_module=FakePynq(), overlay=overlay, timeout_s=0.5)
    overlay.dma_in0.inject_error = bit
    with pytest.raises(DmaError, match=f"dma_in0 reported {name}.*while sending in0 .samples 0..4.") as err:
        accel.run(x)
    assert not isinstance(err.value, TimeoutError) and "reset dma_in0" in str(err.value)
    assert overlay.dma_in0.resets >= 1
    with Accelerator(outdir, backend="golden") as ref:
        assert np.array_equal(accel.run(x), ref.run(x))
    accel.close()


def test_the_dma_limit_comes_from_accel_json_else_the_product_guide_default():
    from accelgen.runtime.pynq_backend import chunk_samples, max_transfer_bytes

    assert max_transfer_bytes({"hardware": {}}) == 16383  # PG021: 14-bit length register
    assert max_transfer_bytes({"hardware": {"dma_max_transfer_bytes": 67108863}}) == 67108863
    assert max_transfer_bytes({"dma_max_transfer_bytes": 4095, "hardware": {}}) == 4095
    ports = [{"name": "in0", "words_per_sample": 8}, {"name": "out0", "words_per_sample": 5}]
    assert chunk_samples(ports, 64, 16383) == 255  # 16383 // 64
    assert chunk_samples(ports, 64, 64) == 1
    with pytest.raises(ValueError, match="one sample of port in0 is 64 bytes.*63 bytes.*dma_max_transfer_bytes"):
        chunk_samples(ports, 64, 63)


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
