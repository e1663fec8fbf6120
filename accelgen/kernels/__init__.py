"""Hardware kernels: one module per kernel, each with its legal foldings and cost model.

:data:`REGISTRY` maps IR op classes to the kernel modules that can implement them; the
first module whose ``matches(op)`` holds is the op's kernel (Conv: ``depthwise`` for
one channel per group and as many groups as channels, ``conv`` otherwise). Adding a layer
type adds a module here and touches nothing generic: the modules are found by name, the
explorer only calls the :class:`~accelgen.kernels.base.Kernel` functions, and code
generation calls a module's ``build(ctx, op, ident)`` when it has one.
"""

from __future__ import annotations

import importlib
import pkgutil

from accelgen import ir
from accelgen.errors import UnsupportedError
from accelgen.kernels.base import Kernel


def _discover() -> tuple[Kernel, ...]:
    """Every module of this package that declares ``OPS`` is a kernel (sorted by name; the
    kernels' ``matches`` are disjoint, so the order does not choose between them)."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "OPS") and hasattr(module, "matches"):
            found.append(module)
    return tuple(found)


#: every kernel module, in the order the registry tries them
KERNELS: tuple[Kernel, ...] = _discover()

REGISTRY: dict[type[ir.Op], tuple[Kernel, ...]] = {}
for _kernel in KERNELS:
    for _op_class in _kernel.OPS:
        REGISTRY.setdefault(_op_class, ())
        REGISTRY[_op_class] += (_kernel,)


def kernel_for(op: ir.Op) -> Kernel:
    """The kernel module implementing ``op``; UnsupportedError when there is none."""
    for kernel in REGISTRY.get(type(op), ()):
        if kernel.matches(op):
            return kernel
    raise UnsupportedError([f"{op.kind} '{op.source or op.name}': no hardware kernel implements it"])


def kernel_name(kernel: Kernel) -> str:
    return kernel.__name__.rsplit(".", 1)[-1]
