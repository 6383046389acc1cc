"""Thresholds in the optimizer: their own parameter groups, without weight decay.

Weight decay pulls every threshold toward zero, against the sparsity penalty; the
paper's authors train thresholds with none. Toolkits build their optimizers from all of a
model's parameters, often with decay (NeMo's AdamW configs), so each adapter passes its
parameter groups through here before (NeMo) or right after (espnet2) building the optimizer.
"""
from pinch.gates.gate import THRESHOLD_SUFFIX


def thresholds_without_weight_decay(param_groups, model):
    """``param_groups`` with each group's thresholds moved to a copy of it with weight_decay 0."""
    thresholds = {id(p) for n, p in model.named_parameters() if n.endswith(THRESHOLD_SUFFIX)}
    out, moved = [], []
    for group in param_groups:
        params = list(group["params"])
        gates = [p for p in params if id(p) in thresholds]
        out.append({**group, "params": [p for p in params if id(p) not in thresholds]})
        if gates:
            moved.append({**group, "params": gates, "weight_decay": 0.0})
    return [g for g in out if g["params"]] + moved
