"""Audio file checks: the one place that decides whether a file is usable audio."""
from __future__ import annotations

from pathlib import Path

import soundfile as sf


def check_audio(path: str, sample_rate: int | None, where: str = "") -> float:
    """Duration in seconds of a readable, non-empty mono file at `sample_rate`."""
    prefix = f"{where}: " if where else ""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{prefix}audio file {path} does not exist")
    try:
        info = sf.info(path)
    except Exception as e:  # soundfile raises several types for unreadable files
        raise ValueError(f"{prefix}audio file {path} is unreadable: {e}") from None
    if info.frames == 0:
        raise ValueError(f"{prefix}audio file {path} has zero length")
    if sample_rate is not None and info.samplerate != sample_rate:
        raise ValueError(f"{prefix}audio file {path} has sample rate {info.samplerate} Hz, "
                         f"expected {sample_rate} Hz")
    if info.channels != 1:
        raise ValueError(f"{prefix}audio file {path} has {info.channels} channels, expected mono")
    return info.frames / info.samplerate
