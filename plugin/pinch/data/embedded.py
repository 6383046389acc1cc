"""The embedded corpus: English speech synthesised locally by three synthesizers.

Why: nothing can be downloaded here, yet every recipe needs a real ASR task whose models
hear more than one synthesizer. The corpus is a pure function of (GENERATOR_VERSION,
seed, size); a cached copy with a matching stamp (corpus.json) is reused, any other copy
is rebuilt. Layout under OUT:
  <split>/{wav.scp,text,utt2spk,spk2utt,utt2source,manifest.json,synthesis.jsonl}
      for split in train, dev, test_clean, test_other
  tts/<split>/... for split in train, dev, test (one voice)
  wav/...  tts/wav/...  corpus.json (the stamp)  stats.json (hours per split and source)
Sentences of train never occur in dev or the test sets. train, dev and test_clean are
spoken by the seen sources (synth/voices.py), test_other only by held-out ones, so
test_clean measures new sentences and test_other new sources. Only train is augmented
(augment.py: speed, reverberation, coloured noise, telephone band, gain); dev and both
test sets have mild speed changes and a faint noise floor, like every ASR split. The TTS
view is clean.
"""
from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from .atomic import atomic_output_dir
from .audio import check_audio
from .augment import (NOISE_COLOURS, add_noise, change_speed, gain, reverberate,
                      room_impulse_responses, telephone)
from .datadir import write_split
from .grammar import GENERATOR_VERSION, generate_sentences
from .synth.voices import HELD_OUT_SOURCES, SEEN_SOURCES, SYNTHESIZERS, TTS_VOICE, Voice
from .utterance import Utterance
from .validate import check_data_dir

SAMPLE_RATE = 16000
ASR_SPLITS = ("train", "dev", "test_clean", "test_other")
TTS_SPLITS = ("train", "dev", "test")
STAMP = "corpus.json"
SYNTHESIS = "synthesis.jsonl"   # per split: how each utterance was made (for analysis)
UTT2SOURCE = "utt2source"       # per ASR split: the source label of each utterance
STATS = "stats.json"
RATE = (0.82, 1.18)             # speaking rate (1 = the voice's own), every split
PITCH = (-1.0, 1.0)             # pitch change where the synthesizer has one, every split
SPEED = (0.95, 1.05)            # dev and test sets: resampling (a vocal-tract-length change)
FLOOR_SNR_DB = (35.0, 50.0)     # every ASR split: a faint white-noise floor, no digital silence


@dataclass(frozen=True)
class TrainAugmentation:
    """Probability and range of each augmentation of a training utterance."""
    speed: tuple = (0.9, 1.1)
    reverb_p: float = 0.3
    rooms: int = 16               # simulated rooms (RT60 0.2-0.7 s), one drawn per utterance
    noise_p: float = 0.5
    noise_snr_db: tuple = (10.0, 30.0)
    telephone_p: float = 0.15
    gain_db: tuple = (-12.0, 6.0)


AUGMENTATION = TrainAugmentation()


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
    synthesizer: str
    voice: str
    source: str
    rate: float
    pitch: float
    speed: float = 1.0        # 1.0 = unchanged
    room: int = -1            # index of the simulated room; -1 = none
    noise: str = ""           # colour of the added noise; "" = none
    noise_snr_db: float = 0.0
    telephone: bool = False
    floor_snr_db: float = 0.0  # 0 = no noise floor
    gain_db: float = 0.0
    noise_seed: int = 0
    rel_path: str = ""        # audio path relative to OUT


def _voices_for(n: int, sources: list, rng: random.Random) -> list[Voice]:
    """`n` voices in the sources' shares (largest remainder; every source at least once
    when n allows), in random order."""
    floor = 1 if n >= len(sources) else 0
    rest = n - floor * len(sources)
    exact = [share * rest for _, share in sources]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(sources)), key=lambda i: exact[i] - counts[i], reverse=True)[:rest - sum(counts)]:
        counts[i] += 1
    voices = [rng.choice(vs) for (vs, _), c in zip(sources, counts) for _ in range(c + floor)]
    rng.shuffle(voices)
    return voices


def _conditions(split: str, rng: random.Random, aug: TrainAugmentation) -> dict:
    """How one ASR utterance is rendered; only train is augmented."""
    r = lambda lo_hi: round(rng.uniform(*lo_hi), 3)  # noqa: E731
    c = {"rate": r(RATE), "pitch": r(PITCH), "floor_snr_db": round(rng.uniform(*FLOOR_SNR_DB), 1)}
    if split != "train":
        return {**c, "speed": r(SPEED)}
    c["speed"] = r(aug.speed)
    if rng.random() < aug.reverb_p:
        c["room"] = rng.randrange(aug.rooms)
    if rng.random() < aug.noise_p:
        c["noise"] = rng.choice(sorted(NOISE_COLOURS))
        c["noise_snr_db"] = round(rng.uniform(*aug.noise_snr_db), 1)
    c["telephone"] = rng.random() < aug.telephone_p
    c["gain_db"] = round(rng.uniform(*aug.gain_db), 1)
    return c


def _plan(seed: int, size: CorpusSize, aug: TrainAugmentation = AUGMENTATION) -> dict[str, list[_Job]]:
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
        texts = by_split[split]
        voices = _voices_for(len(texts), HELD_OUT_SOURCES if split == "test_other" else SEEN_SOURCES, rng)
        jobs = []
        for i, (text, voice) in enumerate(zip(texts, voices)):
            index += 1
            jobs.append(_job(voice, f"{split}-{i:05d}", text, f"wav/{split}",
                             noise_seed=index, **_conditions(split, rng, aug)))
        plan[split] = jobs
    for split, source, n in (("train", "train", size.tts_train),
                             ("dev", "dev", size.tts_dev),
                             ("test", "test_clean", size.tts_test)):
        plan[f"tts/{split}"] = [_job(TTS_VOICE, f"tts_{split}-{i:05d}", text, f"tts/wav/{split}")
                                for i, text in enumerate(by_split[source][:n])]
    return plan


def _job(voice: Voice, suffix: str, text: str, folder: str, rate: float = 1.0,
         pitch: float = 0.0, **conditions) -> _Job:
    utt_id = f"{voice.speaker_id}-{suffix}"
    return _Job(utt_id, voice.speaker_id, text, voice.synthesizer, voice.name, voice.source,
                rate, pitch, rel_path=f"{folder}/{utt_id}.wav", **conditions)


def _render(job: _Job, root: Path, programs: dict, rooms: dict, seed: int) -> float:
    """Synthesise and degrade one job into root/rel_path; returns its duration in seconds."""
    synth = SYNTHESIZERS[job.synthesizer]
    audio = synth.synthesize(job.text, job.voice, job.rate, job.pitch, SAMPLE_RATE,
                             programs[job.synthesizer])
    audio = render_conditions(audio, job, rooms, np.random.default_rng([seed, job.noise_seed]))
    path = root / job.rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
    return check_audio(str(path), SAMPLE_RATE, f"utterance {job.utt_id}")


def render_conditions(audio: np.ndarray, job: _Job, rooms: dict, rng: np.random.Generator) -> np.ndarray:
    """The job's speed, room, noise, telephone band, noise floor and gain, in that order."""
    if job.speed != 1.0:
        audio = change_speed(audio, job.speed, SAMPLE_RATE)
    if job.room >= 0:
        audio = reverberate(audio, rooms[job.room])
    if job.noise:
        audio = add_noise(audio, job.noise_snr_db, rng, job.noise)
    if job.telephone:
        audio = telephone(audio, SAMPLE_RATE)
    if job.floor_snr_db:
        audio = add_noise(audio, job.floor_snr_db, rng)
    if job.gain_db:
        audio = gain(audio, job.gain_db)
    return audio


def _render_all(all_jobs: list[_Job], root: Path, programs: dict, rooms: dict, seed: int,
                jobs: int, progress: bool) -> dict[str, float]:
    """Run the jobs on `jobs` threads (each mostly waits on a synthesizer process).

    On the first failure the queued jobs are cancelled instead of run to the end.
    """
    pool = ThreadPoolExecutor(max(1, jobs))
    durations = {}
    try:
        with tqdm(total=len(all_jobs), desc="synthesis", unit="utt", disable=not progress,
                  file=sys.stderr) as bar:
            for job, dur in zip(all_jobs, pool.map(
                    lambda j: _render(j, root, programs, rooms, seed), all_jobs)):
                durations[job.utt_id] = round(dur, 4)
                bar.update()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return durations


def check_synthesizers(jobs: list[_Job]) -> dict[str, str]:
    """Program of every synthesizer the jobs need; a clear error for any that is missing."""
    needed: dict[str, set] = {}
    for j in jobs:
        needed.setdefault(j.synthesizer, set()).add(j.voice)
    return {name: SYNTHESIZERS[name].check(sorted(voices)) for name, voices in sorted(needed.items())}


def resolve_size(size: str | CorpusSize) -> CorpusSize:
    if isinstance(size, CorpusSize):
        return size
    if size not in SIZES:
        raise ValueError(f"unknown corpus size {size!r}; choose one of {sorted(SIZES)}")
    return SIZES[size]


def corpus_stamp(seed: int, size: CorpusSize) -> dict:
    """What the corpus is a function of; a cached copy is reused only if this matches."""
    stamp = {"corpus": "embedded", "generator_version": GENERATOR_VERSION, "seed": seed,
             "sample_rate": SAMPLE_RATE, "size": asdict(size), "augmentation": asdict(AUGMENTATION)}
    return json.loads(json.dumps(stamp))  # as read back from corpus.json (tuples as lists)


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
    plan = _plan(seed, size)
    all_jobs = [j for js in plan.values() for j in js]
    programs = check_synthesizers(all_jobs)
    t0 = time.time()
    rooms = room_impulse_responses(np.random.default_rng([seed, 1]), AUGMENTATION.rooms, SAMPLE_RATE,
                                   used={j.room for j in all_jobs if j.room >= 0})
    with atomic_output_dir(out) as tmp:
        durations = _render_all(all_jobs, tmp, programs, rooms, seed, jobs, progress)
        seconds = time.time() - t0
        stats = {"generator_version": GENERATOR_VERSION, "seed": seed,
                 "generation_seconds": round(seconds, 1), "jobs": jobs, "splits": {}}
        train_vocab = {w for j in plan["train"] for w in j.text.split()}
        for split, split_jobs in plan.items():
            utts = [Utterance(j.utt_id, j.speaker, str(out / j.rel_path), j.text,
                              durations[j.utt_id]) for j in split_jobs]
            write_split(tmp / split, utts, SAMPLE_RATE, check_audio_files=False)
            ordered = sorted(split_jobs, key=lambda j: j.utt_id)
            (tmp / split / SYNTHESIS).write_text("".join(json.dumps(
                {k: v for k, v in asdict(j).items() if k not in ("speaker", "text", "rel_path")})
                + "\n" for j in ordered))
            if not split.startswith("tts/"):
                (tmp / split / UTT2SOURCE).write_text("".join(f"{j.utt_id} {j.source}\n" for j in ordered))
            stats["splits"][split] = _split_stats(utts, train_vocab, split_jobs)
        (tmp / STATS).write_text(json.dumps(stats, indent=2) + "\n")
        (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    for split in plan:
        check_data_dir(out / split, SAMPLE_RATE)
    print(f"pinch.data: wrote {out} in {seconds:.1f} s: " + ", ".join(
        f"{k} {v['hours']:.3f} h" for k, v in stats["splits"].items()), file=sys.stderr)
    return stats


def _split_stats(utts: list[Utterance], train_vocab: set[str], jobs: list[_Job]) -> dict:
    words = [w for u in utts for w in u.text.split()]
    seconds: Counter = Counter()
    for u, j in zip(utts, jobs):
        seconds[j.source] += u.duration
    return {
        "sources": {k: round(v / 3600, 4) for k, v in sorted(seconds.items())},
        "utterances": len(utts),
        "hours": round(sum(u.duration for u in utts) / 3600, 4),
        "speakers": len({u.speaker for u in utts}),
        "words": len(words),
        "vocabulary": len(set(words)),
        "oov_rate_vs_train": round(sum(w not in train_vocab for w in words) / len(words), 4),
    }
