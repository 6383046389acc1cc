"""Festival (text2wave): residual-LPC diphone voices (kal, ked) and an HTS voice (slt).

Festival ignores the speaking rate in its HTS voice and has no simple pitch control for
its diphone voices; the corpus's speed perturbation varies both for every source alike.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .programs import require_program, run_to_audio

PROGRAM, PACKAGE = "text2wave", "festival"
VOICE_PACKAGES = {"kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
                  "cmu_us_slt_arctic_hts": "festvox-us-slt-hts"}
VOICE_DIRS = Path("/usr/share/festival/voices")


def check(voices) -> str:
    program = require_program(PROGRAM, PACKAGE)
    for voice in voices:
        if not any(VOICE_DIRS.glob(f"*/{voice}")):
            package = VOICE_PACKAGES.get(voice, "festvox-*")
            raise RuntimeError(
                f"Festival voice {voice!r} is not installed (no {VOICE_DIRS}/*/{voice}): the "
                f"embedded corpus needs the Debian package {package} (install it with "
                f"`sudo apt-get install {package}`, or run tools/setup_env.sh)")
    return program


def synthesize(text: str, voice: str, rate: float, pitch: float, sample_rate: int,
               program: str = PROGRAM) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        txt, wav = Path(tmp) / "in.txt", Path(tmp) / "out.wav"
        txt.write_text(text + "\n")
        cmd = [program, "-eval", f"(voice_{voice})",
               "-eval", f"(Parameter.set 'Duration_Stretch {1 / rate:.4f})", str(txt), "-o", str(wav)]
        return run_to_audio(cmd, wav, sample_rate, f"festival voice {voice!r} text {text!r}")
