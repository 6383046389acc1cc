"""Kaldi-style data directories (wav.scp, text, utt2spk, spk2utt) as ESPnet reads them."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .audio import check_audio
from .reading import read_text
from .utterance import Utterance

KALDI_FILES = ("wav.scp", "text", "utt2spk", "spk2utt")


def write_kaldi_dir(directory: Path, utts: list[Utterance]) -> None:
    """Write the four files, sorted by id in byte order (LC_ALL=C sort)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    utts = sorted(utts, key=lambda u: u.utt_id)
    spk2utt: dict[str, list[str]] = defaultdict(list)
    for prev, u in zip([None] + utts, utts):
        if prev is not None and prev.speaker > u.speaker:
            raise ValueError(f"utterance ids {prev.utt_id!r} < {u.utt_id!r} but speakers "
                             f"{prev.speaker!r} > {u.speaker!r}: Kaldi needs utt2spk sorted "
                             f"by both columns (prefix utterance ids with the speaker id)")
        spk2utt[u.speaker].append(u.utt_id)
    _write_lines(directory / "wav.scp", [f"{u.utt_id} {u.audio}" for u in utts])
    _write_lines(directory / "text", [f"{u.utt_id} {u.text}" for u in utts])
    _write_lines(directory / "utt2spk", [f"{u.utt_id} {u.speaker}" for u in utts])
    _write_lines(directory / "spk2utt",
                 [f"{s} {' '.join(ids)}" for s, ids in sorted(spk2utt.items())])


def read_table(path: Path, allow_empty_value: bool = False) -> dict[str, str]:
    """`key value...` lines -> dict; errors name the file and line. An empty file is an
    error: no caller has anything to do with zero utterances but report a wrong result."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    table: dict[str, str] = {}
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split(maxsplit=1)  # Kaldi's tables take any whitespace after the key
        if not parts:
            raise ValueError(f"{path}:{lineno}: empty line")
        key, value = parts[0], parts[1].strip() if len(parts) > 1 else ""
        if not value and not allow_empty_value:
            raise ValueError(f"{path}:{lineno}: {key!r} has no value")
        if key in table:
            raise ValueError(f"{path}:{lineno}: duplicate id {key!r}")
        table[key] = value
    if not table:
        raise ValueError(f"{path}: empty: no entries")
    return table


def check_same_ids(primary: dict, other: dict, primary_path, other_path) -> list[str]:
    """Sorted ids of `primary`; `other` (read from other_path) must hold exactly these."""
    missing = sorted(set(primary) - set(other))
    if missing:
        raise ValueError(f"{other_path}: lacks {len(missing)} utterance(s) of {primary_path}, "
                         f"e.g. {missing[0]!r}")
    extra = sorted(set(other) - set(primary))
    if extra:
        raise ValueError(f"{other_path}: {len(extra)} utterance(s) not in {primary_path}, "
                         f"e.g. {extra[0]!r}")
    return sorted(primary)


def read_kaldi_dir(directory: Path, sample_rate: int | None = None) -> list[Utterance]:
    """Utterances of a Kaldi dir; every audio file is checked and its duration read."""
    directory = Path(directory)
    wavs = read_table(directory / "wav.scp")
    texts = read_table(directory / "text")
    spk = read_table(directory / "utt2spk")
    for name, table in (("text", texts), ("utt2spk", spk)):
        check_same_ids(wavs, table, directory / "wav.scp", directory / name)
    return [Utterance(k, spk[k], wavs[k], texts[k],
                      check_audio(wavs[k], sample_rate, f"{directory / 'wav.scp'}: {k}"))
            for k in sorted(wavs)]


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
