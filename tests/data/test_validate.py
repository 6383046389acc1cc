"""Validation of audio and written data dirs: each defect is named."""
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pinch.data.__main__ import main as data_main
from pinch.data.datadir import write_split
from pinch.data.utterance import Utterance
from pinch.data.validate import check_audio, check_data_dir


@pytest.fixture
def split(tmp_path):
    utts = []
    for i, text in enumerate(["hello world", "good night"]):
        path = tmp_path / f"a{i}.wav"
        sf.write(path, np.full(1600 * (i + 1), 0.1, np.float32), 16000)
        utts.append(Utterance(f"spk-{i}", "spk", str(path), text, 0.1 * (i + 1)))
    write_split(tmp_path / "data", utts, 16000)
    return tmp_path / "data"


def test_written_split_is_valid(split):
    assert [u.utt_id for u in check_data_dir(split, 16000)] == ["spk-0", "spk-1"]


def test_zero_length_and_wrong_rate_audio(tmp_path):
    sf.write(tmp_path / "z.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match=r"z.wav has zero length"):
        check_audio(str(tmp_path / "z.wav"), 16000, "utt z")
    sf.write(tmp_path / "r.wav", np.zeros(100, np.float32), 22050)
    with pytest.raises(ValueError, match=r"utt r: audio file .*r.wav has sample rate 22050"):
        check_audio(str(tmp_path / "r.wav"), 16000, "utt r")


def test_text_id_missing_from_wav_scp(split):
    (split / "text").write_text((split / "text").read_text() + "spk-2 extra words\n")
    with pytest.raises(ValueError, match=r"text: 1 utterance\(s\) not in .*wav.scp, e.g. 'spk-2'"):
        check_data_dir(split)


def test_empty_transcript_line(split):
    (split / "text").write_text("spk-0\nspk-1 good night\n")
    with pytest.raises(ValueError, match=r"text:1: 'spk-0' has no value"):
        check_data_dir(split)


def test_unsorted_file(split):
    lines = (split / "utt2spk").read_text().splitlines(keepends=True)
    (split / "utt2spk").write_text("".join(reversed(lines)))
    with pytest.raises(ValueError, match=r"utt2spk: not sorted"):
        check_data_dir(split)


def test_manifest_disagreeing_with_kaldi_files(split):
    lines = (split / "manifest.json").read_text().splitlines()
    entry = json.loads(lines[1])
    entry["text"] = "bad night"
    (split / "manifest.json").write_text(lines[0] + "\n" + json.dumps(entry) + "\n")
    with pytest.raises(ValueError, match=r"manifest.json:2: disagrees .* 'spk-1'"):
        check_data_dir(split)


def test_write_split_rejects_bad_text_and_leaves_no_files(tmp_path, split):
    wav = check_data_dir(split)[0].audio
    with pytest.raises(ValueError, match=r"utterance spk-0: transcript 'Hello!'"):
        write_split(tmp_path / "new", [Utterance("spk-0", "spk", wav, "Hello!", 0.1)], 16000)
    assert not (tmp_path / "new").exists()


def test_cli_check(split, capsys):
    assert data_main(["check", "--dir", str(split), "--sample-rate", "16000"]) == 0
    assert capsys.readouterr().out.endswith("2 utterances, 0.000 h, ok\n")
    assert data_main(["check", "--dir", str(split), "--sample-rate", "8000"]) == 1
    assert "has sample rate 16000 Hz, expected 8000 Hz" in capsys.readouterr().err


def test_missing_audio_in_wav_scp(split):
    first = check_data_dir(split)[0]
    Path(first.audio).unlink()
    with pytest.raises(FileNotFoundError, match=r"wav.scp: spk-0: audio file .*a0.wav does not exist"):
        check_data_dir(split)
