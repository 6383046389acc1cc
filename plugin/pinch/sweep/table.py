"""The sweep's rows, read from a results table: references and runs of one corpus."""
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pinch.scoring.mapsswe import compare
from pinch.scoring.results import JSON_TABLE, read_rows
from pinch.scoring.training_record import details_path, read_details

REFERENCES = ("dense", "dense_finetune")
NEEDED = ("toolkit", "method", "wer")  # what every row of the sweep is tabulated and plotted by


@dataclass
class Run:
    """One compression run's row, with the label it is plotted and tabulated under."""

    row: dict
    table_dir: str
    _tests: dict = field(default_factory=dict, repr=False, compare=False)  # (other's system, test set) -> against()

    @cached_property
    def details(self):
        """Its hypotheses, layers and history (read once: several tables and figures use them)."""
        return read_details(self.table_dir, self.row)

    @property
    def label(self):
        structured = self.row.get("granularity") == "structured"
        variant = self.row.get("variant")
        return self.row["method"] + (" structured" if structured else "") + (f" ({variant})" if variant else "")

    @property
    def target(self):
        return float(self.row["target_sparsity"])

    @property
    def seed(self):
        return self.row.get("seed")

    @property
    def epochs(self):
        """Epochs of a longer pass (the recipes' --compress_epochs); None: the sweep's own length."""
        return self.row.get("epochs")

    def lossless(self, test_set, reference):
        sig = (self.row.get("mapsswe") or {}).get(reference, {}).get(test_set)
        return None if sig is None else bool(sig["lossless"])

    def p_value(self, test_set, reference):
        sig = (self.row.get("mapsswe") or {}).get(reference, {}).get(test_set)
        return None if sig is None else sig["p_value"]

    def against(self, other, test_set):
        """MAPSSWE between this run and ``other`` on their stored hypotheses: ``(p_value,
        wer_self, wer_other)``, or None without stored hypotheses. Kept: the report asks for
        the same pair in several sections, and each test runs sclite."""
        key = (other.row["system"], test_set)
        if key not in self._tests:
            self._tests[key] = self._against(other, test_set)
        return self._tests[key]

    def _against(self, other, test_set):
        da, db = self.details, other.details
        ref = details_path(self.table_dir, self.row).parent / f"ref_{test_set}.txt"
        if not (da and db and ref.is_file() and test_set in da["hyps"] and test_set in db["hyps"]):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "a.txt").write_text(da["hyps"][test_set], encoding="utf-8")
            (tmp / "b.txt").write_text(db["hyps"][test_set], encoding="utf-8")
            r = compare(ref, tmp / "a.txt", tmp / "b.txt", tmp / "out", name_a="run", name_b="other")
        return r["p_value"], r["wer_a"], r["wer_b"]


@dataclass
class Sweep:
    """Rows of one corpus: per toolkit its references (dense, dense control) and its runs."""

    corpus: str
    planned: tuple = ()  # the targets the sweep is to cover (runs missing there are reported as such)
    references: dict = field(default_factory=dict)  # toolkit -> {"dense": row, "dense_finetune": row}
    runs: dict = field(default_factory=dict)        # toolkit -> [Run]
    longer: dict = field(default_factory=dict)      # toolkit -> [Run]: longer passes, for the cost at equal WER
    test_sets: list = field(default_factory=list)

    def labels(self, toolkit=None):
        """Method labels in a stable order: sspg first, then the baselines as they first appear."""
        seen = []
        for tk in ([toolkit] if toolkit else sorted(self.runs)):
            for run in self.runs.get(tk, []):
                if run.label not in seen:
                    seen.append(run.label)
        return sorted(seen, key=lambda m: (not m.startswith("sspg"), m.startswith("sspg") and m != "sspg"))

    def targets(self):
        return sorted(set(self.planned) | {r.target for runs in self.runs.values() for r in runs})

    def base(self, toolkit, label, target):
        """The run without a seed of its own (or the first seeded one), if any."""
        found = [r for r in self.runs.get(toolkit, []) if r.label == label and r.target == target]
        return next((r for r in found if r.seed is None), found[0] if found else None)

    def repeats(self, toolkit, label, target):
        return [r for r in self.runs.get(toolkit, []) if r.label == label and r.target == target]

    def rows(self, toolkit, label):
        """The rows of every run of ``label`` (all targets and seeds)."""
        return [r.row for r in self.runs.get(toolkit, []) if r.label == label]


def corpus_of(row):
    for part in (row.get("notes") or "").split(","):
        part = part.split(";")[0].strip()
        if part.startswith("corpus="):
            return part.removeprefix("corpus=")
    return None


def load(table_dir, corpus, planned=()):
    """The ASR rows of ``corpus``; where a system appears twice for one dense model (a run
    redone with --overwrite true), the newer row counts. Every row of a toolkit must descend
    from one dense model: a sweep compares methods from the same starting point."""
    latest = {}
    for row in read_rows(table_dir):
        if row.get("task", "asr") != "asr" or corpus_of(row) != corpus:
            continue
        missing = [k for k in NEEDED if row.get(k) is None]
        if missing:
            raise ValueError(f"{Path(table_dir) / JSON_TABLE}: row {row['system']!r} has no {missing[0]!r}, "
                             f"which the sweep report needs")
        latest[(row.get("toolkit"), row["system"], row.get("dense_fingerprint"))] = row
    if not latest:
        raise ValueError(f"{table_dir}: no ASR rows of corpus {corpus!r}")
    sweep = Sweep(corpus, tuple(float(t) for t in planned))
    for (toolkit, _, dense), row in latest.items():
        if row.get("method") in REFERENCES:
            sweep.references.setdefault(toolkit, {})[row["method"]] = row
        elif row.get("target_sparsity") is not None:
            runs = sweep.runs if row.get("epochs") is None else sweep.longer
            runs.setdefault(toolkit, []).append(Run(row, table_dir))
    for toolkit in sorted(set(sweep.runs) | set(sweep.longer)):
        rows = sweep.runs.get(toolkit, []) + sweep.longer.get(toolkit, [])
        dense_rows = {r.row.get("dense_fingerprint") for r in rows} | {
            r.get("dense_fingerprint") for r in sweep.references.get(toolkit, {}).values()}
        if len(dense_rows) > 1:
            raise ValueError(f"{table_dir}: {toolkit} rows of corpus {corpus!r} descend from {len(dense_rows)} "
                             f"dense models ({sorted(map(str, dense_rows))}): a sweep compares runs from one; "
                             f"keep one dense model's rows in this table")
        if "dense" not in sweep.references.get(toolkit, {}):
            raise ValueError(f"{table_dir}: {toolkit} has runs of corpus {corpus!r} but no dense row")
    sweep.test_sets = sorted({t for rows in sweep.runs.values() for r in rows for t in r.row.get("wer", {})})
    return sweep
