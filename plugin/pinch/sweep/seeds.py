"""The one rule by which a verdict about a cell of the sweep uses all of its seeds.

A cell (toolkit, method, target) may hold runs of several compression seeds; reporting the
best of them (or the first) lets a lucky seed decide. Stated once, applied everywhere:
"""
from collections import Counter

RULE = ("a claim about a cell with seeds holds only if it holds for every seed: lossless only "
        "if every seed's run is; sspg better (or worse) than a baseline only if it is so in every "
        "seed pair (seed against the same seed; a cell with one run pairs it with each of the "
        "other's); the cost at equal WER shown (or refuted) only if it is for every sspg seed, each "
        "seed's time paired with its own WER, against the baseline's runs of the same seed where it has "
        "them. Otherwise the verdict is mixed, with its counts.")


def seed_number(run):
    """The compression seed of a run; the run without a ``_seedN`` suffix is seed 0."""
    return 0 if run.seed is None else int(run.seed)


def pairs(runs_a, runs_b):
    """Seed pairs of two cells by the rule: the same seed on both sides, or a cell's single
    run against each of the other's runs."""
    if len(runs_a) == 1 or len(runs_b) == 1:
        return [(a, b) for a in runs_a for b in runs_b]
    by_seed = {seed_number(b): b for b in runs_b}
    return [(a, by_seed[seed_number(a)]) for a in runs_a if seed_number(a) in by_seed]


def unanimous(verdicts):
    """The verdict every seed gave; None where any is unknown; else "mixed (...)" with counts."""
    verdicts = list(verdicts)
    if not verdicts or any(v is None for v in verdicts):
        return None
    if len(set(verdicts)) == 1:
        return verdicts[0]
    counts = Counter(verdicts)
    return "mixed (" + ", ".join(f"{v} {n}" for v, n in sorted(counts.items())) + ")"


def all_lossless(runs, test_set, reference):
    """Lossless on ``test_set`` against ``reference`` for every run of a cell (None: unknown)."""
    verdicts = [run.lossless(test_set, reference) for run in runs]
    if not verdicts or any(v is None for v in verdicts):
        return None
    return all(verdicts)
