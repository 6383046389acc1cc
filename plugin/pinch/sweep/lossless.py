"""The largest lossless sparsity, as the paper reports it per method and test set."""
from dataclasses import dataclass, field

from pinch.sweep.seeds import all_lossless


@dataclass(frozen=True)
class Lossless:
    sparsity: float  # the largest lossless target (0.0: not even the smallest)
    complete: bool   # False: a run of the sweep is missing above it, so it is a lower bound
    smallest: float = field(default=0.0, compare=False)  # the sweep's smallest target

    def __str__(self):
        if self.sparsity == 0.0:  # no target lossless: below the smallest, or its run is missing
            return f"< {self.smallest:.0%}" if self.complete else f"? ({self.smallest:.0%} not run)"
        return f"{'>= ' if not self.complete else ''}{self.sparsity:.0%}"


def largest_lossless(sweep, toolkit, label, test_set, reference="dense"):
    """The largest target at which ``label``'s run is lossless on ``test_set`` against
    ``reference`` (MAPSSWE at the table's alpha), every smaller target of the sweep lossless too.

    Requiring the smaller targets too keeps one lucky run above a loss from counting: a method
    is lossless up to a sparsity, as the paper's "largest lossless sparsity" reads. A target
    with seeds is lossless only if every seed's run is (pinch.sweep.seeds)."""
    best, targets = 0.0, sweep.targets()
    smallest = targets[0] if targets else 0.0
    for target in targets:
        verdict = all_lossless(sweep.repeats(toolkit, label, target), test_set, reference)
        if verdict is None:
            return Lossless(best, complete=False, smallest=smallest)
        if not verdict:
            return Lossless(best, complete=True, smallest=smallest)
        best = target
    return Lossless(best, complete=True, smallest=smallest)


def lossless_table(sweep, reference="dense"):
    """``{toolkit: {label: {test_set: Lossless}}}`` over the whole sweep."""
    return {tk: {label: {t: largest_lossless(sweep, tk, label, t, reference) for t in sweep.test_sets}
                 for label in sweep.labels(tk)}
            for tk in sorted(sweep.runs)}
