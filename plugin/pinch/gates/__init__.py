"""Self-pinching gates: one learnable threshold per gated weight tensor."""
from pinch.gates.gate import Gate, GateLayout, gates_of, iter_gates
from pinch.gates.masking import kept_count, pinched

__all__ = ["Gate", "GateLayout", "gates_of", "iter_gates", "kept_count", "pinched"]
