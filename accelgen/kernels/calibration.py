"""The cost model's tunable constants, in one place, each with its value and where it came from.

Everything else in the cost model is a count derived from the hardware's structure (bits,
depths, lanes; accelgen.kernels.hw), including the stream plumbing code generation puts
between the layers (accelgen.kernels.plumbing). The constants here are what that structure
does not give. The whole-design estimate (accelgen.kernels.shell) is

    KERNEL_SCALE x (the kernels' cost models, summed)
    + the stream plumbing the plan instantiates (priced, not scaled)
    + DSP_PER_WINDOW x window generators (zero: see below)
    + the shell: SHELL_FIXED[family] + SHELL_PER_PORT x ports

Fitted by ``python benchmarks/bench_calibration.py --fit`` (the values marked fitted are its
output) on published synthesis results of designs other than BNN-PYNQ's: FINN's UNSW-NB15
MLP (W2A2, 600-64-64-64-1, xc7z020, 100 MHz) at the two foldings its cybersecurity
notebook published out-of-context synthesis for (Xilinx/finn
notebooks/end2end_example/cybersecurity/3-build-accelerator-with-finn.ipynb at 5243b77e
(Dec 2020) and 365a5781 (Jun 2022, Vivado 2022.1)), rebuilt in accelgen at the same bit widths,
padded shapes, folding and clock. LUT, FF: one scale each, least squares of the relative
error of ``published - shell - plumbing = scale x kernels`` (what the structural models do
not capture: synthesis's logic optimisation and pipeline registers); no per-layer or
per-design term; out of context there is no shell. BRAM18 is the structural count, not
scaled (see KERNEL_SCALE). DSP: nothing to
fit (the in-sample designs use none and have no window generator), so no DSP is charged
beyond what the kernels instantiate: accelgen's window generator (swg.h) steps its
line-buffer slots with wrapping counters, no divider and no multiplier. Every BNN-PYNQ LFC
and CNV variant (Vivado 2018.2 routed utilisation of the whole PYNQ-Z1/Z2 design, in the
networks' READMEs) is held out: the benchmark prints each against its estimate. Limits: two
in-sample designs, both the same 2-bit MLP on a Zynq-7000 (FINN's HLS, not accelgen's
generated code); nothing is fitted for Zynq UltraScale+, convolutions or DSP products.
hls4ml's synthesis baselines could not be used: they are HLS C-synthesis estimates of
16-bit fixed-point layers and accelgen builds 1- to 8-bit datapaths; finn-examples
publishes no utilisation figures.

Vendor figures for the shell: PG021 (AXI DMA v7.1, April 2018) and PG059 (AXI Interconnect)
defer their resource tables to Xilinx's online "Performance and Resource Utilization"
pages, which the reference corpus this was written from does not hold (PG059 gives only
the form ``base + data width x per-bit``); the shell's LUT / FF / BRAM18 figures therefore
stay ENGINEERING ESTIMATES, labelled so below.
"""

from __future__ import annotations

from accelgen.kernels.base import Resources

# -- fitted (bench_calibration.py --fit) -----------------------------------------------------
#: LUT and FF fitted; BRAM18 counted (1.0, not fitted): the in-sample designs hold each
#: layer's weights in one memory as wide as all its PEs, accelgen's code one per PE, so a
#: fitted scale would carry that packing into accelgen's count (bench_calibration.UNFITTED_SCALE)
KERNEL_SCALE = {"lut": 0.961, "ff": 1.308, "bram18": 1.0}

# -- engineering estimates (not fitted) ----------------------------------------------------
SHELL_FIXED = {
    # ENGINEERING ESTIMATE (not fitted, no vendor table at hand, no in-sample design with a
    # shell): the PS reset block, the AXI-Lite interconnect to the DMA registers and the
    # HP-port interconnect; no DSP (address counters, no multiplier)
    "zynq7": Resources(lut=1200, ff=1500),
    # no published Zynq UltraScale+ whole design to fit on: engineering estimate (the
    # Zynq-7000 composition plus the 64 -> 128-bit upsizer in front of the HP port)
    "zynqmp": Resources(lut=1600, ff=2200),
}
#: DSPs charged per sliding-window generator beyond the kernels' own: none (no in-sample
#: design to fit one on, and swg.h instantiates no multiplier)
DSP_PER_WINDOW = 0.0

#: per AXI-Stream port: one AXI DMA channel in direct register mode (no scatter-gather,
#: PG021), its burst buffer in block RAM and its AXI-Lite registers (ENGINEERING ESTIMATE:
#: PG021's resource table is not in the reference corpus)
SHELL_PER_PORT = Resources(lut=700, ff=1100, bram18=1)
