"""Mild distortions for test_other: speed change and additive noise.

Why: LibriSpeech "other" is harder than "clean"; here unseen voices plus a speed
perturbation (as sox `speed`) or white noise at a moderate SNR play that role.
"""
from __future__ import annotations

import numpy as np
import soxr


def change_speed(audio: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch together, like sox `speed`)."""
    return soxr.resample(audio, sample_rate * factor, sample_rate).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise scaled to `snr_db` relative to the signal power."""
    power = float(np.mean(audio.astype(np.float64) ** 2)) or 1e-10
    noise = rng.standard_normal(audio.shape) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(audio + noise, -1.0, 1.0).astype(np.float32)
