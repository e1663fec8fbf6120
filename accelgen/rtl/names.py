"""Verilog identifiers made from model names: sanitised, never raw."""

from __future__ import annotations

import re

# Verilog-2005 and SystemVerilog keywords a sanitised name could collide with
KEYWORDS = frozenset(
    """always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign
    default defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule
    endprimitive endspecify endtable endtask event for force forever fork function generate genvar
    highz0 highz1 if ifnone incdir include initial inout input instance integer join large liblist
    library localparam macromodule medium module nand negedge nmos nor noshowcancelled not notif0
    notif1 or output parameter pmos posedge primitive pull0 pull1 pulldown pullup
    pulsestyle_onevent pulsestyle_ondetect rcmos real realtime reg release repeat rnmos rpmos rtran
    rtranif0 rtranif1 scalared showcancelled signed small specify specparam strong0 strong1 supply0
    supply1 table task time tran tranif0 tranif1 tri tri0 tri1 triand trior trireg unsigned use
    uwire vectored wait wand weak0 weak1 while wire wor xnor xor bit byte logic int shortint longint
    class interface package program property sequence string struct typedef union enum void""".split()
)
MAX_LENGTH = 40


def identifier(name: str, prefix: str = "m") -> str:
    """A lower-case Verilog identifier from any string: [a-z0-9_], starts with a letter."""
    s = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:MAX_LENGTH].rstrip("_")
    if not s or not s[0].isalpha():
        s = f"{prefix}_{s}" if s else prefix
    if s in KEYWORDS:
        s = f"{s}_m"
    return s
