"""The synthesizer programs: found on PATH, or a clear error saying what to install.

Why no installation here: the corpus is built by a recipe stage, and no stage may try the
network; tools/setup_env.sh installs the Debian packages once.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


def require_program(program: str, package: str) -> str:
    """Path of `program`; names the Debian package that provides it when it is missing."""
    path = shutil.which(program)
    if path:
        return path
    raise RuntimeError(
        f"{program} not found on PATH: the embedded corpus needs the Debian package {package} "
        f"(install it with `sudo apt-get install {package}`, or run tools/setup_env.sh)")


def run_to_audio(cmd: list[str], wav: Path, sample_rate: int, what: str) -> np.ndarray:
    """Run a synthesizer that writes `wav`; its audio as float32 mono at `sample_rate`."""
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
        raise RuntimeError(f"{what} failed: {proc.stderr.decode(errors='replace').strip()[-300:]}")
    return read_mono(wav, sample_rate)


def read_mono(source, sample_rate: int) -> np.ndarray:
    audio, sr = sf.read(source, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sr != sample_rate:
        audio = soxr.resample(audio, sr, sample_rate)
    return audio.astype(np.float32)
