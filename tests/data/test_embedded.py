"""The embedded corpus: determinism, held-out sources, augmentation, formats, caching."""
import json
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pinch.data import embedded
from pinch.data.__main__ import main as data_main
from pinch.data.augment import room_impulse_responses
from pinch.data.embedded import ASR_SPLITS, STAMP, UTT2SOURCE, CorpusSize, prepare_embedded
from pinch.data.grammar import generate_sentences, vocabulary
from pinch.data.kaldi import read_table
from pinch.data.manifest import read_manifest
from pinch.data.synth import festival, programs
from pinch.data.synth.voices import HELD_OUT_SOURCES, SEEN_SOURCES, SYNTHESIZERS, TTS_VOICE
from pinch.data.validate import check_data_dir

MINI = CorpusSize(train=4, dev=2, test_clean=2, test_other=2, tts_train=2, tts_dev=1, tts_test=1)
LARGER = CorpusSize(train=40, dev=2, test_clean=2, test_other=2, tts_train=2, tts_dev=1, tts_test=1)
ALL_SPLITS = list(ASR_SPLITS) + ["tts/train", "tts/dev", "tts/test"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("emb") / "corpus"
    prepare_embedded(out, seed=0, size="tiny", progress=False)
    return out


def texts(corpus: Path, split: str) -> list[str]:
    return list(read_table(corpus / split / "text").values())


def test_same_seed_same_text_and_durations(tiny, tmp_path):
    again = tmp_path / "again"
    prepare_embedded(again, seed=0, size="tiny", progress=False)
    for split in ALL_SPLITS:
        assert (again / split / "text").read_bytes() == (tiny / split / "text").read_bytes()
        dur_a = [e["duration"] for e in read_manifest(again / split / "manifest.json")]
        dur_b = [e["duration"] for e in read_manifest(tiny / split / "manifest.json")]
        assert dur_a == dur_b
    other = tmp_path / "other_seed"
    prepare_embedded(other, seed=1, size=MINI, progress=False)
    assert texts(other, "train") != texts(tiny, "train")[:4]


def test_no_sentence_of_train_in_any_test_set(tiny):
    train = set(texts(tiny, "train"))
    for split in ("dev", "test_clean", "test_other"):
        assert train.isdisjoint(texts(tiny, split)), split
    assert set(texts(tiny, "tts/train")).isdisjoint(texts(tiny, "tts/test"))


def _labels(sources):
    return {v.source for voices, _ in sources for v in voices}


def _speakers(sources):
    return {v.speaker_id for voices, _ in sources for v in voices}


def test_held_out_sources_only_in_test_other_and_every_source_in_its_splits(tiny):
    source = {s: read_table(tiny / s / UTT2SOURCE) for s in ASR_SPLITS}
    spk = {s: set(read_table(tiny / s / "utt2spk").values()) for s in ALL_SPLITS}
    for split in ("train", "dev", "test_clean"):
        assert set(source[split].values()) == _labels(SEEN_SOURCES), split
        assert spk[split] <= _speakers(SEEN_SOURCES)
    assert set(source["test_other"].values()) == _labels(HELD_OUT_SOURCES)
    assert spk["test_other"] <= _speakers(HELD_OUT_SOURCES)
    assert spk["test_other"].isdisjoint(spk["train"] | spk["dev"] | spk["test_clean"])
    assert _labels(HELD_OUT_SOURCES) - {"espeak-ng"} and \
        (_labels(HELD_OUT_SOURCES) - {"espeak-ng"}).isdisjoint(_labels(SEEN_SOURCES))
    assert {m["synthesizer"] for m in _made(tiny, "train")} == set(SYNTHESIZERS)
    assert spk["tts/train"] == spk["tts/test"] == {TTS_VOICE.speaker_id}
    assert set(source["test_other"]) == set(read_table(tiny / "test_other" / "text"))


def _made(corpus, split):
    return [json.loads(line) for line in (corpus / split / embedded.SYNTHESIS).read_text().splitlines()]


def test_only_train_is_augmented(tiny):
    aug = embedded.AUGMENTATION
    train = _made(tiny, "train")
    assert [m["utt_id"] for m in train] == list(read_table(tiny / "train" / "text"))
    for m in train:
        assert aug.speed[0] <= m["speed"] <= aug.speed[1]
        assert aug.gain_db[0] <= m["gain_db"] <= aug.gain_db[1]
        assert m["noise"] == "" or aug.noise_snr_db[0] <= m["noise_snr_db"] <= aug.noise_snr_db[1]
    assert any(m["room"] >= 0 for m in train) and any(m["noise"] for m in train)
    for split in ("dev", "test_clean", "test_other"):
        for m in _made(tiny, split):
            assert embedded.SPEED[0] <= m["speed"] <= embedded.SPEED[1]
            assert (m["room"], m["noise"], m["telephone"], m["gain_db"]) == (-1, "", False, 0.0)
            assert embedded.FLOOR_SNR_DB[0] <= m["floor_snr_db"] <= embedded.FLOOR_SNR_DB[1]


def test_each_augmentation_changes_the_audio_and_keeps_its_duration():
    job = embedded._job(SEEN_SOURCES[1][0][0], "x", "turn on the kitchen light", "wav", rate=1.0)
    audio = SYNTHESIZERS[job.synthesizer].synthesize(job.text, job.voice, 1.0, 0.0, 16000, "flite")
    rooms = room_impulse_responses(np.random.default_rng(0), 2, 16000, used={1})
    assert set(rooms) == {1}
    variants = {"room": {"room": 1}, "noise": {"noise": "pink", "noise_snr_db": 15.0},
                "telephone": {"telephone": True}, "gain": {"gain_db": -6.0},
                "floor": {"floor_snr_db": 40.0}}
    for name, change in variants.items():
        out = embedded.render_conditions(audio, replace(job, **change), rooms,
                                         np.random.default_rng(0))
        assert len(out) == len(audio), name
        assert not np.allclose(out, audio, atol=1e-3), name
        assert np.abs(out).max() <= 1.0
    for speed in (0.9, 1.1):
        out = embedded.render_conditions(audio, replace(job, speed=speed), rooms,
                                         np.random.default_rng(0))
        assert len(out) == pytest.approx(len(audio) / speed, abs=2)
    same = [embedded.render_conditions(audio, replace(job, noise="brown", noise_snr_db=10.0),
                                       rooms, np.random.default_rng(3)) for _ in range(2)]
    assert np.array_equal(*same)


def test_kaldi_dir_and_manifest_agree(tiny):
    for split in ALL_SPLITS:
        utts = check_data_dir(tiny / split, 16000)
        manifest = read_manifest(tiny / split / "manifest.json")
        assert [e["audio_filepath"] for e in manifest] == [u.audio for u in utts]
        assert [e["text"] for e in manifest] == [u.text for u in utts]
        for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
            raw = (tiny / split / name).read_bytes()
            sorted_c = subprocess.run(["sort"], input=raw, capture_output=True,
                                      env=dict(os.environ, LC_ALL="C")).stdout
            assert raw == sorted_c, f"{split}/{name} not LC_ALL=C sorted"


def test_audio_is_16k_mono_and_short(tiny):
    for entry in read_manifest(tiny / "train" / "manifest.json"):
        info = sf.info(entry["audio_filepath"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 0.8 < info.duration < 4.0
        assert entry["duration"] == pytest.approx(info.duration, abs=1e-3)


def test_stats_record_hours_per_split(tiny):
    stats = json.loads((tiny / "stats.json").read_text())
    for split in ALL_SPLITS:
        durations = [e["duration"] for e in read_manifest(tiny / split / "manifest.json")]
        assert stats["splits"][split]["hours"] == pytest.approx(sum(durations) / 3600, abs=1e-4)
        assert stats["splits"][split]["utterances"] == len(durations)
    assert stats["generation_seconds"] >= 0


def test_grammar_is_small_deterministic_and_normalised():
    import random
    assert 200 <= len(vocabulary()) <= 400
    a = generate_sentences(300, random.Random(5))
    assert a == generate_sentences(300, random.Random(5))
    assert len(set(a)) == 300
    for s in a:
        assert 3 <= len(s.split()) <= 8 and set(s.split()) <= vocabulary()


def test_cache_reused_and_rebuilt_when_generator_changes(tmp_path, monkeypatch):
    out = tmp_path / "c"
    prepare_embedded(out, seed=0, size=MINI, progress=False)
    first = (out / STAMP).stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(embedded, "_render", lambda *a: calls.append(a))
    prepare_embedded(out, seed=0, size=MINI, progress=False)
    assert calls == [] and (out / STAMP).stat().st_mtime_ns == first
    monkeypatch.undo()
    monkeypatch.setattr(embedded, "GENERATOR_VERSION", embedded.GENERATOR_VERSION + 1)
    prepare_embedded(out, seed=0, size=MINI, progress=False)
    assert json.loads((out / STAMP).read_text())["generator_version"] == \
        embedded.GENERATOR_VERSION
    check_data_dir(out / "train", 16000)


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not an embedded corpus"):
        prepare_embedded(out, size=MINI, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("program", ["espeak-ng", "flite", "text2wave"])
def test_a_missing_synthesizer_names_its_package(tmp_path, monkeypatch, program):
    which = programs.shutil.which
    monkeypatch.setattr(programs.shutil, "which", lambda name: None if name == program else which(name))
    package = {"text2wave": "festival"}.get(program, program)
    out = tmp_path / "corpus"
    with pytest.raises(RuntimeError, match=f"{program} not found.*Debian package {package}.*"
                                           f"apt-get install {package}"):
        prepare_embedded(out, size="tiny", progress=False)
    assert _siblings(out) == []


def test_a_missing_festival_voice_names_its_package(tmp_path, monkeypatch):
    voices = tmp_path / "voices"
    for present in ("english/kal_diphone", "us/cmu_us_slt_arctic_hts"):
        (voices / present).mkdir(parents=True)
    monkeypatch.setattr(festival, "VOICE_DIRS", voices)
    with pytest.raises(RuntimeError, match="'ked_diphone' is not installed.*apt-get install festvox-kdlpc16k"):
        prepare_embedded(tmp_path / "corpus", size="tiny", progress=False)


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    real, calls = embedded._render, []

    def failing(*args):
        calls.append(args)
        if len(calls) == 5:
            raise KeyboardInterrupt
        time.sleep(0.01)
        return real(*args)

    monkeypatch.setattr(embedded, "_render", failing)
    out = tmp_path / "corpus"
    with pytest.raises(KeyboardInterrupt):
        prepare_embedded(out, size=LARGER, jobs=2, progress=False)
    assert _siblings(out) == []
    assert len(calls) < 10, "queued jobs should be cancelled, not run, after a failure"


def test_cli_prepare_with_size_overrides(tmp_path, capsys):
    out = tmp_path / "cli"
    assert data_main(["prepare", "--corpus", "embedded", "--out", str(out), "--size", "tiny",
                      "--n-train", "3", "--n-tts-train", "2", "--seed", "3"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["splits"]["train"]["utterances"] == 3
    assert len(read_table(out / "train" / "text")) == 3
    assert data_main(["prepare", "--corpus", "embedded", "--out", str(out), "--size", "tiny",
                      "--n-train", "0"]) == 1
    assert "'train' must be a positive integer" in capsys.readouterr().err
