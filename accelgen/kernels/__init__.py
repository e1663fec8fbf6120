"""Hardware kernels: one module per kernel, each with its legal foldings and cost model.

:data:`REGISTRY` maps IR op classes to the kernel modules that can implement them; the
first module whose ``matches(op)`` holds is the op's kernel (Conv: ``conv`` for
groups == 1, ``depthwise`` otherwise). Adding a layer type adds a module here and
touches nothing generic: the explorer only calls the :class:`~accelgen.kernels.base.Kernel`
functions.
"""

from __future__ import annotations

from accelgen import ir
from accelgen.errors import UnsupportedError
from accelgen.kernels import add, concat, conv, dense, depthwise, pool, requantize, reshape, resize, tt
from accelgen.kernels.base import Kernel

#: every kernel module, in the order the registry tries them
KERNELS: tuple[Kernel, ...] = (dense, tt, conv, depthwise, pool, add, requantize, concat, reshape, resize)

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
