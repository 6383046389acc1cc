"""Measured sparsity: per gated tensor, over all gated weights, over the whole model."""
from dataclasses import dataclass


@dataclass
class SparsityReport:
    layers: dict  # qualified weight name -> fraction of zeros (as the forward sees it)
    gated: float  # over gated weights
    model: float  # over every parameter of the model (thresholds excluded)
    params: int  # all parameters (thresholds excluded)
    nonzero: int  # parameters left non-zero after masking
    gated_params: int

    def table(self):
        rows = [f"{'layer':60s} {'sparsity':>8s}"] + [f"{n:60s} {s:8.3f}" for n, s in self.layers.items()]
        rows.append(f"{'gated weights':60s} {self.gated:8.3f}")
        rows.append(f"{'whole model':60s} {self.model:8.3f}   ({self.nonzero:,} of {self.params:,} non-zero)")
        return "\n".join(rows)


def report_from_masks(named_masks, all_params):
    """Build a report from keep-masks of the gated tensors and the model's parameter tensors."""
    layers, gated, kept_gated = {}, 0, 0
    masked = {}
    for name, mask in named_masks:
        n, k = mask.numel(), int(mask.sum())
        layers[name] = 1.0 - k / n
        gated, kept_gated = gated + n, kept_gated + k
        masked[name] = k
    params = nonzero = 0
    for name, tensor in all_params:
        params += tensor.numel()
        nonzero += masked[name] if name in masked else int((tensor != 0).sum())
    return SparsityReport(
        layers=layers,
        gated=1.0 - kept_gated / gated if gated else 0.0,
        model=1.0 - nonzero / params if params else 0.0,
        params=params,
        nonzero=nonzero,
        gated_params=gated,
    )


def report_from_groups(named_groups, all_params):
    """The report of structured gates from ``(name, groups, kept groups, cost)`` per gate.

    A pruned group counts every weight that `pinch.shrink` removes with it (its cost: an FFN
    unit's ``w_1`` row and ``w_2`` column, a conv channel's whole path), most of which lie
    outside the tensor its gate sits on; counting the zeros of the gated tensors would report
    a conv channel as 3 of its 99 weights. So ``gated`` is the share of the governed weights
    that shrink removes (the target's measure) and ``nonzero`` what the shrunk model keeps,
    biases of removed groups aside; a gate whose groups were all pruned (a whole block's, under
    ``block_gates``) keeps one zeroed in the shrunk model, so one counts as kept. Per layer: the
    share of its groups pruned.
    """
    layers, governed, removed = {}, 0, 0
    for name, groups, kept, cost in named_groups:
        layers[name] = 1.0 - kept / groups
        governed, removed = governed + groups * cost, removed + min(groups - kept, groups - 1) * cost
    params = sum(tensor.numel() for _, tensor in all_params)
    return SparsityReport(
        layers=layers,
        gated=removed / governed if governed else 0.0,
        model=removed / params if params else 0.0,
        params=params,
        nonzero=params - removed,
        gated_params=governed,
    )
