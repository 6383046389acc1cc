"""Tiny fake LibriSpeech and LJSpeech trees in their distributed layouts."""
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(seconds: float, sr: int, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# split -> speaker -> chapter -> [(utterance number, transcript, seconds)]
LIBRI = {
    "dev-clean": {"84": {"121123": [(0, "GO DO YOU HEAR", 0.5), (1, "BUT IN LESS THAN FIVE", 0.75)]},
                  "174": {"50561": [(0, "FORGOTTEN TOO THE NAME OF GILLIAN", 0.25)]}},
    "test-other": {"1688": {"142285": [(0, "THERE'S IRON THEY SAY", 0.5)]}},
}


def make_librispeech(root: Path, sr: int = 16000) -> Path:
    """ROOT/LibriSpeech/<split>/<spk>/<chap>/{<spk>-<chap>.trans.txt,*.flac}."""
    base = root / "LibriSpeech"
    for split, speakers in LIBRI.items():
        for spk, chapters in speakers.items():
            for chap, utts in chapters.items():
                d = base / split / spk / chap
                d.mkdir(parents=True)
                lines = []
                for n, text, seconds in utts:
                    utt = f"{spk}-{chap}-{n:04d}"
                    sf.write(d / f"{utt}.flac", tone(seconds, sr), sr)
                    lines.append(f"{utt} {text}\n")
                (d / f"{spk}-{chap}.trans.txt").write_text("".join(lines))
    return base


def make_ljspeech(root: Path, n: int = 6, sr: int = 22050) -> Path:
    """ROOT/LJSpeech-1.1/{metadata.csv,wavs/LJ001-000N.wav}."""
    base = root / "LJSpeech-1.1"
    (base / "wavs").mkdir(parents=True)
    lines = []
    for i in range(1, n + 1):
        utt = f"LJ001-{i:04d}"
        sf.write(base / "wavs" / f"{utt}.wav", tone(0.25 * i, sr), sr)
        lines.append(f"{utt}|Printing, in the only sense {i}.|Printing, in the only "
                     f"sense number-{i}.\n")
    (base / "metadata.csv").write_text("".join(lines))
    return base
