"""cocotb testbench of an unrolled core's board wrapper (<top>_axi): run by tests/test_rtl_axi.py.

The words are packed and unpacked by accelgen.runtime.packing, the code the PYNQ driver
runs for both architectures; the control port is driven as the driver drives it (reps at
0x10, ap_start at 0x00, ap_idle polled). Environment: ACCELGEN_AXI_CASE, a JSON file naming
the vectors (core input codes, golden outputs), the port layout and the back-pressure.
"""

from __future__ import annotations

import json
import logging
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from accelgen.runtime.packing import pack, unpack

AP_START, AP_DONE, AP_IDLE = 1, 2, 4
CTRL, REPS = 0x00, 0x10
CLOCK_NS = 10


class Monitor:
    """Counts input words taken and output words delivered, with the cycle of each delivery."""

    def __init__(self, dut):
        self.dut, self.cycle, self.taken, self.delivered = dut, 0, 0, []

    async def run(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.ap_clk)
            self.cycle += 1
            if dut.in0_tvalid.value == 1 and dut.in0_tready.value == 1:
                self.taken += 1
            if dut.out0_tvalid.value == 1 and dut.out0_tready.value == 1:
                self.delivered.append(self.cycle)


def pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


async def call(axil, source, sink, words: np.ndarray, n: int) -> list[int]:
    """One driver call: reps, ap_start, the words of n samples in, one frame out (up to TLAST)."""
    await axil.write_dword(REPS, n)
    await axil.write_dword(CTRL, AP_START)
    source.send_nowait(AxiStreamFrame([int(w) for w in words.reshape(-1)]))
    frame = await with_timeout(sink.recv(), 200_000, "ns")
    return [int(w) for w in frame.tdata]


@cocotb.test()
async def packed_words_bit_exact(dut):
    case = json.loads(open(os.environ["ACCELGEN_AXI_CASE"]).read())
    x, want = np.load(case["x"]), np.load(case["y"])
    cin, cout = case["in"]["code"], case["out"]["code"]
    bus = case["bus_bits"]
    w_in, w_out = case["in"]["words_per_sample"], case["out"]["words_per_sample"]
    words = pack(x, cin["bits"], cin["signed"], bus, bipolar=cin["bipolar"])
    assert words.shape == (len(x), w_in)

    def decode(got: list[int], n: int) -> np.ndarray:
        assert len(got) == n * w_out, f"{len(got)} output words before TLAST, expected {n * w_out}"
        arr = np.asarray(got, dtype=np.uint64).reshape(n, w_out)
        return unpack(arr, want.shape[1], cout["bits"], cout["signed"], bus, bipolar=cout["bipolar"])

    Clock(dut.ap_clk, CLOCK_NS, unit="ns").start()
    dut.ap_rst_n.value = 0
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "in0"), dut.ap_clk, dut.ap_rst_n,
                             reset_active_level=False, byte_lanes=1)  # fmt: skip
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "out0"), dut.ap_clk, dut.ap_rst_n,
                         reset_active_level=False, byte_lanes=1)  # fmt: skip
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.ap_clk, dut.ap_rst_n,
                         reset_active_level=False)  # fmt: skip
    for log in (source.log, sink.log, axil.write_if.log, axil.read_if.log):
        log.setLevel(logging.WARNING)
    monitor = Monitor(dut)
    cocotb.start_soon(monitor.run())
    await ClockCycles(dut.ap_clk, 4)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 2)
    assert int(await axil.read_dword(CTRL)) & AP_IDLE, "not idle after reset"

    # 1. words offered before ap_start are not taken; the started call then takes them
    source.send_nowait(AxiStreamFrame([int(w) for w in words[0]]))
    await ClockCycles(dut.ap_clk, 40)
    assert monitor.taken == 0, f"{monitor.taken} word(s) taken while idle"
    await axil.write_dword(REPS, 1)
    await axil.write_dword(CTRL, AP_START)
    first = decode([int(w) for w in (await with_timeout(sink.recv(), 100_000, "ns")).tdata], 1)
    status = int(await axil.read_dword(CTRL))
    assert status & AP_IDLE and status & AP_DONE, f"control 0x{status:x} after the call"
    assert not int(await axil.read_dword(CTRL)) & AP_DONE, "ap_done not cleared by the read"

    # 2. one call of most samples, random gaps on the input and random back-pressure on the output
    rng = random.Random(case["seed"])
    source.set_pause_generator(pauses(rng, case["backpressure"]))
    sink.set_pause_generator(pauses(rng, case["backpressure"]))
    split = case["split"]
    stalled = decode(await call(axil, source, sink, words[1:split], split - 1), split - 1)
    for side in (source, sink):
        side.clear_pause_generator()
        side.pause = False

    # 3. the rest in a second call with no pauses: one sample per max(words in, words out) cycles
    start = len(monitor.delivered)
    rest = len(x) - split
    free = decode(await call(axil, source, sink, words[split:], rest), rest)
    span = monitor.delivered[-1] - monitor.delivered[start]
    got = np.concatenate([first, stalled, free])
    bad = np.argwhere(got != want)
    result = {
        "samples": int(len(x)),
        "mismatched_elements": int(len(bad)),
        "first_mismatch": [int(v) for v in bad[0]] if len(bad) else None,
        "cycles_per_sample": span / max(1, rest - 1) if rest > 1 else None,
        "words_taken": monitor.taken,
    }
    with open(case["results"], "w") as f:
        json.dump(result, f)
    assert not len(bad), f"{len(bad)} element(s) differ from the golden model; first (sample, element) {bad[0]}"
    assert monitor.taken == len(x) * w_in
