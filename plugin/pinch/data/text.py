"""Transcript normalisation: lower-case words of a-z and apostrophes only.

Why: WER must not count case or punctuation, and both toolkits then see the same text.
"""
from __future__ import annotations

import re

_ALLOWED = re.compile(r"^[a-z']+( [a-z']+)*$")


def normalize_text(text: str) -> str:
    """Lower-case, turn hyphens into spaces, drop other punctuation, squeeze spaces."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z' ]", "", text)
    return " ".join(w for w in text.split() if w.strip("'"))


def check_text(text: str, where: str) -> None:
    """Raise ValueError (naming `where`) unless `text` is normalised and non-empty."""
    if not text.strip():
        raise ValueError(f"{where}: empty transcript")
    if not _ALLOWED.match(text):
        raise ValueError(f"{where}: transcript {text!r} is not lower-case words of a-z and '")
