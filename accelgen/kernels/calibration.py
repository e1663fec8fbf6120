"""The cost model's tunable constants, in one place, each with its value and where it came from.

Everything else in the cost model is a count derived from the hardware's structure (bits,
depths, lanes; accelgen.kernels.hw), including the stream plumbing code generation puts
between the layers (accelgen.kernels.plumbing). The constants here are what that structure
does not give. The whole-design estimate (accelgen.kernels.shell) is

    KERNEL_SCALE x (the kernels' cost models, summed)
    + the stream plumbing the plan instantiates (priced, not scaled)
    + DSP_PER_WINDOW x window generators
    + the shell: SHELL_FIXED[family] + SHELL_PER_PORT x ports

Fitted by ``python benchmarks/bench_calibration.py --fit`` (the values marked fitted are its
output) on BNN-PYNQ's published post-implementation utilisation of LFC-W1A2, CNV-W1A2 and
CNV-W2A2 on PYNQ-Z1/Z2 (Vivado 2018.2; Xilinx/BNN-PYNQ bnn/src/network/<net>/README.md at
d84f6e887d224791b6a20e7a907123bf9e15ee41, folding from .../hw/config.h), rebuilt in
accelgen at the same bit widths, padded shapes, folding and clock. LUT, FF, BRAM18: one
scale each, least squares of the relative error of ``published - shell - plumbing = scale
x kernels`` (what the structural models do not capture: synthesis's logic optimisation and
pipeline registers, how block RAM packs); no per-layer or per-design term. DSP: least
squares of ``published = fixed + per_window x windows`` (windows: convolutions with a
kernel above 1 x 1; the kernels price no DSP for 1- and 2-bit products, so these are
BNN-PYNQ's: its window generators' and top level's index arithmetic). accelgen's own
window generator (swg.h) steps its line-buffer slots with wrapping counters, no divider
and no DSP, so for accelgen's designs the fitted per-window DSPs are an allowance the
generated code may not use (priced, never unpriced) until a synthesis of accelgen's own
design measures it. LFC-W1A1 and CNV-W1A1 are held out (the benchmark prints both). Limits: three
in-sample designs, all 1-2-bit BNN-PYNQ dataflow designs on a Zynq-7000 (BNN-PYNQ's own HLS,
not accelgen's generated code); nothing is fitted for Zynq UltraScale+. hls4ml's synthesis
baselines could not be used: they are 16- and 32-bit fixed-point designs and accelgen builds
1- to 8-bit datapaths; finn-examples publishes no utilisation figures.

Vendor figures for the shell: PG021 (AXI DMA v7.1, April 2018) and PG059 (AXI Interconnect)
defer their resource tables to Xilinx's online "Performance and Resource Utilization"
pages, which the reference corpus this was written from does not hold (PG059 gives only
the form ``base + data width x per-bit``); the shell's LUT / FF / BRAM18 figures therefore
stay ENGINEERING ESTIMATES, labelled so below.
"""

from __future__ import annotations

from accelgen.kernels.base import Resources

# -- fitted (bench_calibration.py --fit) -----------------------------------------------------
KERNEL_SCALE = {"lut": 1.241, "ff": 1.217, "bram18": 1.122}
SHELL_FIXED = {
    # LUT / FF / BRAM18: ENGINEERING ESTIMATE (not fitted, no vendor table at hand): the PS
    # reset block, the AXI-Lite interconnect to the DMA registers and the HP-port
    # interconnect; DSP: fitted (it also absorbs BNN-PYNQ's own top-level address arithmetic)
    "zynq7": Resources(lut=1200, ff=1500, dsp=4),
    # no published Zynq UltraScale+ whole design to fit on: engineering estimate (the
    # Zynq-7000 composition plus the 64 -> 128-bit upsizer in front of the HP port)
    "zynqmp": Resources(lut=1600, ff=2200),
}
DSP_PER_WINDOW = 4.06

# -- engineering estimates (not fitted) ----------------------------------------------------
#: per AXI-Stream port: one AXI DMA channel in direct register mode (no scatter-gather,
#: PG021), its burst buffer in block RAM and its AXI-Lite registers (ENGINEERING ESTIMATE:
#: PG021's resource table is not in the reference corpus)
SHELL_PER_PORT = Resources(lut=700, ff=1100, bram18=1)
