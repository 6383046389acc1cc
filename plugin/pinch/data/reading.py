"""Text and JSON inputs read so that a bad file is named in one line.

Why: Python's own errors ("'utf-8' codec can't decode byte 0xe9") do not say which of a
command's files is at fault, and ``json`` reads NaN and Infinity, which no result may hold.
"""
from __future__ import annotations

import json
from pathlib import Path

from .atomic import non_finite


def read_text(path: Path) -> str:
    """The UTF-8 text of `path`; ValueError naming the file if it is not UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})") from None


def read_json(path: Path):
    """The JSON value in `path`; ValueError naming the file if it is not JSON or holds a
    NaN or an infinity (and naming that field)."""
    try:
        value = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    found = non_finite(value)
    if found:
        raise ValueError(f"{path}: {found[0]} is {json.dumps(found[1])}, not a finite number")
    return value
