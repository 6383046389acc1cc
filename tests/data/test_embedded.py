"""The embedded espeak-ng corpus: determinism, disjoint splits, formats, caching."""
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf

from pinch.data import embedded, espeak
from pinch.data.__main__ import main as data_main
from pinch.data.embedded import ASR_SPLITS, STAMP, CorpusSize, prepare_embedded
from pinch.data.grammar import generate_sentences, vocabulary
from pinch.data.kaldi import read_table
from pinch.data.manifest import read_manifest
from pinch.data.validate import check_data_dir
from pinch.data.voices import SEEN_VOICES, TTS_VOICE, UNSEEN_VOICES

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


def test_voices_seen_and_unseen(tiny):
    spk = {s: set(read_table(tiny / s / "utt2spk").values()) for s in ALL_SPLITS}
    seen = {v.speaker_id for v in SEEN_VOICES}
    assert spk["train"] | spk["dev"] | spk["test_clean"] <= seen
    assert spk["test_other"] <= {v.speaker_id for v in UNSEEN_VOICES}
    assert spk["test_other"].isdisjoint(spk["train"])
    assert spk["tts/train"] == spk["tts/test"] == {TTS_VOICE.speaker_id}


def test_test_other_is_distorted_beyond_training_conditions(tiny):
    def made(split):
        return [json.loads(line) for line in (tiny / split / embedded.SYNTHESIS).read_text().splitlines()]

    for split in ("train", "dev", "test_clean"):
        for m in made(split):
            assert embedded.SPEED[0] <= m["speed"] <= embedded.SPEED[1]
            assert embedded.SNR_DB[0] <= m["snr_db"] <= embedded.SNR_DB[1]
    other = made("test_other")
    assert [m["utt_id"] for m in other] == list(read_table(tiny / "test_other" / "text"))
    for m in other:
        assert m["speed"] in embedded.OTHER_SPEEDS or m["snr_db"] < embedded.SNR_DB[0]
    assert {m["speed"] in embedded.OTHER_SPEEDS for m in other} == {True, False}


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
    monkeypatch.setattr(embedded, "synthesize", lambda *a: calls.append(a))
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


def test_espeak_missing_without_install_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(espeak.shutil, "which", lambda name: None)
    out = tmp_path / "corpus"
    with pytest.raises(RuntimeError, match="espeak-ng not found.*apt-get install espeak-ng"):
        prepare_embedded(out, size=MINI, progress=False)
    assert _siblings(out) == []


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    real, calls = embedded.synthesize, []

    def failing(*args):
        calls.append(args)
        if len(calls) == 5:
            raise KeyboardInterrupt
        time.sleep(0.01)
        return real(*args)

    monkeypatch.setattr(embedded, "synthesize", failing)
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
