"""WER per source (a synthesizer voice, a corpus, a microphone): where a model fails.

A data dir may carry ``utt2source`` (Kaldi-style ``uttid label`` lines; the embedded
corpus writes one); when the reference text has one beside it, scoring adds sclite's WER
of each source's utterances to result.json, and RESULTS.md shows them.
"""
from __future__ import annotations

import re
from pathlib import Path

from pinch.data.kaldi import read_table

UTT2SOURCE = "utt2source"
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # a file name in the score dir


def sources_of(ref: Path, ids: list[str]) -> dict[str, list[str]]:
    """source -> ids, from the utt2source beside `ref`; {} where there is none."""
    path = Path(ref).parent / UTT2SOURCE
    if not path.is_file():
        return {}
    table = read_table(path)
    missing = [i for i in ids if i not in table]
    if missing:
        raise ValueError(f"{path}: no source for {len(missing)} utterance(s) of {ref}, "
                         f"e.g. {missing[0]!r}")
    bad = sorted({label for label in table.values() if not _LABEL.fullmatch(label)})
    if bad:
        raise ValueError(f"{path}: source label {bad[0]!r} is not a plain name "
                         f"(letters, digits and _ . + -)")
    groups: dict[str, list[str]] = {}
    for i in ids:
        groups.setdefault(table[i], []).append(i)
    return dict(sorted(groups.items()))


def by_source_markdown(scores: dict[str, dict]) -> list[str]:
    """A '### WER by source' table of the test sets whose result has a breakdown."""
    rows = [f"|{dset}|{source}|{r['utterances']}|{r['ref_tokens']}|{r['wer']:.2f}|"
            for dset, result in scores.items()
            for source, r in (result.get("by_source") or {}).items()]
    if not rows:
        return []
    return ["### WER by source", "", "|dataset|source|Snt|Wrd|WER|", "|---|---|---|---|---|",
            *rows, ""]
