"""NeMo JSON-lines manifests (audio_filepath, duration, text)."""
from __future__ import annotations

import json
from pathlib import Path

from .reading import read_text
from .utterance import Utterance

MANIFEST = "manifest.json"


def write_manifest(path: Path, utts: list[Utterance]) -> None:
    """One JSON object per line, in the same (sorted id) order as the Kaldi files."""
    with open(path, "w", encoding="utf-8") as f:
        for u in sorted(utts, key=lambda u: u.utt_id):
            f.write(json.dumps({"audio_filepath": u.audio, "duration": u.duration,
                                "text": u.text}) + "\n")


def read_manifest(path: Path) -> list[dict]:
    """Manifest entries; errors name the file, line and missing key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    entries = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: not JSON ({e})") from None
        if not isinstance(entry, dict):
            raise ValueError(f"{path}:{lineno}: not a JSON object")
        for key in ("audio_filepath", "duration", "text"):
            if key not in entry:
                raise ValueError(f"{path}:{lineno}: missing key {key!r}")
        entries.append(entry)
    return entries
