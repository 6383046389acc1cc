"""LibriSpeech import from a tiny fake tree: exact output, and bad layouts rejected."""
import json

import numpy as np
import pytest
import soundfile as sf

from pinch.data.librispeech import prepare_librispeech
from pinch.data.validate import check_data_dir

from .fake_corpora import make_librispeech


def test_converts_fake_tree_exactly(tmp_path):
    base = make_librispeech(tmp_path / "src")
    out = tmp_path / "data"
    stats = prepare_librispeech(tmp_path / "src", out)
    assert sorted(stats["splits"]) == ["dev_clean", "test_other"]
    assert sorted(p.name for p in out.iterdir()) == ["dev_clean", "test_other"]
    d = out / "dev_clean"
    f1 = base / "dev-clean/174/50561/174-50561-0000.flac"
    f2 = base / "dev-clean/84/121123/84-121123-0000.flac"
    f3 = base / "dev-clean/84/121123/84-121123-0001.flac"
    assert (d / "wav.scp").read_text() == (
        f"174-50561-0000 {f1}\n84-121123-0000 {f2}\n84-121123-0001 {f3}\n")
    assert (d / "text").read_text() == (
        "174-50561-0000 forgotten too the name of gillian\n"
        "84-121123-0000 go do you hear\n84-121123-0001 but in less than five\n")
    assert (d / "utt2spk").read_text() == (
        "174-50561-0000 174\n84-121123-0000 84\n84-121123-0001 84\n")
    assert (d / "spk2utt").read_text() == "174 174-50561-0000\n84 84-121123-0000 84-121123-0001\n"
    assert [json.loads(line) for line in (d / "manifest.json").read_text().splitlines()] == [
        {"audio_filepath": str(f1), "duration": 0.25, "text": "forgotten too the name of gillian"},
        {"audio_filepath": str(f2), "duration": 0.5, "text": "go do you hear"},
        {"audio_filepath": str(f3), "duration": 0.75, "text": "but in less than five"},
    ]
    assert (out / "test_other" / "text").read_text() == "1688-142285-0000 there's iron they say\n"
    check_data_dir(d, 16000)
    assert stats["splits"]["dev_clean"]["hours"] == pytest.approx(1.5 / 3600, abs=1e-4)


def _assert_nothing_written(tmp_path):
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("damage, message", [
    ("missing_audio", r"84-121123-0001.flac does not exist"),
    ("empty_text", r"84-121123.trans.txt:2: empty transcript"),
    ("wrong_rate", r"has sample rate 8000 Hz, expected 16000 Hz"),
    ("unreadable", r"is unreadable"),
])
def test_bad_input_names_the_file_and_writes_nothing(tmp_path, damage, message):
    base = make_librispeech(tmp_path / "src")
    chap = base / "dev-clean/84/121123"
    flac = chap / "84-121123-0001.flac"
    if damage == "missing_audio":
        flac.unlink()
    elif damage == "empty_text":
        trans = chap / "84-121123.trans.txt"
        trans.write_text(trans.read_text().replace("BUT IN LESS THAN FIVE", "..."))
    elif damage == "wrong_rate":
        sf.write(flac, np.zeros(800, np.float32), 8000)
    else:
        flac.write_bytes(b"not a flac file")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        prepare_librispeech(tmp_path / "src", tmp_path / "data")
    _assert_nothing_written(tmp_path)


def test_wrong_layout_is_rejected(tmp_path):
    (tmp_path / "src" / "flacs").mkdir(parents=True)
    with pytest.raises(ValueError, match="not a LibriSpeech directory"):
        prepare_librispeech(tmp_path / "src", tmp_path / "data")
    base = make_librispeech(tmp_path / "src2")
    (base / "dev-clean/84/121123/84-121123.trans.txt").rename(base / "dev-clean/84/t.txt")
    (base / "dev-clean/174/50561/174-50561.trans.txt").unlink()
    with pytest.raises(ValueError, match="dev-clean: no <speaker>/<chapter>/.*wrong layout"):
        prepare_librispeech(tmp_path / "src2", tmp_path / "data")
    with pytest.raises(FileNotFoundError, match="train-clean-100: split folder missing"):
        prepare_librispeech(tmp_path / "src2", tmp_path / "data", splits=["train_clean_100"])
    assert not (tmp_path / "data").exists()
