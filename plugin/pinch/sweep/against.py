"""Run against run at the same target, over the seeds of both cells: sspg against each
baseline (the comparison REPORT.md tabulates and the README counts), and each variant of a
method against the method without it (an option's A/B), made in one place."""
from dataclasses import dataclass

from pinch.scoring.mapsswe import ALPHA
from pinch.sweep.seeds import pairs, seed_number, unanimous


def verdict(p, wer_base, wer_other, name="sspg"):
    """One MAPSSWE test of ``name`` against a baseline, in words."""
    if p is None:
        return "n/a"
    if p >= ALPHA:
        return "no significant difference"
    return f"{name} better" if wer_other < wer_base else f"{name} worse"


@dataclass
class Cell:
    """One baseline, target and test set: every seed pair's ``(p, wer_base, wer_other)`` and the
    verdict over them by the seed rule; ``other`` is the label set against the baseline."""

    toolkit: str
    label: str
    target: float
    test_set: str
    seeds: tuple  # (runs of the baseline, runs of the other)
    results: list
    verdict: str
    other: str = "sspg"


def _cells(sweep, tk, label, other, name):
    for target in sweep.targets():
        base_runs = sorted(sweep.repeats(tk, label, target), key=seed_number)
        other_runs = sorted(sweep.repeats(tk, other, target), key=seed_number)
        seed_pairs = pairs(base_runs, other_runs)
        for t in sweep.test_sets if seed_pairs else ():
            results = [a.against(b, t) for a, b in seed_pairs]
            if all(r is not None for r in results):
                yield Cell(tk, label, target, t, (len(base_runs), len(other_runs)), results,
                           unanimous(verdict(*r, name) for r in results), other)


def against_baselines(sweep):
    """A Cell for every baseline, target and test set where both cells' runs have hypotheses."""
    for tk in sorted(sweep.runs):
        for label in sweep.labels(tk):
            if not label.startswith("sspg"):
                yield from _cells(sweep, tk, label, "sspg", "sspg")


def variants_against_their_method(sweep):
    """A Cell for every variant ``M (v)`` (`pinch.config.variant`) against ``M``, the same pass
    without the option, at each target both ran: the option's A/B."""
    for tk in sorted(sweep.runs):
        labels = sweep.labels(tk)
        for label in labels:
            method = label.split(" (", 1)[0]
            if method != label and method in labels:
                yield from _cells(sweep, tk, method, label, "variant")
