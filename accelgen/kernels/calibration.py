"""The cost model's tunable constants, in one place, each with its value and where it came from.

Everything else in the cost model is a count derived from the hardware's structure (bits,
depths, lanes; accelgen.kernels.hw). The constants here are what that structure does not
give. The whole-design estimate (accelgen.kernels.shell) is

    KERNEL_SCALE x (the kernels' cost models, summed)
    + PLUMBING_PER_LAYER x layers + DSP_PER_WINDOW x window generators
    + the shell: SHELL_FIXED[family] + SHELL_PER_PORT x ports + the ports' adapters

Fitted by ``python benchmarks/bench_calibration.py --fit`` (the values marked fitted are its
output) on BNN-PYNQ's published post-implementation utilisation of LFC-W1A2, CNV-W1A2 and
CNV-W2A2 on PYNQ-Z1/Z2 (Vivado 2018.2; Xilinx/BNN-PYNQ bnn/src/network/<net>/README.md at
d84f6e887d224791b6a20e7a907123bf9e15ee41, folding from .../hw/config.h), rebuilt in
accelgen at the same bit widths, padded shapes, folding and clock. LUT, FF: least squares
of the relative error of ``published - shell = scale x kernels + per_layer x layers``
(layers with weights); BRAM18: of ``published - shell = scale x kernels`` (how weight
memories pack into block RAM; a per-layer block-RAM constant would charge every small layer
of other models with what BNN-PYNQ's deep memories waste); DSP: of ``published = fixed +
per_window x windows``. LFC-W1A1 and CNV-W1A1 are
held out (the benchmark prints both). Limits: three in-sample designs, all 1-2-bit
BNN-PYNQ dataflow designs on a Zynq-7000, so the scales describe binarized layers and the
per-layer plumbing describes BNN-PYNQ's (FIFOs, width converters, window buffers); the
Zynq UltraScale+ shell and the per-port figures are engineering estimates. hls4ml's
synthesis baselines could not be used: they are 16- and 32-bit fixed-point designs and
accelgen builds 1- to 8-bit datapaths; finn-examples publishes no utilisation figures.
"""

from __future__ import annotations

from accelgen.kernels.base import Resources

# -- fitted (bench_calibration.py --fit) -----------------------------------------------------
KERNEL_SCALE = {"lut": 1.144, "ff": 1.215, "bram18": 1.122}
SHELL_FIXED = {
    # LUT / FF / BRAM18: engineering estimate (not fitted); DSP: fitted
    "zynq7": Resources(lut=1200, ff=1500, dsp=4),
    # no published Zynq UltraScale+ whole design to fit on: engineering estimate (the
    # Zynq-7000 composition plus the 64 -> 128-bit upsizer in front of the HP port)
    "zynqmp": Resources(lut=1600, ff=2200),
}
DSP_PER_WINDOW = 4.06

# -- engineering estimates (not fitted) ----------------------------------------------------
#: per AXI-Stream port: one AXI DMA channel in simple mode (no scatter-gather, PG021), its
#: burst buffer in block RAM and its AXI-Lite registers
SHELL_PER_PORT = Resources(lut=700, ff=1100, bram18=1)
