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
