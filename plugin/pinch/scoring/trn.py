"""Kaldi `uttid words` text files to sclite trn files, as ESPnet's scoring does.

Why trn: sclite is the reference scorer the papers report; ESPnet writes
`words (spk-uttid)` lines and scores characters as space-separated tokens with the
word boundary as `<space>`.
"""
from __future__ import annotations

from pathlib import Path

from pinch.data.kaldi import read_table

SPACE = "<space>"


def read_transcripts(path: Path, allow_empty: bool) -> dict[str, str]:
    """uttid -> text; references must be non-empty, hypotheses may be empty."""
    table = read_table(path, allow_empty_value=allow_empty)
    for lineno, (utt, text) in enumerate(table.items(), 1):
        if "(" in text or ")" in text:
            raise ValueError(f"{path}:{lineno}: utterance {utt!r} contains '(' or ')', "
                             f"which the trn format reserves for the id")
    return table


def to_chars(text: str) -> str:
    return " ".join(SPACE if c == " " else c for c in " ".join(text.split()))


def write_trn(path: Path, table: dict[str, str], ids: list[str], unit: str) -> None:
    """`tokens (spk-uttid)` lines; the speaker is the utterance id up to its first '-'."""
    with open(path, "w", encoding="utf-8") as f:
        for utt in ids:
            text = table[utt] if unit == "word" else to_chars(table[utt])
            f.write(f"{text} ({utt.split('-')[0]}-{utt})\n")
