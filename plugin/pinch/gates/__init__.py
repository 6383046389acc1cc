"""Self-pinching gates: one learnable threshold per gated weight tensor."""
from pinch.gates.gate import Gate, GateLayout, gates_of, iter_gates
from pinch.gates.masking import hard_keep, pinch_weight, straight_through_pinched

__all__ = ["Gate", "GateLayout", "gates_of", "hard_keep", "iter_gates", "pinch_weight", "straight_through_pinched"]
