"""LJSpeech import from a tiny fake tree: exact output, splits, bad metadata."""
import pytest

from pinch.data.__main__ import main as data_main
from pinch.data.kaldi import read_table
from pinch.data.ljspeech import prepare_ljspeech
from pinch.data.validate import check_data_dir

from .fake_corpora import make_ljspeech


def test_converts_fake_tree_exactly(tmp_path):
    base = make_ljspeech(tmp_path / "src")
    out = tmp_path / "tts"
    assert data_main(["prepare", "--corpus", "ljspeech", "--src", str(tmp_path / "src"),
                      "--out", str(out), "--lj-dev", "1", "--lj-test", "2"]) == 0
    assert list(read_table(out / "train" / "text")) == [f"LJ001-000{i}" for i in (1, 2, 3)]
    assert (out / "dev" / "wav.scp").read_text() == f"LJ001-0004 {base}/wavs/LJ001-0004.wav\n"
    assert (out / "test" / "text").read_text() == (
        "LJ001-0005 printing in the only sense number\n"
        "LJ001-0006 printing in the only sense number\n")
    assert (out / "test" / "spk2utt").read_text() == "LJ LJ001-0005 LJ001-0006\n"
    assert (out / "test" / "manifest.json").read_text().splitlines()[1] == (
        f'{{"audio_filepath": "{base}/wavs/LJ001-0006.wav", "duration": 1.5, '
        f'"text": "printing in the only sense number"}}')
    for split in ("train", "dev", "test"):
        check_data_dir(out / split, 22050)


def test_bad_metadata_line_is_named(tmp_path):
    base = make_ljspeech(tmp_path / "src")
    meta = base / "metadata.csv"
    lines = meta.read_text().splitlines(keepends=True)
    lines[2] = "LJ001-0003|only two fields\n"
    meta.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"metadata.csv:3: expected 3 '\|'-separated fields"):
        prepare_ljspeech(tmp_path / "src", tmp_path / "tts", n_dev=1, n_test=1)
    assert not (tmp_path / "tts").exists()


def test_cli_needs_src_and_reports_layout_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert data_main(["prepare", "--corpus", "ljspeech", "--src", str(tmp_path / "empty"),
                      "--out", str(tmp_path / "tts")]) == 1
    assert "not an LJSpeech directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data_main(["prepare", "--corpus", "librispeech", "--out", str(tmp_path / "x")])
