"""The Vivado block design of an ``--arch rtl`` build: OUTDIR/scripts/bd.tcl and a Makefile.

The same templates as the dataflow path (``templates/scripts/bd_<ps>.tcl.j2``): the board's
project and board-file check, the processing system and its clock, one AXI DMA per stream
port sized for the bus (:func:`accelgen.vendor.dma_settings`), the address map, implementation
and the timing check. Only the accelerator cell differs: the unrolled core's Verilog and its
wrapper (:mod:`accelgen.rtl.axi`) are added as sources and instantiated as a module reference,
with the HLS IP's port names, so the driver and the DMA wiring are the dataflow path's.
"""

from __future__ import annotations

from typing import Any

from accelgen import vendor
from accelgen.templating import environment


def render_scripts(design: dict[str, Any], board: Any, clock_mhz: float, model_name: str) -> dict[str, str]:
    """scripts/bd.tcl and scripts/Makefile for the RTL design ``design`` (design.json) on ``board``."""
    ports = design["board"]
    values = {
        **vendor.script_values(vendor.board_facts(board), clock_mhz, model_name, ports["top"], int(ports["bus_bits"])),
        "inputs": ports["inputs"], "outputs": ports["outputs"],
        "rtl": {"top": ports["top"], "files": ports["files"], "bus_bits": ports["bus_bits"]},
    }  # fmt: skip
    env = environment()
    return {
        "scripts/bd.tcl": env.get_template(f"scripts/bd_{board.processing_system}.tcl.j2").render(**values),
        "scripts/Makefile": env.get_template("scripts/Makefile_rtl.j2").render(**values),
    }


def driver_hardware(design: dict[str, Any], graph: Any, part: str, clock_mhz: float) -> dict[str, Any]:
    """accel.json's ``hardware`` for an RTL build: the wrapper's ports, named after the model's
    hardware tensors as the dataflow path's are (the driver keys its inputs by tensor)."""
    from accelgen.errors import InternalError
    from accelgen.runtime.accelerator import Partition

    part_of = Partition(graph)
    ports = design["board"]
    sides = []
    for tensors, records in ((part_of.hw_inputs, ports["inputs"]), (part_of.hw_outputs, ports["outputs"])):
        if len(tensors) != len(records):
            raise InternalError(f"the RTL wrapper has {len(records)} port(s) for hardware tensors {list(tensors)}")
        side = []
        for name, record in zip(tensors, records):
            t = graph.tensors[name]
            if t.elements_per_sample() != record["elements"]:
                raise InternalError(f"port {record['name']} carries {record['elements']} codes, tensor has "
                                    f"{t.elements_per_sample()}")  # fmt: skip
            side.append({**record, "tensor": name, "shape": [int(d) for d in t.shape[1:]]})
        sides.append(side)
    return {"top": ports["top"], "bus_bits": ports["bus_bits"], "inputs": sides[0], "outputs": sides[1],
            "part": part, "clock_mhz": clock_mhz, "architecture": "rtl"}  # fmt: skip


def throughput(design: dict[str, Any], clock_mhz: float) -> dict[str, float]:
    """The board interface's rate: a sample per max(words in, words out) cycles (the core takes
    one per cycle), and the latency from the first input word to the last output word."""
    ports = design["board"]
    w_in = max(p["words_per_sample"] for p in ports["inputs"])
    w_out = max(p["words_per_sample"] for p in ports["outputs"])
    ii = max(w_in, w_out)
    # words in, the deserialiser's register, the core's stages, the serialiser's register, words out
    latency = w_in + 1 + int(design["latency_cycles"]) + w_out
    return {"ii_cycles": ii, "fps": clock_mhz * 1e6 / ii, "latency_cycles": latency,
            "latency_us": latency / clock_mhz}  # fmt: skip
