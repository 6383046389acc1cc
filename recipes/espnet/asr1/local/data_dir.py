"""A Kaldi-style data dir as asr.sh takes it, read once for stage 1's check and stage 3's format.

The dir holds ``wav.scp``, ``text`` and ``utt2spk``, and optionally ``segments``
(``utt recording start end`` in seconds; end -1: to the end of the recording), in which
case ``wav.scp`` lists recordings and the other files utterances, as in Kaldi. An entry of
``wav.scp`` is an audio file soundfile reads (wav, flac, ...; a path relative to the recipe
dir, as asr.sh's) or a command whose output is one (``cmd ... |``). Every file is read as
Kaldi writes it (the id, whitespace, the value) in any order; the text is kept as written:
no case folding, no normalisation. Every problem is a ValueError that names its file (and
line, where there is one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pinch.data.audio import audio_info
from pinch.data.kaldi import read_table

REQUIRED = ("wav.scp", "text", "utt2spk")


def is_command(entry: str) -> bool:
    """A Kaldi wav.scp command (``cmd ... |``): its output is the audio."""
    return entry.rstrip().endswith("|")


@dataclass
class DataDir:
    path: Path
    wavs: dict[str, str]                    # wav.scp: recording (or utterance) id -> entry
    text: dict[str, str]                    # utterance id -> transcript, as written
    utt2spk: dict[str, str]
    segments: dict[str, tuple[str, float, float]] | None  # utt -> (recording, start, end)
    rate: int | None                        # the sample rate of its files (None: commands only)

    @property
    def utts(self) -> list[str]:
        return sorted(self.text)


def _check_ids(path: Path, ids: set[str], table: dict, name: str, of: str) -> None:
    missing = sorted(ids - set(table))
    if missing:
        raise ValueError(f"{path / name}: lacks {len(missing)} utterance(s) of {of}, e.g. {missing[0]!r}")
    extra = sorted(set(table) - ids)
    if extra:
        raise ValueError(f"{path / name}: {len(extra)} utterance(s) not in {of}, e.g. {extra[0]!r}")


def _read_segments(path: Path, wavs: dict[str, str]) -> dict[str, tuple[str, float, float]]:
    segments = {}
    for utt, value in read_table(path / "segments").items():
        parts = value.split()
        where = f"{path / 'segments'}: {utt!r}"
        if len(parts) != 3:
            raise ValueError(f"{where}: expected 'utt recording start end', got {len(parts) + 1} fields")
        rec = parts[0]
        try:
            start, end = float(parts[1]), float(parts[2])
        except ValueError:
            raise ValueError(f"{where}: start and end must be seconds, not {parts[1]!r} {parts[2]!r}") from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or (end != -1 and end <= start):
            raise ValueError(f"{where}: start {parts[1]} and end {parts[2]} are not a segment (0 <= start < end, or end -1)")
        if rec not in wavs:
            raise ValueError(f"{where}: recording {rec!r} is not in {path / 'wav.scp'}")
        segments[utt] = (rec, start, end)
    return segments


def read_data_dir(path: Path, scored: bool = False) -> DataDir:
    """The data dir at ``path``, checked: its files, ids, audio and, where the set is
    ``scored`` (a test set), transcripts that sclite can score (non-empty, no parentheses)."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: no such data dir (a Kaldi dir with {', '.join(REQUIRED)})")
    for name in REQUIRED:
        if not (path / name).is_file():
            raise ValueError(f"{path}: no {name} (a data dir needs {', '.join(REQUIRED)}; segments is optional)")
    wavs = read_table(path / "wav.scp")
    text = read_table(path / "text", allow_empty_value=not scored)
    utt2spk = read_table(path / "utt2spk")
    segments = _read_segments(path, wavs) if (path / "segments").is_file() else None
    utts = set(segments) if segments is not None else set(wavs)
    of = path / ("segments" if segments is not None else "wav.scp")
    _check_ids(path, utts, text, "text", of)
    _check_ids(path, utts, utt2spk, "utt2spk", of)
    if scored:
        for utt, words in text.items():
            if not words.strip():
                raise ValueError(f"{path / 'text'}: {utt!r} has an empty transcript; a test set's utterances are scored")
            if "(" in words or ")" in words:
                raise ValueError(f"{path / 'text'}: {utt!r} contains '(' or ')', which sclite's trn format reserves for the id")
    rate = first = None
    durations = {}
    for rec, entry in sorted(wavs.items()):
        if is_command(entry):
            continue  # run by stage 3, which writes its output as a file
        info = audio_info(entry, f"{path / 'wav.scp'}: {rec!r}")
        if rate is None:
            rate, first = info.samplerate, rec
        elif info.samplerate != rate:
            raise ValueError(f"{path / 'wav.scp'}: {rec!r} is {info.samplerate} Hz where {first!r} is {rate} Hz: "
                             f"one sample rate per set (the recipe does not resample)")
        durations[rec] = info.frames / info.samplerate
    for utt, (rec, start, _) in (segments or {}).items():
        if rec in durations and start >= durations[rec]:
            raise ValueError(f"{path / 'segments'}: {utt!r} starts at {start} s, after the end of {rec!r} "
                             f"({durations[rec]:.2f} s)")
    return DataDir(path, wavs, text, utt2spk, segments, rate)
