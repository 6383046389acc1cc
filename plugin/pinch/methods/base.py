"""What every pruning method provides to the Pruner."""
import torch


class PruningMethod:
    """Base: a method owns its masks; the Pruner owns the step counter and reporting.

    Methods are built before the toolkit loads initial or resumed weights, so anything
    that reads weights happens in ``start`` (first training forward), never in ``__init__``.
    """

    name = ""
    options = {}  # extra keyword options the method accepts: name -> check (methods/options.py)

    def __init__(self, targets, target_sparsity, clock, granularity="unstructured"):
        if granularity != "unstructured":
            raise ValueError(f"method {self.name!r} supports only unstructured granularity, not {granularity!r}")
        self.targets, self.target_sparsity, self.clock = targets, target_sparsity, clock

    def start(self):
        """First training forward: weights are final (init_param / resume are done)."""

    def penalty(self):
        return torch.zeros((), device=self.targets[0].weight.device)

    def after_step(self):
        """Once per real optimizer update, after the step counter advanced."""

    def keep_masks(self):
        """``(qualified name, bool mask)`` for every gated weight, as the forward sees it."""
        for t in self.targets:
            yield t.qualified_name, t.weight.detach() != 0

    def measured_sparsity(self):
        """Sparsity over gated weights now; methods override it with a cached figure."""
        kept = total = 0
        for _, mask in self.keep_masks():
            kept, total = kept + int(mask.sum()), total + mask.numel()
        return 1.0 - kept / total

    def stats(self):
        return {}

    def finish(self):
        """Leave plain weights behind (masks written in, method state removed)."""
