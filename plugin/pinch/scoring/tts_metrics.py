"""TTS metrics between synthesized and reference speech: MCD (dB) and log-F0 RMSE.

Why this pipeline: it follows ESPnet's TTS evaluation (WORLD analysis with pyworld,
mel-cepstra with pysptk, frames paired by dynamic time warping because synthesized and
reference speech differ in timing). MCD = 10/ln10 * sqrt(2 * sum_d (c_d - c'_d)^2) over
d = 1..order (the energy term c0 is left out), averaged over the DTW path. log-F0 RMSE
is taken over path frames voiced in both signals.
"""
from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import pysptk
import pyworld
import soundfile as sf

from pinch.data.atomic import check_outputs, write_json_atomic
from pinch.data.kaldi import check_same_ids, read_table

METRICS = "tts_metrics.json"
FRAME_PERIOD_MS = 5.0
MCEP_ORDER = 24
# Frequency-warping factors approximating the mel scale (SPTK's usual values).
MCEP_ALPHA = {16000: 0.41, 22050: 0.455, 24000: 0.466, 44100: 0.544, 48000: 0.554}


def world_features(audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(f0 [frames], mel-cepstrum [frames, order + 1]) by WORLD analysis."""
    if sr not in MCEP_ALPHA:
        raise ValueError(f"no mel-cepstrum warping factor for sample rate {sr} Hz; "
                         f"supported: {sorted(MCEP_ALPHA)}")
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, t = pyworld.dio(x, sr, frame_period=FRAME_PERIOD_MS)
    f0 = pyworld.stonemask(x, f0, t, sr)
    sp = pyworld.cheaptrick(x, f0, t, sr)
    return f0, pysptk.sp2mc(sp, MCEP_ORDER, MCEP_ALPHA[sr])


def load_audio(path: str, where: str) -> tuple[np.ndarray, int]:
    """(mono float64 samples, sample rate); errors name `where`."""
    try:
        audio, sr = sf.read(path, dtype="float64")
    except Exception as e:  # soundfile raises several types for unreadable files
        raise ValueError(f"{where}: cannot read audio {path}: {e}") from None
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if len(audio) == 0:
        raise ValueError(f"{where}: audio {path} has zero length")
    if not np.isfinite(audio).all():
        raise ValueError(f"{where}: audio {path} holds non-finite samples (NaN or infinity)")
    return audio, sr


def compare_audio(ref: np.ndarray, syn: np.ndarray, sr: int) -> dict:
    """MCD (dB) and log-F0 RMSE between two waveforms at the same sample rate."""
    f0_r, mc_r = world_features(ref, sr)
    f0_s, mc_s = world_features(syn, sr)
    _, path = librosa.sequence.dtw(mc_r[:, 1:].T, mc_s[:, 1:].T, metric="euclidean")
    path = path[::-1]
    diff = mc_r[path[:, 0], 1:] - mc_s[path[:, 1], 1:]
    mcd = float(np.mean(10.0 / math.log(10.0) * np.sqrt(2.0 * np.sum(diff ** 2, axis=1))))
    f0_pairs = np.stack([f0_r[path[:, 0]], f0_s[path[:, 1]]], axis=1)
    voiced = f0_pairs[(f0_pairs > 0).all(axis=1)]
    rmse = float(np.sqrt(np.mean(np.subtract(*np.log(voiced).T) ** 2))) if len(voiced) else None
    return {"mcd": mcd, "log_f0_rmse": rmse, "voiced_frames": int(len(voiced)),
            "frames": int(len(path))}


def compare_files(ref_path: str, syn_path: str, where: str = "") -> dict:
    ref, sr_r = load_audio(ref_path, where or ref_path)
    syn, sr_s = load_audio(syn_path, where or syn_path)
    if sr_r != sr_s:
        raise ValueError(f"{where or syn_path}: synthesized audio is {sr_s} Hz, reference "
                         f"{ref_path} is {sr_r} Hz")
    return compare_audio(ref, syn, sr_r)


def score_tts(ref_scp: Path, syn_scp: Path, out: Path | None = None) -> dict:
    """Mean MCD and log-F0 RMSE over utterances listed in two wav.scp files.

    Writes OUT/tts_metrics.json (means and per-utterance values) when `out` is given.
    """
    if out is not None:
        check_outputs({f"--out's {METRICS}": Path(out) / METRICS},
                      {"--ref-scp": ref_scp, "--syn-scp": syn_scp})
    refs, syns = read_table(ref_scp), read_table(syn_scp)
    ids = check_same_ids(refs, syns, ref_scp, syn_scp)
    per_utt = {u: compare_files(refs[u], syns[u], f"{syn_scp}: {u}") for u in ids}
    f0 = [m["log_f0_rmse"] for m in per_utt.values() if m["log_f0_rmse"] is not None]
    result = {"utterances": len(per_utt),
              "mcd": float(np.mean([m["mcd"] for m in per_utt.values()])),
              "log_f0_rmse": float(np.mean(f0)) if f0 else None,
              "per_utterance": per_utt}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / METRICS, result)
    return result
