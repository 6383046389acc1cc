"""ASR-CER of synthesized speech: intelligibility of TTS output judged by an ASR model.

Why a callable: the ASR model is one this project trained (ESPnet or NeMo); the recipe
passes its decoder in, and scoring stays toolkit-independent.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from pinch.data.atomic import check_outputs
from pinch.data.kaldi import read_table

from .sclite import score

Transcribe = Callable[[Sequence[str]], Sequence[str]]


def asr_cer(syn_scp: Path, ref_text: Path, transcribe: Transcribe, out: Path) -> dict:
    """Transcribe every file of `syn_scp`, write OUT/hyp and score it against `ref_text`.

    `transcribe` maps a list of audio paths to their transcripts (same order).
    Returns the sclite result (its "cer" is the ASR-CER, "wer" the ASR-WER).
    """
    out = Path(out)
    hyp_path = out / "hyp"
    check_outputs({"the hypotheses": hyp_path}, {"the wav.scp": syn_scp, "the reference text": ref_text})
    out.mkdir(parents=True, exist_ok=True)
    wavs = read_table(syn_scp)
    ids = sorted(wavs)
    hyps = list(transcribe([wavs[u] for u in ids]))
    if len(hyps) != len(ids):
        raise ValueError(f"transcribe returned {len(hyps)} transcripts for {len(ids)} "
                         f"files of {syn_scp}")
    hyp_path.write_text("".join(f"{u} {' '.join(str(h).split())}".rstrip() + "\n"
                                for u, h in zip(ids, hyps)), encoding="utf-8")
    return score(ref_text, hyp_path, out)
