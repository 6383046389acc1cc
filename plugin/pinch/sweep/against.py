"""sspg against each baseline at the same target, run against run, over the seeds of both cells:
the comparison REPORT.md tabulates and the README counts, made in one place."""
from dataclasses import dataclass

from pinch.scoring.mapsswe import ALPHA
from pinch.sweep.seeds import pairs, seed_number, unanimous


def verdict(p, wer_base, wer_sspg):
    """One MAPSSWE test of sspg against a baseline, in words."""
    if p is None:
        return "n/a"
    if p >= ALPHA:
        return "no significant difference"
    return "sspg better" if wer_sspg < wer_base else "sspg worse"


@dataclass
class Cell:
    """One baseline, target and test set: every seed pair's ``(p, wer_base, wer_sspg)`` and the
    verdict over them by the seed rule."""

    toolkit: str
    label: str
    target: float
    test_set: str
    seeds: tuple  # (runs of the baseline, runs of sspg)
    results: list
    verdict: str


def against_baselines(sweep):
    """A Cell for every baseline, target and test set where both cells' runs have hypotheses."""
    for tk in sorted(sweep.runs):
        for label in sweep.labels(tk):
            if label.startswith("sspg"):
                continue
            for target in sweep.targets():
                base_runs = sorted(sweep.repeats(tk, label, target), key=seed_number)
                sspg_runs = sorted(sweep.repeats(tk, "sspg", target), key=seed_number)
                seed_pairs = pairs(base_runs, sspg_runs)
                for t in sweep.test_sets if seed_pairs else ():
                    results = [a.against(b, t) for a, b in seed_pairs]
                    if all(r is not None for r in results):
                        yield Cell(tk, label, target, t, (len(base_runs), len(sspg_runs)), results,
                                   unanimous(verdict(*r) for r in results))
