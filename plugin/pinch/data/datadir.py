"""Write one split in both toolkits' formats from the same utterance list."""
from __future__ import annotations

from pathlib import Path

from .kaldi import write_kaldi_dir
from .manifest import MANIFEST, write_manifest
from .utterance import Utterance
from .validate import check_utterances


def write_split(directory: Path, utts: list[Utterance], sample_rate: int | None,
                check_audio_files: bool = True) -> None:
    """Validate, then write DIR/{wav.scp,text,utt2spk,spk2utt,manifest.json}."""
    if not utts:
        raise ValueError(f"{directory}: no utterances to write")
    check_utterances(utts, sample_rate, audio=check_audio_files)
    write_kaldi_dir(directory, utts)
    write_manifest(Path(directory) / MANIFEST, utts)
