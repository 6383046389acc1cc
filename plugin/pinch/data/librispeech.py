"""LibriSpeech from a local copy in its distributed layout (the paper's setup).

Layout: SRC[/LibriSpeech]/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
listing `<speaker>-<chapter>-<n> WORDS`, next to `<speaker>-<chapter>-<n>.flac`.
The flac files are referenced in place (soundfile reads them in both toolkits).
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

LIBRISPEECH_SPLITS = ("train_clean_100", "dev_clean", "dev_other", "test_clean", "test_other")
SAMPLE_RATE = 16000


def find_librispeech_root(src: Path) -> Path:
    """SRC itself or SRC/LibriSpeech, whichever holds split folders."""
    src = Path(src).absolute()
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: LibriSpeech directory does not exist")
    for root in (src, src / "LibriSpeech"):
        if any((root / s.replace("_", "-")).is_dir() for s in LIBRISPEECH_SPLITS):
            return root
    raise ValueError(f"{src}: not a LibriSpeech directory: expected one of "
                     f"{[s.replace('_', '-') for s in LIBRISPEECH_SPLITS]} in it or in "
                     f"{src / 'LibriSpeech'}")


def read_librispeech_split(split_dir: Path) -> list[Utterance]:
    """Utterances of one split folder, with every file checked."""
    trans_files = sorted(split_dir.glob("*/*/*.trans.txt"))
    if not trans_files:
        raise ValueError(f"{split_dir}: no <speaker>/<chapter>/*.trans.txt files "
                         f"(wrong layout?)")
    utts = []
    for trans in trans_files:
        speaker = trans.parent.parent.name
        for lineno, line in enumerate(read_text(trans).splitlines(), 1):
            where = f"{trans}:{lineno}"
            utt_id, _, words = line.strip().partition(" ")
            if not utt_id.startswith(f"{speaker}-{trans.parent.name}-"):
                raise ValueError(f"{where}: utterance id {utt_id!r} does not belong to "
                                 f"speaker {speaker} chapter {trans.parent.name}")
            text = normalize_text(words)
            if not text:
                raise ValueError(f"{where}: empty transcript for {utt_id!r}")
            audio = trans.parent / f"{utt_id}.flac"
            duration = check_audio(str(audio), SAMPLE_RATE, where)
            utts.append(Utterance(utt_id, speaker, str(audio), text, round(duration, 4)))
    return utts


def prepare_librispeech(src: Path, out: Path, splits: list[str] | None = None) -> dict:
    """Write OUT/<split> for each split present (or each of `splits`, all required)."""
    root = find_librispeech_root(src)
    wanted = list(splits) if splits else [
        s for s in LIBRISPEECH_SPLITS if (root / s.replace("_", "-")).is_dir()]
    for s in wanted:
        if s not in LIBRISPEECH_SPLITS:
            raise ValueError(f"unknown LibriSpeech split {s!r}; known: {LIBRISPEECH_SPLITS}")
        if not (root / s.replace("_", "-")).is_dir():
            raise FileNotFoundError(f"{root / s.replace('_', '-')}: split folder missing")
    data = {s: read_librispeech_split(root / s.replace("_", "-")) for s in wanted}
    stats = {"corpus": "librispeech", "src": str(root), "splits": {}}
    out = Path(out).absolute()
    with atomic_output_dir(out) as tmp:
        for split, utts in data.items():
            write_split(tmp / split, utts, SAMPLE_RATE, check_audio_files=False)
            stats["splits"][split] = {
                "utterances": len(utts),
                "hours": round(sum(u.duration for u in utts) / 3600, 4),
                "speakers": len({u.speaker for u in utts})}
    print(f"pinch.data: wrote {out}: " + ", ".join(
        f"{k} {v['hours']:.3f} h" for k, v in stats["splits"].items()), file=sys.stderr)
    return stats
