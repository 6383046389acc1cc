"""Pruning methods behind one interface, so a comparison is one config switch."""
from pinch.methods.base import PruningMethod
from pinch.methods.l1 import L1Sparse
from pinch.methods.magnitude import GlobalMagnitude, GradualMagnitude, IterativeMagnitude, UniformMagnitude
from pinch.methods.sspg import SelfPinching

METHODS = {
    cls.name: cls
    for cls in (SelfPinching, UniformMagnitude, GlobalMagnitude, GradualMagnitude, IterativeMagnitude, L1Sparse)
}

__all__ = ["METHODS", "PruningMethod"]
