"""Audio file checks: the one place that decides whether a file is usable audio."""
from __future__ import annotations

from pathlib import Path

import soundfile as sf


def audio_info(path: str, where: str = "") -> sf._SoundFileInfo:
    """soundfile's info of a readable, non-empty mono file, or a ValueError naming it."""
    prefix = f"{where}: " if where else ""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{prefix}audio file {path} does not exist")
    try:
        info = sf.info(path)
    except Exception as e:  # soundfile raises several types for unreadable files
        raise ValueError(f"{prefix}audio file {path} is unreadable: {' '.join(str(e).split())}") from None
    if info.frames == 0:
        raise ValueError(f"{prefix}audio file {path} has zero length")
    if info.channels != 1:
        raise ValueError(f"{prefix}audio file {path} has {info.channels} channels, expected mono")
    return info


def check_audio(path: str, sample_rate: int | None, where: str = "") -> float:
    """Duration in seconds of a readable, non-empty mono file at `sample_rate`."""
    info = audio_info(path, where)
    if sample_rate is not None and info.samplerate != sample_rate:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}audio file {path} has sample rate {info.samplerate} Hz, "
                         f"expected {sample_rate} Hz")
    return info.frames / info.samplerate
