"""``python -m accelgen.csim``: print the ap_types directory, or run a design's C testbench."""

from __future__ import annotations

import argparse
import json
import sys

from accelgen.csim.testbench import run_csim
from accelgen.csim.toolchain import ap_types_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m accelgen.csim", description="C simulation helpers")
    parser.add_argument("--ap-types", action="store_true", help="print the ap_types include directory")
    parser.add_argument("outdir", nargs="?", help="run the C testbench of this generated design")
    args = parser.parse_args(argv)
    if args.ap_types:
        print(ap_types_dir())
        return 0
    if args.outdir:
        result = run_csim(args.outdir)
        print(json.dumps(result, indent=1))
        return 0 if result["passed"] else 1
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
