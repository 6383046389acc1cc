"""The embedded corpus: English speech synthesised locally with espeak-ng.

Why: nothing can be downloaded here, yet every recipe needs a real ASR task. The corpus
is a pure function of (GENERATOR_VERSION, seed, size); a cached copy with a matching
stamp (corpus.json) is reused, any other copy is rebuilt. Layout under OUT:
  <split>/{wav.scp,text,utt2spk,spk2utt,manifest.json,synthesis.jsonl}
      for split in train, dev, test_clean, test_other
  tts/<split>/... for split in train, dev, test (one voice)
  wav/...  tts/wav/...  corpus.json (the stamp)  stats.json (hours per split, timing)
Sentences of train never occur in dev or the test sets; test_other is spoken by voices
never used in train and is sped up/slowed down (x0.9, x1.1) or has stronger white noise
(20-30 dB SNR instead of the 35-50 dB floor of every ASR split); speaking rate and pitch
are drawn from the same ranges in every split. The TTS view is clean.
"""
from __future__ import annotations

import json
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from .atomic import atomic_output_dir
from .audio import check_audio
from .augment import add_noise, change_speed
from .datadir import write_split
from .espeak import ensure_espeak, synthesize
from .grammar import GENERATOR_VERSION, generate_sentences
from .utterance import Utterance
from .validate import check_data_dir
from .voices import SEEN_VOICES, TTS_VOICE, UNSEEN_VOICES, Voice

SAMPLE_RATE = 16000
ASR_SPLITS = ("train", "dev", "test_clean", "test_other")
TTS_SPLITS = ("train", "dev", "test")
STAMP = "corpus.json"
SYNTHESIS = "synthesis.jsonl"   # per split: how each utterance was made (for analysis)
RATE_WPM = (135, 195)           # espeak-ng -s, every split
PITCH = (25, 75)                # espeak-ng -p, every split
# Why SPEED and SNR_DB: espeak-ng's voices are few and its silence is digital zero; a
# model trained on that breaks on any other voice or the faintest noise. Resampling by
# up to 5% (a vocal-tract-length change) and a noise floor make training data vary
# like recordings do.
SPEED = (0.95, 1.05)            # train, dev, test_clean
SNR_DB = (35.0, 50.0)           # every ASR split: white-noise floor
OTHER_SPEEDS = (0.9, 1.1)       # test_other: half sped up/slowed down beyond SPEED ...
OTHER_SNR_DB = (20.0, 30.0)     # ... half with stronger (still mild) white noise
STATS = "stats.json"


@dataclass(frozen=True)
class CorpusSize:
    """Utterances per split (ASR view) and per TTS split (TTS view)."""
    train: int
    dev: int
    test_clean: int
    test_other: int
    tts_train: int
    tts_dev: int
    tts_test: int

    def __post_init__(self):
        for k, v in asdict(self).items():
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"corpus size {k!r} must be a positive integer, got {v!r}")
        if self.tts_train > self.train or self.tts_dev > self.dev or \
                self.tts_test > self.test_clean:
            raise ValueError("TTS splits reuse ASR sentences: tts_train <= train, "
                             "tts_dev <= dev, tts_test <= test_clean")


SIZES = {
    "tiny": CorpusSize(24, 8, 8, 8, 8, 4, 4),
    "default": CorpusSize(5000, 300, 300, 300, 1000, 50, 50),
}


@dataclass(frozen=True)
class _Job:
    utt_id: str
    speaker: str
    text: str
    voice: str
    rate: int
    pitch: int
    speed: float      # 1.0 = unchanged
    snr_db: float     # 0 = no noise
    noise_seed: int
    rel_path: str     # audio path relative to OUT


def _plan(seed: int, size: CorpusSize) -> dict[str, list[_Job]]:
    """Every utterance of the corpus, drawn deterministically from `seed`."""
    rng = random.Random(seed)
    counts = {"test_other": size.test_other, "test_clean": size.test_clean,
              "dev": size.dev, "train": size.train}
    sentences = generate_sentences(sum(counts.values()), rng)
    by_split: dict[str, list[str]] = {}
    start = 0
    for split, n in counts.items():
        by_split[split] = sentences[start:start + n]
        start += n
    plan: dict[str, list[_Job]] = {}
    index = 0
    for split in ASR_SPLITS:
        jobs = []
        for i, text in enumerate(by_split[split]):
            index += 1
            voice = rng.choice(UNSEEN_VOICES if split == "test_other" else SEEN_VOICES)
            rate, pitch = rng.randint(*RATE_WPM), rng.randint(*PITCH)
            speed = round(rng.uniform(*SPEED), 3)
            snr = round(rng.uniform(*SNR_DB), 1)
            if split == "test_other":
                if rng.random() < 0.5:
                    speed = rng.choice(OTHER_SPEEDS)
                else:
                    snr = round(rng.uniform(*OTHER_SNR_DB), 1)
            jobs.append(_job(voice, f"{split}-{i:05d}", text, rate, pitch, speed, snr,
                             index, f"wav/{split}"))
        plan[split] = jobs
    for split, source, n in (("train", "train", size.tts_train),
                             ("dev", "dev", size.tts_dev),
                             ("test", "test_clean", size.tts_test)):
        plan[f"tts/{split}"] = [
            _job(TTS_VOICE, f"tts_{split}-{i:05d}", text, 165, 50, 1.0, 0.0, 0,
                 f"tts/wav/{split}")
            for i, text in enumerate(by_split[source][:n])]
    return plan


def _job(voice: Voice, suffix: str, text: str, rate: int, pitch: int, speed: float,
         snr: float, noise_seed: int, folder: str) -> _Job:
    utt_id = f"{voice.speaker_id}-{suffix}"
    return _Job(utt_id, voice.speaker_id, text, voice.espeak_name, rate, pitch, speed,
                snr, noise_seed, f"{folder}/{utt_id}.wav")


def _render(job: _Job, root: Path, espeak: str, seed: int) -> float:
    """Synthesise one job into root/rel_path; returns its duration in seconds."""
    audio = synthesize(job.text, job.voice, job.rate, job.pitch, SAMPLE_RATE, espeak)
    if job.speed != 1.0:
        audio = change_speed(audio, job.speed, SAMPLE_RATE)
    if job.snr_db:
        audio = add_noise(audio, job.snr_db, np.random.default_rng([seed, job.noise_seed]))
    path = root / job.rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
    return check_audio(str(path), SAMPLE_RATE, f"utterance {job.utt_id}")


def _render_all(all_jobs: list[_Job], root: Path, espeak: str, seed: int, jobs: int,
                progress: bool) -> dict[str, float]:
    """Run the jobs on `jobs` threads (each mostly waits on an espeak-ng process).

    On the first failure the queued jobs are cancelled instead of run to the end.
    """
    pool = ThreadPoolExecutor(max(1, jobs))
    durations = {}
    try:
        with tqdm(total=len(all_jobs), desc="espeak-ng", unit="utt", disable=not progress,
                  file=sys.stderr) as bar:
            for job, dur in zip(all_jobs, pool.map(lambda j: _render(j, root, espeak, seed),
                                                   all_jobs)):
                durations[job.utt_id] = round(dur, 4)
                bar.update()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return durations


def resolve_size(size: str | CorpusSize) -> CorpusSize:
    if isinstance(size, CorpusSize):
        return size
    if size not in SIZES:
        raise ValueError(f"unknown corpus size {size!r}; choose one of {sorted(SIZES)}")
    return SIZES[size]


def corpus_stamp(seed: int, size: CorpusSize) -> dict:
    """What the corpus is a function of; a cached copy is reused only if this matches."""
    return {"corpus": "embedded", "generator_version": GENERATOR_VERSION, "seed": seed,
            "sample_rate": SAMPLE_RATE, "size": asdict(size)}


def prepare_embedded(out: Path, seed: int = 0, size: str | CorpusSize = "default",
                     jobs: int = 2, progress: bool = True) -> dict:
    """Build (or reuse) the embedded corpus in `out`; returns the stats dict."""
    size = resolve_size(size)
    out = Path(out).absolute()
    stamp = corpus_stamp(seed, size)
    stamp_path = out / STAMP
    if stamp_path.is_file():
        if json.loads(stamp_path.read_text()) == stamp:
            print(f"pinch.data: {out} is up to date (generator v{GENERATOR_VERSION}, "
                  f"seed {seed})", file=sys.stderr)
            return json.loads((out / STATS).read_text())
        print(f"pinch.data: {out} was built with other settings; rebuilding",
              file=sys.stderr)
    elif out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists, is not empty and has no {STAMP}: not an embedded "
                         f"corpus written by pinch; refusing to replace it")
    espeak = ensure_espeak()
    plan = _plan(seed, size)
    all_jobs = [j for js in plan.values() for j in js]
    t0 = time.time()
    with atomic_output_dir(out) as tmp:
        durations = _render_all(all_jobs, tmp, espeak, seed, jobs, progress)
        seconds = time.time() - t0
        stats = {"generator_version": GENERATOR_VERSION, "seed": seed,
                 "generation_seconds": round(seconds, 1), "jobs": jobs, "splits": {}}
        train_vocab = {w for j in plan["train"] for w in j.text.split()}
        for split, split_jobs in plan.items():
            utts = [Utterance(j.utt_id, j.speaker, str(out / j.rel_path), j.text,
                              durations[j.utt_id]) for j in split_jobs]
            write_split(tmp / split, utts, SAMPLE_RATE, check_audio_files=False)
            (tmp / split / SYNTHESIS).write_text("".join(json.dumps(
                {"utt_id": j.utt_id, "voice": j.voice, "rate": j.rate, "pitch": j.pitch,
                 "speed": j.speed, "snr_db": j.snr_db}) + "\n"
                for j in sorted(split_jobs, key=lambda j: j.utt_id)))
            stats["splits"][split] = _split_stats(utts, train_vocab)
        (tmp / STATS).write_text(json.dumps(stats, indent=2) + "\n")
        (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    for split in plan:
        check_data_dir(out / split, SAMPLE_RATE)
    print(f"pinch.data: wrote {out} in {seconds:.1f} s: " + ", ".join(
        f"{k} {v['hours']:.3f} h" for k, v in stats["splits"].items()), file=sys.stderr)
    return stats


def _split_stats(utts: list[Utterance], train_vocab: set[str]) -> dict:
    words = [w for u in utts for w in u.text.split()]
    return {
        "utterances": len(utts),
        "hours": round(sum(u.duration for u in utts) / 3600, 4),
        "speakers": len({u.speaker for u in utts}),
        "words": len(words),
        "vocabulary": len(set(words)),
        "oov_rate_vs_train": round(sum(w not in train_vocab for w in words) / len(words), 4),
    }
