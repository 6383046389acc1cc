"""LJSpeech (wavs/ + metadata.csv) from a local copy, for the TTS recipes.

metadata.csv lines are `id|raw text|normalized text`; the normalized text is used.
Splits follow ESPnet's ljspeech recipe: the last n_test utterances are `test`, the
n_dev before them `dev`, the rest `train`. Audio stays at its native 22050 Hz.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .atomic import atomic_output_dir
from .datadir import write_split
from .reading import read_text
from .text import normalize_text
from .utterance import Utterance
from .audio import check_audio

SAMPLE_RATE = 22050
SPEAKER = "LJ"


def find_ljspeech_root(src: Path) -> Path:
    """SRC or SRC/LJSpeech-1.1, whichever holds metadata.csv and wavs/."""
    src = Path(src).absolute()
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: LJSpeech directory does not exist")
    for root in (src, src / "LJSpeech-1.1"):
        if (root / "metadata.csv").is_file() and (root / "wavs").is_dir():
            return root
    raise ValueError(f"{src}: not an LJSpeech directory: expected metadata.csv and wavs/ "
                     f"in it or in {src / 'LJSpeech-1.1'}")


def read_ljspeech(root: Path) -> list[Utterance]:
    meta = root / "metadata.csv"
    utts = []
    for lineno, line in enumerate(read_text(meta).splitlines(), 1):
        where = f"{meta}:{lineno}"
        fields = line.split("|")
        if len(fields) != 3:
            raise ValueError(f"{where}: expected 3 '|'-separated fields, got {len(fields)}")
        utt_id, _, normalized = fields
        if not utt_id.startswith(f"{SPEAKER}"):
            raise ValueError(f"{where}: utterance id {utt_id!r} does not start with {SPEAKER}")
        text = normalize_text(normalized)
        if not text:
            raise ValueError(f"{where}: empty transcript for {utt_id!r}")
        audio = root / "wavs" / f"{utt_id}.wav"
        duration = check_audio(str(audio), SAMPLE_RATE, where)
        utts.append(Utterance(utt_id, SPEAKER, str(audio), text, round(duration, 4)))
    if not utts:
        raise ValueError(f"{meta}: no utterances")
    return sorted(utts, key=lambda u: u.utt_id)


def prepare_ljspeech(src: Path, out: Path, n_dev: int = 250, n_test: int = 250) -> dict:
    """Write OUT/{train,dev,test} (Kaldi dirs + manifests)."""
    utts = read_ljspeech(find_ljspeech_root(src))
    if n_dev < 1 or n_test < 1 or n_dev + n_test >= len(utts):
        raise ValueError(f"LJSpeech has {len(utts)} utterances: cannot hold out "
                         f"dev={n_dev} and test={n_test} and keep a train set")
    splits = {"train": utts[:-(n_dev + n_test)], "dev": utts[-(n_dev + n_test):-n_test],
              "test": utts[-n_test:]}
    stats = {"corpus": "ljspeech", "splits": {}}
    out = Path(out).absolute()
    with atomic_output_dir(out) as tmp:
        for split, part in splits.items():
            write_split(tmp / split, part, SAMPLE_RATE, check_audio_files=False)
            stats["splits"][split] = {"utterances": len(part),
                                      "hours": round(sum(u.duration for u in part) / 3600, 4)}
    print(f"pinch.data: wrote {out}: " + ", ".join(
        f"{k} {v['hours']:.3f} h" for k, v in stats["splits"].items()), file=sys.stderr)
    return stats
