"""Checks on audio, transcripts and written data directories.

Why: a bad corpus (missing file, empty audio, wrong rate, empty text, ids that do not
match) otherwise fails deep inside a toolkit; here it fails early, naming the culprit.
"""
from __future__ import annotations

import math
from pathlib import Path

from .audio import check_audio
from .kaldi import KALDI_FILES, read_kaldi_dir, read_table
from .manifest import MANIFEST, read_manifest
from .text import check_text
from .utterance import Utterance


def check_utterances(utts: list[Utterance], sample_rate: int | None,
                     audio: bool = True) -> None:
    """Every utterance: unique id, normalised non-empty text, valid audio (if `audio`)."""
    seen: set[str] = set()
    for u in utts:
        if u.utt_id in seen:
            raise ValueError(f"duplicate utterance id {u.utt_id!r}")
        seen.add(u.utt_id)
        check_text(u.text, f"utterance {u.utt_id}")
        if audio:
            check_audio(u.audio, sample_rate, f"utterance {u.utt_id}")


def check_data_dir(directory: Path, sample_rate: int | None = None) -> list[Utterance]:
    """Validate a written split: Kaldi files sorted and consistent, manifest identical."""
    directory = Path(directory)
    for name in KALDI_FILES:
        keys = list(read_table(directory / name))
        if keys != sorted(keys):
            raise ValueError(f"{directory / name}: not sorted (LC_ALL=C)")
    utts = read_kaldi_dir(directory, sample_rate)
    check_utterances(utts, sample_rate, audio=False)
    spk2utt = read_table(directory / "spk2utt")
    by_spk = {s: sorted(u.utt_id for u in utts if u.speaker == s) for s in spk2utt}
    for s, ids in spk2utt.items():
        if ids.split() != by_spk[s]:
            raise ValueError(f"{directory / 'spk2utt'}: speaker {s!r} disagrees with utt2spk")
    if set(spk2utt) != {u.speaker for u in utts}:
        raise ValueError(f"{directory / 'spk2utt'}: speakers disagree with utt2spk")
    entries = read_manifest(directory / MANIFEST)
    if len(entries) != len(utts):
        raise ValueError(f"{directory / MANIFEST}: {len(entries)} entries, "
                         f"Kaldi dir has {len(utts)} utterances")
    for lineno, (e, u) in enumerate(zip(entries, utts), 1):
        if e["audio_filepath"] != u.audio or e["text"] != u.text or not math.isclose(
                e["duration"], u.duration, abs_tol=1e-3):
            raise ValueError(f"{directory / MANIFEST}:{lineno}: disagrees with the Kaldi "
                             f"files on utterance {u.utt_id!r}")
    return utts
