"""Magnitude-pruning baselines: one-shot uniform and global, gradual (cubic), iterative.

Masks come from torch.nn.utils.prune's L1Unstructured ranking. Pruned weights are held
at zero by re-applying the mask after every optimizer update, which keeps the model's
parameter names untouched (torch's own prune hooks rename ``weight`` to ``weight_orig``)
and lets a resumed run recover its masks from the zeros in the checkpoint.
"""
import math

import torch
from torch.nn.utils import prune

from pinch.methods.base import PruningMethod
from pinch.methods.options import choice, number
from pinch.schedules import cubic_sparsity

SCOPES = ("layer", "global")


def magnitude_masks(weights, sparsity, scope):
    """Keep-masks pruning the smallest ``|w|``, per tensor or across all tensors."""
    if scope not in SCOPES:
        raise ValueError(f"unknown magnitude scope {scope!r}; use one of {SCOPES}")
    ranker = prune.L1Unstructured(amount=float(sparsity))
    if scope == "layer":
        return [ranker.compute_mask(w, torch.ones_like(w)).bool() for w in weights]
    flat = torch.cat([w.reshape(-1) for w in weights])
    keep = ranker.compute_mask(flat, torch.ones_like(flat)).bool()
    return [m.view_as(w) for m, w in zip(keep.split([w.numel() for w in weights]), weights)]


class _MaskedMagnitude(PruningMethod):
    """Shared machinery: a current mask per target, re-applied after every update."""

    scope = "layer"

    def __init__(self, targets, target_sparsity, clock, granularity="unstructured", scope=None):
        super().__init__(targets, target_sparsity, clock, granularity)
        self.scope = scope or self.scope
        if self.scope not in SCOPES:
            raise ValueError(f"unknown magnitude scope {self.scope!r}; use one of {SCOPES}")
        self.masks = None
        self.current = 0.0

    def scheduled_sparsity(self):
        raise NotImplementedError

    def start(self):
        self._prune(self.scheduled_sparsity())

    def after_step(self):
        wanted = self.scheduled_sparsity()
        if wanted != self.current:
            self._prune(wanted)
        else:
            self._apply()

    @torch.no_grad()
    def _prune(self, sparsity):
        self.current = sparsity
        self.masks = magnitude_masks([t.weight.detach() for t in self.targets], sparsity, self.scope)
        self._apply()
        self.measured = 1.0 - sum(int(m.sum()) for m in self.masks) / sum(m.numel() for m in self.masks)

    def measured_sparsity(self):
        return self.measured if self.masks is not None else super().measured_sparsity()

    @torch.no_grad()
    def _apply(self):
        for t, m in zip(self.targets, self.masks):
            t.weight.mul_(m)

    def stats(self):
        return {"scheduled_sparsity": self.current}


class UniformMagnitude(_MaskedMagnitude):
    """UMP: the same ratio in every gated tensor, by ``|w|``, once, then fine-tune."""

    name = "ump"

    def scheduled_sparsity(self):
        return self.target_sparsity


class GlobalMagnitude(UniformMagnitude):
    """One threshold across all gated tensors, once, then fine-tune."""

    name = "global_magnitude"
    scope = "global"


class GradualMagnitude(_MaskedMagnitude):
    """GMP (Zhu & Gupta 2017): cubic ramp from 0 to the target between two steps."""

    name = "gmp"
    options = {"begin": number(0, 1), "end": number(0, 1), "frequency": number(0, 1, low_open=True),
               "scope": choice(*SCOPES)}

    def __init__(self, targets, target_sparsity, clock, granularity="unstructured",
                 begin=0.0, end=0.75, frequency=0.02, scope=None):
        super().__init__(targets, target_sparsity, clock, granularity, scope)
        total = clock.total_steps
        self.begin, self.end = int(begin * total), max(int(end * total), int(begin * total) + 1)
        self.frequency = max(int(frequency * total), 1)

    def scheduled_sparsity(self):
        return cubic_sparsity(self.clock.step, self.target_sparsity, self.begin, self.end, self.frequency)


class IterativeMagnitude(_MaskedMagnitude):
    """IMP: ``rounds`` equal-ratio prune events spread over training, fine-tuning between."""

    name = "imp"
    options = {"rounds": number(1, integer=True), "scope": choice(*SCOPES)}

    def __init__(self, targets, target_sparsity, clock, granularity="unstructured", rounds=4, scope=None):
        super().__init__(targets, target_sparsity, clock, granularity, scope)
        self.rounds = int(rounds)

    def scheduled_sparsity(self):
        done = min(self.clock.step * self.rounds // max(self.clock.total_steps, 1), self.rounds - 1) + 1
        # Each round keeps the same fraction of what is left: (1 - s)^(k / rounds) kept.
        return 1.0 - math.pow(1.0 - self.target_sparsity, done / self.rounds)
