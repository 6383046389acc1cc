"""espeak-ng synthesis: the only speech source available without a download."""
from __future__ import annotations

import io
import os
import shutil
import subprocess

import numpy as np
import soundfile as sf
import soxr

ESPEAK = "espeak-ng"


def ensure_espeak(auto_install: bool = True) -> str:
    """Path of espeak-ng; installs the Debian package when missing and apt is usable."""
    path = shutil.which(ESPEAK)
    if path:
        return path
    apt = shutil.which("apt-get")
    why = "apt-get is not available"
    if auto_install and apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        proc = subprocess.run([apt, "install", "-y", "--no-install-recommends", ESPEAK],
                              capture_output=True, text=True)
        path = shutil.which(ESPEAK)
        if path:
            return path
        why = f"`apt-get install {ESPEAK}` failed: {proc.stderr.strip()[-300:]}"
    elif auto_install and apt:
        why = "installing it needs root"
    elif not auto_install:
        why = "automatic installation is disabled"
    raise RuntimeError(
        f"{ESPEAK} not found on PATH and cannot be installed ({why}); "
        f"install it with `sudo apt-get install {ESPEAK}` to build the embedded corpus"
    )


def synthesize(text: str, voice: str, rate: int, pitch: int, sample_rate: int,
               espeak: str = ESPEAK) -> np.ndarray:
    """Float32 mono waveform of `text` at `sample_rate` (espeak-ng speaks at 22050 Hz)."""
    proc = subprocess.run([espeak, "-v", voice, "-s", str(rate), "-p", str(pitch),
                           "--stdout", text], capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"{espeak} failed for voice {voice!r} text {text!r}: "
                           f"{proc.stderr.decode(errors='replace').strip()}")
    audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sr != sample_rate:
        audio = soxr.resample(audio, sr, sample_rate)
    return audio.astype(np.float32)
