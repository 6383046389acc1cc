"""espeak-ng voices of the embedded corpus, split into seen and unseen speakers.

Why two sets: test_other must be spoken by voices never heard in training (the
LibriSpeech "other" condition). A speaker is one (language voice, variant) pair.
"""
from __future__ import annotations

from dataclasses import dataclass

# espeak-ng language voice -> short speaker-id prefix ([a-z0-9] only: Kaldi sorting).
LANGS = {
    "en-us": "enus",
    "en-gb": "engb",
    "en-gb-scotland": "ensc",
    "en-gb-x-rp": "enrp",
    "en-029": "encb",
    "en-gb-x-gbclan": "enlc",
    "en-gb-x-gbcwmd": "enwm",
    "en-us-nyc": "enny",
}
SEEN_LANGS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029"]
UNSEEN_LANGS = ["en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc"]
SEEN_VARIANTS = ["m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3"]
UNSEEN_VARIANTS = ["m5", "m6", "f4", "f5"]


@dataclass(frozen=True)
class Voice:
    lang: str
    variant: str

    @property
    def espeak_name(self) -> str:
        return f"{self.lang}+{self.variant}"

    @property
    def speaker_id(self) -> str:
        return f"{LANGS[self.lang]}{self.variant}"


SEEN_VOICES = [Voice(l, v) for l in SEEN_LANGS for v in SEEN_VARIANTS]
# Unseen: a new accent with any variant, or a seen accent with a new variant.
UNSEEN_VOICES = [Voice(l, v) for l in UNSEEN_LANGS for v in SEEN_VARIANTS + UNSEEN_VARIANTS] + [
    Voice(l, v) for l in SEEN_LANGS for v in UNSEEN_VARIANTS
]
TTS_VOICE = Voice("en-us", "m3")
