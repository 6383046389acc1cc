"""The voices of the embedded corpus and which splits may use them.

Why held-out sources: a model trained on one synthesizer recognises only that
synthesizer. Training mixes three synthesizers (espeak-ng, flite, festival); test_other is
spoken only by voices never heard in training: two new speakers (flite's rms, festival's
ked), a new kind of synthesis (festival's HTS voice) and new espeak-ng accents and
variants. A speaker is one voice of one synthesizer; its `source` label groups the
per-source WER.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import espeak, festival, flite

SYNTHESIZERS = {"espeak-ng": espeak, "flite": flite, "festival": festival}


@dataclass(frozen=True)
class Voice:
    synthesizer: str  # a key of SYNTHESIZERS
    name: str         # the synthesizer's own voice name
    speaker_id: str   # [a-z0-9]: prefixes utterance ids (Kaldi sorting)
    source: str       # label of the per-source WER breakdown


# espeak-ng language voice -> short speaker-id prefix.
ESPEAK_LANGS = {
    "en-us": "enus", "en-gb": "engb", "en-gb-scotland": "ensc", "en-gb-x-rp": "enrp",
    "en-029": "encb", "en-gb-x-gbclan": "enlc", "en-gb-x-gbcwmd": "enwm", "en-us-nyc": "enny",
}
SEEN_LANGS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029"]
UNSEEN_LANGS = ["en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc"]
SEEN_VARIANTS = ["m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3"]
UNSEEN_VARIANTS = ["m5", "m6", "f4", "f5"]


def _espeak(lang: str, variant: str) -> Voice:
    return Voice("espeak-ng", f"{lang}+{variant}", f"{ESPEAK_LANGS[lang]}{variant}", "espeak-ng")


SEEN_ESPEAK = [_espeak(l, v) for l in SEEN_LANGS for v in SEEN_VARIANTS]
# Unseen: a new accent with any variant, or a seen accent with a new variant.
UNSEEN_ESPEAK = [_espeak(l, v) for l in UNSEEN_LANGS for v in SEEN_VARIANTS + UNSEEN_VARIANTS] + [
    _espeak(l, v) for l in SEEN_LANGS for v in UNSEEN_VARIANTS]

FLITE_KAL = Voice("flite", "kal16", "flitekal", "flite-kal")
FLITE_AWB = Voice("flite", "awb", "fliteawb", "flite-awb")
FLITE_SLT = Voice("flite", "slt", "fliteslt", "flite-slt")
FESTIVAL_KAL = Voice("festival", "kal_diphone", "festkal", "festival-kal")
FLITE_RMS = Voice("flite", "rms", "fliterms", "flite-rms")
FESTIVAL_KED = Voice("festival", "ked_diphone", "festked", "festival-ked")
FESTIVAL_SLT_HTS = Voice("festival", "cmu_us_slt_arctic_hts", "festslthts", "festival-slt-hts")

# (voices, share of the split's utterances) per source; each source's voices are drawn evenly.
SEEN_SOURCES = [(SEEN_ESPEAK, 0.4), ([FLITE_KAL], 0.15), ([FLITE_AWB], 0.15),
                ([FLITE_SLT], 0.15), ([FESTIVAL_KAL], 0.15)]
HELD_OUT_SOURCES = [(UNSEEN_ESPEAK, 0.25), ([FLITE_RMS], 0.25), ([FESTIVAL_KED], 0.25),
                    ([FESTIVAL_SLT_HTS], 0.25)]
TTS_VOICE = _espeak("en-us", "m3")


def all_voices() -> list[Voice]:
    return [v for sources in (SEEN_SOURCES, HELD_OUT_SOURCES) for vs, _ in sources for v in vs]
