"""One utterance: the single record both output formats are written from."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Utterance:
    utt_id: str      # sorts like its speaker (Kaldi: prefix it with the speaker id)
    speaker: str
    audio: str       # absolute path of the audio file
    text: str        # lower-case words, a-z ' and single spaces
    duration: float  # seconds
