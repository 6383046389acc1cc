"""Compression cost at equal WER: how long a baseline's pass must be to reach sspg's WER.

The paper claims one-pass sspg costs at least 25% less compression time than the iterative
methods at equal WER. At the sweep's equal budget the iterative methods end with a higher
WER, so their cost at sspg's WER is measured with longer passes of the same method (the
recipes' --compress_epochs): the time a baseline needs lies between its longest run that
stays significantly worse than sspg and its cheapest run that does not.
"""
from dataclasses import dataclass, field

from pinch.scoring.mapsswe import ALPHA
from pinch.sweep.seeds import seed_number, unanimous

CLAIM = 0.25  # the paper: at least this share of the iterative methods' compression time saved
ITERATIVE = ("gmp", "imp")


@dataclass
class Point:
    """One run of a baseline at one pass length, tested against sspg's run."""

    run: object
    tests: dict  # test set -> (p_value, wer_baseline, wer_sspg), None where hypotheses are missing

    @property
    def time_s(self):
        return self.run.row.get("wall_time_s")

    @property
    def reaches(self):
        """Not significantly worse than sspg on any test set (None: a test could not be made)."""
        if any(t is None for t in self.tests.values()):
            return None
        return all(p >= ALPHA or wer_base <= wer_sspg for p, wer_base, wer_sspg in self.tests.values())


@dataclass
class Comparison:
    """One of sspg's runs (a seed) at one target against one baseline's runs of every pass
    length there: the time and the WER of the same sspg run."""

    toolkit: str
    target: float
    label: str
    sspg: object
    points: list = field(default_factory=list)  # [Point], shortest pass first

    def bracket(self):
        """``(lo, hi)``: the baseline's time to reach sspg's WER lies in (lo, hi] seconds: hi is
        its cheapest run that reaches sspg (None: none does), lo its longest cheaper run that
        does not (0: none). Assumes a longer pass does not end worse."""
        timed = sorted((p for p in self.points if p.time_s), key=lambda p: p.time_s)
        reached = [p for p in timed if p.reaches]
        hi = reached[0].time_s if reached else None
        lo = max((p.time_s for p in timed if p.reaches is False and (hi is None or p.time_s < hi)), default=0)
        return lo, hi

    def worse_when_longer(self):
        """The first (shorter, longer) pair of runs where the longer pass ended with the higher
        mean WER: the bracket's assumption fails there, and nothing is decided."""
        def mean_wer(point):
            wer = point.run.row["wer"]
            return sum(wer.values()) / len(wer)
        for a, b in zip(self.points, self.points[1:]):
            if mean_wer(b) > mean_wer(a):
                return a, b
        return None

    def verdict(self):
        """"shown" when sspg took at most 1 - CLAIM of the least time the baseline can need to
        reach its WER, "refuted" when the baseline reached it in less than sspg / (1 - CLAIM),
        "open" in between (longer or intermediate passes would decide) or where a longer pass
        ended worse."""
        s_time = self.sspg.row.get("wall_time_s")
        lo, hi = self.bracket()
        if not s_time or self.worse_when_longer():
            return "open"
        if lo and s_time <= (1 - CLAIM) * lo:
            return "shown"
        if hi is not None and s_time > (1 - CLAIM) * hi:
            return "refuted"
        return "open"


def equal_wer(sweep, test_sets):
    """A Comparison per toolkit, target, baseline with longer passes and seed of sspg there."""
    out = []
    for tk in sorted(sweep.longer):
        for target in sorted({r.target for r in sweep.longer[tk]}):
            seeds = sorted(sweep.repeats(tk, "sspg", target), key=seed_number)
            labels = sorted({r.label for r in sweep.longer[tk] if r.target == target and r.label != "sspg"})
            for label in labels:
                longer = [r for r in sweep.longer[tk] if r.target == target and r.label == label]
                for sspg in seeds:
                    runs = seed_mates(sweep.repeats(tk, label, target), sspg)
                    for epochs in sorted({r.epochs for r in longer}):
                        runs += seed_mates([r for r in longer if r.epochs == epochs], sspg)
                    runs.sort(key=lambda r: r.row.get("steps") or 0)
                    points = [Point(r, {t: r.against(sspg, t) for t in test_sets}) for r in runs]
                    out.append(Comparison(tk, target, label, sspg, points))
    return out


def seed_mates(runs, sspg):
    """Of a baseline's runs at one pass length, the one to set against an sspg seed: the run of
    the same seed where there is one, else the unseeded run (the seed rule's single run)."""
    by_seed = {seed_number(r): r for r in runs}
    mate = by_seed.get(seed_number(sspg), by_seed.get(0))
    return [mate] if mate is not None else []


def cell_verdicts(comparisons):
    """``{(toolkit, target, label): verdict}`` over every sspg seed (pinch.sweep.seeds' rule)."""
    cells = {}
    for c in comparisons:
        cells.setdefault((c.toolkit, c.target, c.label), []).append(c.verdict())
    return {cell: unanimous(verdicts) for cell, verdicts in cells.items()}
