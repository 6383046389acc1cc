"""Sentences a TTS token list cannot speak are named and left out; the others are kept."""
import pytest

from pinch.data.__main__ import main as data_main
from pinch.data.tts_text import check_tts_text, sentence_problem

SYMBOLS = {"<blank>", "<unk>", "<space>", "a", "c", "l", "e", "m", "<sos/eos>"}


def test_sentence_problems():
    assert sentence_problem("call emma", SYMBOLS) is None
    assert sentence_problem("café 2", SYMBOLS) == "characters not in the token list: '2' 'f' 'é'"
    assert sentence_problem("  ", SYMBOLS) == "empty sentence"
    assert sentence_problem("a b", {"a", "b", "▁"}, space="▁") is None


def test_bad_lines_do_not_lose_the_others(tmp_path, capsys):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(sorted(SYMBOLS)) + "\n")
    text = tmp_path / "text"
    text.write_text("u1 call emma\nu2 café\nu3\nu4 mace\n")
    kept, problems = check_tts_text(text, tokens, tmp_path / "ok", tmp_path / "bad")
    assert kept == 2 and (tmp_path / "ok").read_text() == "u1 call emma\nu4 mace\n"
    assert problems == ["u2: characters not in the token list: 'f' 'é'", "u3: empty sentence"]
    assert (tmp_path / "bad").read_text().splitlines() == problems
    assert data_main(["check-text", "--text", str(text), "--token-list", str(tokens),
                      "--out-text", str(tmp_path / "ok2"), "--bad", str(tmp_path / "bad2")]) == 0
    captured = capsys.readouterr()
    assert "2 sentences to synthesize, 2 skipped" in captured.out
    assert "warning: skipped u2: characters not in the token list: 'f' 'é'" in captured.err
    text.write_text("u2 café\n")
    with pytest.raises(ValueError, match="no sentence can be synthesized"):
        check_tts_text(text, tokens, tmp_path / "ok3", tmp_path / "bad3")
    assert not (tmp_path / "ok3").exists()
