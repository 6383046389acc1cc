"""espeak-ng: a formant synthesizer with many accents and voice variants."""
from __future__ import annotations

import io
import subprocess

import numpy as np

from .programs import read_mono, require_program

PROGRAM = PACKAGE = "espeak-ng"
WPM = 165        # espeak-ng -s at rate 1.0
PITCH = 50       # espeak-ng -p (0-99) at pitch 0.0
PITCH_SPAN = 25  # -p change at pitch +-1.0


def check(voices) -> str:
    return require_program(PROGRAM, PACKAGE)


def synthesize(text: str, voice: str, rate: float, pitch: float, sample_rate: int,
               program: str = PROGRAM) -> np.ndarray:
    """Float32 mono waveform of `text` at `sample_rate` (espeak-ng speaks at 22050 Hz)."""
    proc = subprocess.run([program, "-v", voice, "-s", str(round(WPM * rate)),
                           "-p", str(round(PITCH + PITCH_SPAN * pitch)), "--stdout", text],
                          capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"{program} failed for voice {voice!r} text {text!r}: "
                           f"{proc.stderr.decode(errors='replace').strip()}")
    return read_mono(io.BytesIO(proc.stdout), sample_rate)
