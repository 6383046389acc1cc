"""flite (Festival-lite): a diphone voice (kal16) and statistical parametric (clustergen)
voices of real speakers (awb, rms, slt), all built into the Debian package."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .programs import require_program, run_to_audio

PROGRAM = PACKAGE = "flite"
# Mean F0 (Hz) of each voice as measured here (pyworld harvest): pitch +-1.0 scales it +-15%.
BASE_F0 = {"kal16": 95.0, "awb": 130.0, "rms": 110.0, "slt": 175.0}
PITCH_SPAN = 0.15


def check(voices) -> str:
    program = require_program(PROGRAM, PACKAGE)
    listed = subprocess.run([program, "-lv"], capture_output=True, text=True).stdout.split()
    for voice in voices:
        if voice not in listed:
            raise RuntimeError(f"{program} has no voice {voice!r} (it lists {' '.join(listed[2:])}); "
                               f"reinstall the Debian package {PACKAGE}")
    return program


def synthesize(text: str, voice: str, rate: float, pitch: float, sample_rate: int,
               program: str = PROGRAM) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        cmd = [program, "-voice", voice, "--setf", f"duration_stretch={1 / rate:.4f}",
               "--setf", f"int_f0_target_mean={BASE_F0[voice] * (1 + PITCH_SPAN * pitch):.1f}",
               "-t", text, "-o", str(wav)]
        return run_to_audio(cmd, wav, sample_rate, f"{program} voice {voice!r} text {text!r}")
