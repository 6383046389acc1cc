"""NeMo JSON-lines manifests (audio_filepath, duration, text; optional offset).

Read as NeMo 3.0 reads them: blank lines are skipped, and a relative ``audio_filepath`` is
looked up in the manifest's folder first (NeMo's ``get_full_path``: used where that file
exists and the path is shorter than 255 characters; otherwise the path as written, ``~``
expanded, i.e. relative to the working directory). An ``offset`` (seconds) makes the entry
the segment ``[offset, offset + duration)`` of a longer recording, as NeMo's ASR datasets read
it. Every error names the manifest and its line.

Utterance ids (the Kaldi-style hypothesis and reference files that pinch scores): a
``manifest.json`` inside a Kaldi data dir whose ``wav.scp`` lists each of its audio files
once keeps that dir's ids; any other manifest gets ids from its audio file names (a segment
with NeMo's ``-<offset cs>-<duration cs>`` suffix, ``cs`` hundredths of a second, as NeMo's
lhotse adapter names cuts; a name that repeats gets its line number appended).

    python -m pinch.data.manifest check train.json           # validate; files must exist
    python -m pinch.data.manifest text test.json data/test/text   # references, text as written
    python -m pinch.data.manifest from-kaldi dump/raw/test        # dump/raw/test/manifest.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .reading import read_text
from .utterance import Utterance

MANIFEST = "manifest.json"
PATH_LIMIT = 255  # NeMo's audio_file_len_limit: longer relative paths are taken as written
REQUIRED = ("audio_filepath", "duration", "text")


def write_manifest(path: Path, utts: list[Utterance]) -> None:
    """One JSON object per line, in the same (sorted id) order as the Kaldi files."""
    with open(path, "w", encoding="utf-8") as f:
        for u in sorted(utts, key=lambda u: u.utt_id):
            f.write(json.dumps({"audio_filepath": u.audio, "duration": u.duration,
                                "text": u.text}) + "\n")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def manifest_lines(path: Path) -> list[tuple[int, dict]]:
    """``(line number, entry)`` of every non-blank line, each checked: a JSON object with a
    non-empty string ``audio_filepath``, a positive ``duration``, a string ``text`` and, if
    present, a non-negative ``offset``. Errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    entries = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue  # as NeMo's readers
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: not JSON ({e})") from None
        if not isinstance(entry, dict):
            raise ValueError(f"{path}:{lineno}: not a JSON object")
        for key in REQUIRED:
            if key not in entry:
                raise ValueError(f"{path}:{lineno}: missing key {key!r}")
        if not isinstance(entry["audio_filepath"], str) or not entry["audio_filepath"].strip():
            raise ValueError(f"{path}:{lineno}: audio_filepath must be a non-empty string, "
                             f"not {json.dumps(entry['audio_filepath'])}")
        if not _number(entry["duration"]) or entry["duration"] <= 0:
            raise ValueError(f"{path}:{lineno}: duration must be a positive number of seconds, "
                             f"not {json.dumps(entry['duration'])}")
        if not isinstance(entry["text"], str):
            raise ValueError(f"{path}:{lineno}: text must be a string, not {json.dumps(entry['text'])}")
        offset = entry.get("offset")
        if offset is not None and (not _number(offset) or offset < 0):
            raise ValueError(f"{path}:{lineno}: offset must be a non-negative number of seconds, "
                             f"not {json.dumps(offset)}")
        entries.append((lineno, entry))
    if not entries:
        raise ValueError(f"{path}: empty: no utterances")
    return entries


def read_manifest(path: Path) -> list[dict]:
    """Manifest entries as written (see ``manifest_lines`` for the checks)."""
    return [entry for _, entry in manifest_lines(path)]


def resolve_audio(audio: str, manifest: Path) -> str:
    """The audio path NeMo 3.0 reads for ``audio`` in ``manifest`` (its ``get_full_path``)."""
    if len(audio) < PATH_LIMIT and not os.path.isabs(audio):
        candidate = os.path.join(os.path.dirname(str(manifest)), audio)
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return os.path.expanduser(audio)


@dataclass(frozen=True)
class Entry:
    """One utterance of a manifest, its audio path resolved."""
    where: str            # "manifest:line", for messages
    utt_id: str
    audio: str
    duration: float
    text: str
    offset: float | None  # None: the whole file
    raw: dict             # the line as written


def set_name(manifest: Path) -> str:
    """A test set's name: the manifest's file stem, or its folder's name for ``manifest.json``."""
    manifest = Path(manifest)
    return manifest.parent.resolve().name if manifest.stem == Path(MANIFEST).stem else manifest.stem


def _kaldi_ids(manifest: Path, lines: list[tuple[int, dict]]) -> list[str] | None:
    """The ids of the Kaldi data dir around a ``manifest.json`` whose wav.scp lists each of its
    audio files once; else None."""
    scp = manifest.parent / "wav.scp"
    if manifest.name != MANIFEST or not scp.is_file():
        return None
    from .kaldi import read_table

    try:
        table = read_table(scp)
    except ValueError:
        return None
    by_path = Counter(table.values())
    ids = {path: utt for utt, path in table.items()}
    audio = [entry["audio_filepath"] for _, entry in lines]
    if any(by_path[a] != 1 for a in audio) or len(set(audio)) != len(audio):
        return None
    return [ids[a] for a in audio]


def _derived_ids(lines: list[tuple[int, dict]]) -> list[str]:
    bases = []
    for _, entry in lines:
        stem = re.sub(r"[\s()]+", "_", Path(entry["audio_filepath"]).stem) or "utt"
        if entry.get("offset") is not None:
            stem += f"-{round(entry['offset'] * 1e2):06d}-{round(entry['duration'] * 1e2):06d}"
        bases.append(stem)
    count = Counter(bases)
    return [b if count[b] == 1 else f"{b}-{lineno}" for b, (lineno, _) in zip(bases, lines)]


def manifest_entries(manifest: Path, check_files: bool = True) -> list[Entry]:
    """The utterances of ``manifest`` in its order, ids given (see the module's docstring);
    ``check_files``: every audio file must exist."""
    manifest = Path(manifest)
    lines = manifest_lines(manifest)
    ids = _kaldi_ids(manifest, lines) or _derived_ids(lines)
    seen = {}
    out = []
    for (lineno, entry), utt in zip(lines, ids):
        where = f"{manifest}:{lineno}"
        if utt in seen:
            raise ValueError(f"{where}: utterance id {utt!r} repeats line {seen[utt]}")
        seen[utt] = lineno
        audio = resolve_audio(entry["audio_filepath"], manifest)
        if check_files and not os.path.isfile(audio):
            raise FileNotFoundError(f"{where}: audio file {audio} does not exist")
        out.append(Entry(where, utt, audio, float(entry["duration"]), entry["text"],
                         None if entry.get("offset") is None else float(entry["offset"]), entry))
    return out


def check_segment(entry: Entry) -> None:
    """The audio of ``entry`` is readable mono and, for a segment, long enough to hold it."""
    from .audio import check_audio

    length = check_audio(entry.audio, None, entry.where)
    if entry.offset is not None and entry.offset + entry.duration > length + 0.01:
        raise ValueError(f"{entry.where}: offset {entry.offset} + duration {entry.duration} s is past the "
                         f"end of {entry.audio} ({length:.3f} s)")


def reference_text(entries: list[Entry]) -> str:
    """Kaldi ``uttid words`` lines sorted by id, the text as written (whitespace collapsed):
    the references sclite scores. Every text must have a word and no '(' or ')' (which the
    trn format reserves for the id)."""
    lines = []
    for e in sorted(entries, key=lambda e: e.utt_id):
        words = " ".join(e.text.split())
        if not words:
            raise ValueError(f"{e.where}: empty text: a test utterance needs its transcript")
        if "(" in words or ")" in words:
            raise ValueError(f"{e.where}: text contains '(' or ')', which sclite's trn format reserves for the id")
        lines.append(f"{e.utt_id} {words}\n")
    return "".join(lines)


def kaldi_manifest(data_dir: Path) -> Path:
    """``DATA_DIR/manifest.json`` of a formatted Kaldi data dir (wav.scp of audio files, text):
    what a NeMo model transcribes, with the dir's utterance ids (see above). Why: the TTS recipes'
    cross-toolkit ASR judge reads ESPnet's dirs with NeMo."""
    import soundfile

    from .atomic import write_text_atomic
    from .kaldi import read_table

    data_dir = Path(data_dir)
    if (data_dir / "segments").exists():
        raise ValueError(f"{data_dir}: has a segments file; format the dir first (one audio file per utterance)")
    wavs = read_table(data_dir / "wav.scp")
    texts = read_table(data_dir / "text", allow_empty_value=True) if (data_dir / "text").is_file() else {}
    lines = []
    for utt, audio in sorted(wavs.items()):
        if audio.rstrip().endswith("|"):
            raise ValueError(f"{data_dir}/wav.scp: {utt} is a command; format the dir first (audio files)")
        try:
            duration = soundfile.info(audio).duration
        except (RuntimeError, OSError) as err:
            raise ValueError(f"{data_dir}/wav.scp: {utt}: {audio} cannot be read ({err})") from None
        lines.append(json.dumps({"audio_filepath": audio, "duration": round(duration, 4), "text": texts.get(utt, "")}))
    out = data_dir / MANIFEST
    write_text_atomic(out, "".join(f"{line}\n" for line in lines))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pinch.data.manifest", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="validate manifests (keys, types, audio files exist)")
    c.add_argument("manifests", nargs="+")
    t = sub.add_parser("text", help="write the Kaldi text (references) of a test manifest")
    t.add_argument("manifest")
    t.add_argument("out")
    k = sub.add_parser("from-kaldi", help="write DATA_DIR/manifest.json from its wav.scp and text")
    k.add_argument("data_dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "from-kaldi":
            print(f"{kaldi_manifest(Path(args.data_dir))}: written")
        elif args.command == "check":
            for m in args.manifests:
                entries = manifest_entries(m)
                seconds = sum(e.duration for e in entries)
                length = f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"
                print(f"{m}: {len(entries)} utterances, {length}")
        else:
            from .atomic import check_outputs, write_text_atomic

            check_outputs({"OUT": Path(args.out)}, {"MANIFEST": Path(args.manifest)})
            text = reference_text(manifest_entries(args.manifest))
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(Path(args.out), text)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.data.manifest: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
