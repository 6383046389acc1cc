"""Training-data augmentation of the embedded corpus, as speech recipes apply it.

Speed perturbation (Kaldi's 0.9-1.1 resampling), additive noise of several colours at
realistic SNRs, reverberation with simulated rooms (pyroomacoustics' image-source
method), telephone band with G.711 mu-law coding, and gain. Every function is
deterministic given its arguments: the corpus plan draws the parameters from its seed.
"""
from __future__ import annotations

import numpy as np
import pyroomacoustics as pra
import soxr
import torch
import torchaudio.functional as F
from scipy import signal

NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power spectrum ~ 1/f^exponent
TELEPHONE_RATE = 8000
TELEPHONE_BAND = (300.0, 3400.0)


def change_speed(audio: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch together, like sox `speed`)."""
    return soxr.resample(audio, sample_rate * factor, sample_rate).astype(np.float32)


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise whose power spectrum falls as 1/f^exponent of the colour."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = f[1] if len(f) > 1 else 1.0
    noise = np.fft.irfft(spectrum / f ** (NOISE_COLOURS[colour] / 2), n)
    return noise / (np.sqrt(np.mean(noise ** 2)) or 1.0)


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator,
              colour: str = "white") -> np.ndarray:
    """Noise of `colour` scaled to `snr_db` relative to the signal power."""
    power = float(np.mean(audio.astype(np.float64) ** 2)) or 1e-10
    noise = coloured_noise(len(audio), colour, rng) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(audio + noise, -1.0, 1.0).astype(np.float32)


def room_impulse_responses(rng: np.random.Generator, n: int, sample_rate: int, used=None,
                           rt60: tuple[float, float] = (0.2, 0.7)) -> dict[int, np.ndarray]:
    """Impulse responses of `n` random shoebox rooms (3-8 x 3-6 x 2.5-3.5 m), source and
    microphone at random places at least 1 m from the walls, each scaled to a peak of 1.
    Only the rooms in `used` (default: all) are simulated; the others are still drawn, so
    room i is the same whichever rooms are used."""
    rirs = {}
    for i in range(n):
        dims = [rng.uniform(3, 8), rng.uniform(3, 6), rng.uniform(2.5, 3.5)]
        absorption, max_order = pra.inverse_sabine(rng.uniform(*rt60), dims)
        room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption),
                           max_order=max_order)
        room.add_source([rng.uniform(1, d - 1) for d in dims[:2]] + [rng.uniform(1.2, 1.8)])
        room.add_microphone([rng.uniform(1, d - 1) for d in dims[:2]] + [rng.uniform(0.8, 1.5)])
        if used is not None and i not in used:
            continue
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)
        rirs[i] = (rir / np.abs(rir).max()).astype(np.float32)
    return rirs


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """The audio as heard in the room: same length, same peak level."""
    wet = signal.fftconvolve(audio, rir)[: len(audio)]
    peak = np.abs(wet).max() or 1.0
    return (wet * (np.abs(audio).max() / peak)).astype(np.float32)


def telephone(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """A narrow-band call: 300-3400 Hz, 8 kHz, 8-bit mu-law (G.711), back at `sample_rate`."""
    sos = signal.butter(4, TELEPHONE_BAND, btype="bandpass", fs=sample_rate, output="sos")
    narrow = soxr.resample(signal.sosfilt(sos, audio), sample_rate, TELEPHONE_RATE)
    coded = torch.from_numpy(np.clip(narrow, -1.0, 1.0).astype(np.float32))
    decoded = F.mu_law_decoding(F.mu_law_encoding(coded, 256), 256).numpy()
    wide = soxr.resample(decoded, TELEPHONE_RATE, sample_rate)
    return _fit(wide, len(audio)).astype(np.float32)


def gain(audio: np.ndarray, db: float) -> np.ndarray:
    """Louder or softer by `db`; scaled down instead of clipping if the peak would pass 0.99."""
    out = audio * 10 ** (db / 20)
    peak = np.abs(out).max()
    return (out * (0.99 / peak) if peak > 0.99 else out).astype(np.float32)


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    """Exactly `n` samples (resampling round trips may add or drop one)."""
    return audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))
