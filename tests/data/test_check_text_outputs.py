"""``python -m pinch.data`` never writes over its own inputs, reads no empty split as fine and
names the file it cannot decode: one line, a non-zero exit, the inputs unchanged byte for byte."""
import os

import pytest
import soundfile as sf

from cli_errors import one_line_error, snapshot
from pinch.data.__main__ import main as data_main

from .fake_corpora import make_ljspeech, tone


@pytest.fixture
def files(tmp_path):
    text = tmp_path / "text"
    text.write_text("u1 call emma\nu2 café\n", encoding="utf-8")
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("a\nc\nl\ne\nm\n<space>\n")
    return text, tokens


def _check_text(text, tokens, out_text, bad):
    return ["check-text", "--text", text, "--token-list", tokens, "--out-text", out_text, "--bad", bad]


def test_bad_list_on_the_text_is_refused(files, tmp_path, capsys):
    text, tokens = files
    before = snapshot(text, tokens)
    line = one_line_error(data_main, _check_text(text, tokens, tmp_path / "ok", text), capsys)
    assert str(text) in line and "--bad" in line and "--text" in line
    assert snapshot(text, tokens) == before and not (tmp_path / "ok").exists()


def test_out_text_on_the_text_through_a_symlink_is_refused(files, tmp_path, capsys):
    text, tokens = files
    (tmp_path / "link").symlink_to(text)
    before = snapshot(text, tokens)
    line = one_line_error(data_main, _check_text(text, tokens, tmp_path / "link", tmp_path / "bad"), capsys)
    assert "--out-text" in line and "--text" in line
    assert snapshot(text, tokens) == before and not (tmp_path / "bad").exists()


def test_out_text_on_a_hard_link_of_the_token_list_is_refused(files, tmp_path, capsys):
    text, tokens = files
    os.link(tokens, tmp_path / "hard")
    before = snapshot(text, tokens)
    line = one_line_error(data_main, _check_text(text, tokens, tmp_path / "hard", tmp_path / "bad"), capsys)
    assert "--out-text" in line and "--token-list" in line
    assert snapshot(text, tokens) == before and not (tmp_path / "bad").exists()


def test_two_outputs_on_one_file_are_refused(files, tmp_path, capsys):
    text, tokens = files
    line = one_line_error(data_main, _check_text(text, tokens, tmp_path / "same", tmp_path / "same"), capsys)
    assert "--out-text" in line and "--bad" in line and str(tmp_path / "same") in line
    assert not (tmp_path / "same").exists()


def test_output_on_the_results_table_is_refused(files, tmp_path, capsys):
    text, tokens = files
    table = tmp_path / "results"
    table.mkdir()
    (table / "results.json").write_text("[]\n")
    (table / "results.md").write_text("| system |\n")
    before = snapshot(table / "results.json", table / "results.md")
    line = one_line_error(data_main, _check_text(text, tokens, tmp_path / "ok", table / "results.md"), capsys)
    assert "results table" in line and str(table / "results.md") in line
    assert snapshot(table / "results.json", table / "results.md") == before


@pytest.mark.parametrize("which", ["text", "tokens"])
def test_a_file_not_in_utf8_is_named(files, tmp_path, capsys, which):
    text, tokens = files
    target = text if which == "text" else tokens
    target.write_bytes(b"u1 caf\xe9\n")  # Latin-1
    line = one_line_error(data_main, _check_text(text, tokens, tmp_path / "ok", tmp_path / "bad"), capsys)
    assert str(target) in line and "UTF-8" in line
    assert not (tmp_path / "ok").exists() and not (tmp_path / "bad").exists()


def test_prepare_into_the_corpus_it_reads_is_refused(tmp_path, capsys):
    src = make_ljspeech(tmp_path)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    before = snapshot(*files)
    line = one_line_error(data_main, ["prepare", "--corpus", "ljspeech", "--src", src, "--out", src,
                                      "--lj-dev", "1", "--lj-test", "1"], capsys)
    assert "--out" in line and "--src" in line and str(src) in line
    assert sorted(p for p in src.rglob("*") if p.is_file()) == files and snapshot(*files) == before


def test_an_empty_split_is_not_ok(tmp_path, capsys):
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "manifest.json"):
        (tmp_path / name).write_text("")
    line = one_line_error(data_main, ["check", "--dir", tmp_path], capsys)
    assert str(tmp_path / "wav.scp") in line and "empty" in line


def test_a_manifest_line_that_is_not_an_object_is_named(tmp_path, capsys):
    sf.write(tmp_path / "a.wav", tone(0.25, 16000), 16000)
    for name, text in (("wav.scp", f"s1-u1 {tmp_path / 'a.wav'}\n"), ("text", "s1-u1 hello\n"),
                       ("utt2spk", "s1-u1 s1\n"), ("spk2utt", "s1 s1-u1\n"), ("manifest.json", "3\n")):
        (tmp_path / name).write_text(text)
    line = one_line_error(data_main, ["check", "--dir", tmp_path], capsys)
    assert f"{tmp_path / 'manifest.json'}:1" in line and "not a JSON object" in line
