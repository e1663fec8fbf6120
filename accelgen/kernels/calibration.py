"""The cost model's tunable constants, in one place, each with its value and where it came from.

Everything else in the cost model is a count derived from the hardware's structure (bits,
depths, lanes; accelgen.kernels.hw). The constants here are the figures that structure
does not give: the fixed logic around the kernels (the DMA + interconnect shell of each
board family, the AXI-Stream port adapters).

Status (read before trusting a figure): the shell figures below are engineering estimates
from the composition of the block design accelgen generates (templates/scripts/bd_*.tcl.j2:
one AXI DMA channel per port in simple mode, an AXI interconnect for the control port, one
for the HP port, a processor system reset), sized after the Xilinx IP product guides' typical
figures (PG021 AXI DMA, PG059 AXI Interconnect, PG164 Processor System Reset). They are NOT
yet fitted on published synthesis results: ``benchmarks/bench_calibration.py`` prints the
held-out comparison (BNN-PYNQ LFC-W1A1 and CNV-W1A1 on Pynq-Z2) with these values; the fit
on hls4ml's and finn-examples' published figures is still to be done (see that script).
"""

from __future__ import annotations

from accelgen.kernels.base import Resources

#: per board family: the fixed part of the shell (control interconnect on the PS's general
#: purpose master port, data interconnect to the high-performance slave port, reset block).
#: Zynq UltraScale+ adds the 64 -> 128-bit upsizer in front of its 128-bit HP port.
SHELL_FIXED = {
    "zynq7": Resources(lut=1200, ff=1500),
    "zynqmp": Resources(lut=1600, ff=2200),
}
#: per AXI-Stream port: one AXI DMA channel in simple mode (no scatter-gather), its
#: memory-map burst buffer (64 beats of the bus) in block RAM, and its AXI-Lite registers
SHELL_PER_PORT = Resources(lut=700, ff=1100, bram18=1)

#: per AXI-Stream port: the HLS adapter that reads (writes) bus beats and splits (packs)
#: them into code fields: a bus-wide register and a bus-wide field multiplexer, plus the
#: kernel control (hw.KERNEL_CONTROL) the cost model adds to every HLS kernel
ADAPTER_LUT_PER_BUS_BIT = 1
ADAPTER_FF_PER_BUS_BIT = 1

SOURCES = {
    "SHELL_FIXED": "engineering estimate (PG059 AXI Interconnect, PG164 Processor System Reset typical figures); not fitted",
    "SHELL_PER_PORT": "engineering estimate (PG021 AXI DMA simple mode, one channel); not fitted",
    "ADAPTER_*": "this model: one register and one multiplexer bit per bus bit; not fitted",
}
