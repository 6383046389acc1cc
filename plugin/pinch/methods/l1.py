"""L1-regularised sparse training, then a global magnitude threshold."""
from pinch.methods.magnitude import _MaskedMagnitude
from pinch.methods.options import number


class L1Sparse(_MaskedMagnitude):
    """``loss + lam * mean|w|`` until ``prune_at`` of training, then prune to the target
    by global magnitude and fine-tune the rest of the way with the mask fixed."""

    name = "l1"
    options = {"lam": number(0, low_open=True), "prune_at": number(0, 1)}
    scope = "global"

    def __init__(self, targets, target_sparsity, clock, granularity="unstructured", lam=1e-2, prune_at=0.7):
        super().__init__(targets, target_sparsity, clock, granularity)
        self.lam, self.prune_step = float(lam), int(prune_at * clock.total_steps)
        self.gated = sum(t.weight.numel() for t in targets)

    def scheduled_sparsity(self):
        return self.target_sparsity if self.clock.step >= self.prune_step else 0.0

    def start(self):
        if self.scheduled_sparsity() > 0:
            self._prune(self.target_sparsity)

    def after_step(self):
        if self.scheduled_sparsity() > 0:
            super().after_step()

    def penalty(self):
        if self.scheduled_sparsity() > 0:
            return super().penalty()
        return self.lam * sum(t.weight.abs().sum() for t in self.targets) / self.gated
