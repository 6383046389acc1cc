"""sclite WER/CER on trn files agrees with jiwer and with hand-counted errors."""
import json

import jiwer
import pytest

from pinch.scoring.__main__ import main as scoring_main
from pinch.scoring import sclite
from pinch.scoring.by_source import by_source_markdown
from pinch.scoring.sclite import optimal_cost, sclite_cost, score

from .transcripts import corrupt, references, write_text


def test_hand_counted_example(tmp_path):
    ref = write_text(tmp_path / "ref", {"s-1": "a b c d", "s-2": "hello world"})
    hyp = write_text(tmp_path / "hyp", {"s-1": "a x c", "s-2": "hello world again"})
    r = score(ref, hyp, tmp_path / "out")
    w = r["word"]
    assert (w["substitutions"], w["deletions"], w["insertions"], w["ref_tokens"]) == (1, 1, 1, 6)
    assert r["wer"] == pytest.approx(50.0)
    # chars: "a b c d" -> "a x c" is 1 sub + 2 del of 7; "hello world" + 6 inserted of 11
    assert r["cer"] == pytest.approx(100 * 9 / 18)
    assert json.loads((tmp_path / "out" / "result.json").read_text())["wer"] == r["wer"]
    assert (tmp_path / "out" / "ref.word.trn").read_text().splitlines()[0] == "a b c d (s-s-1)"


@pytest.mark.parametrize("rate, seed", [(0.05, 1), (0.1, 2), (0.2, 3), (0.5, 4)])
def test_sclite_and_jiwer_agree(tmp_path, rate, seed):
    refs = references(40, seed)
    hyps = corrupt(refs, rate, seed)
    r = score(write_text(tmp_path / "ref", refs), write_text(tmp_path / "hyp", hyps),
              tmp_path / "out")
    ids = sorted(refs)
    pairs = [refs[i] for i in ids], [hyps[i] for i in ids]
    assert r["wer"] > 0
    assert r["wer"] == pytest.approx(100 * jiwer.wer(*pairs), abs=1e-9)
    # Characters: equal at realistic error rates; at high rates sclite's substitution-
    # preferring weights may add errors, never remove them, and the weighted cost is optimal.
    if rate <= 0.1:
        assert r["cer"] == pytest.approx(100 * jiwer.cer(*pairs), abs=1e-9)
    assert r["cer"] >= 100 * jiwer.cer(*pairs) - 1e-9
    for unit in ("word", "char"):
        assert sclite_cost(r[unit]) == optimal_cost(*pairs, unit)


def test_mismatched_scoring_is_detected(tmp_path, monkeypatch):
    refs = references(10)
    hyps = corrupt(refs, 0.3, 0)
    monkeypatch.setattr(sclite, "jiwer_rates", lambda r, h: {"wer": 99.0, "cer": 99.0})
    with pytest.raises(RuntimeError, match=r"sclite \(WER .*\) and jiwer \(99.000%\) disagree"):
        score(write_text(tmp_path / "ref", refs), write_text(tmp_path / "hyp", hyps),
              tmp_path / "out")


def test_empty_hypothesis_counts_as_deletions(tmp_path):
    ref = write_text(tmp_path / "ref", {"s-1": "one two three", "s-2": "four"})
    hyp = write_text(tmp_path / "hyp", {"s-1": "", "s-2": "four"})
    r = score(ref, hyp, tmp_path / "out")
    assert r["word"]["deletions"] == 3 and r["wer"] == pytest.approx(75.0)


def test_bad_inputs_are_named(tmp_path):
    ref = write_text(tmp_path / "ref", {"s-1": "one two", "s-2": "three"})
    hyp = write_text(tmp_path / "hyp", {"s-1": "one two"})
    with pytest.raises(ValueError, match=r"hyp: lacks 1 utterance\(s\) of .*ref, e.g. 's-2'"):
        score(ref, hyp, tmp_path / "out")
    bad_ref = write_text(tmp_path / "bad_ref", {"s-1": "one two", "s-2": ""})
    with pytest.raises(ValueError, match=r"bad_ref:2: 's-2' has no value"):
        score(bad_ref, hyp, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="nothere: missing"):
        score(tmp_path / "nothere", hyp, tmp_path / "out")


def test_cli_score(tmp_path, capsys):
    refs = references(10)
    ref = write_text(tmp_path / "ref", refs)
    assert scoring_main(["score", "--ref", str(ref), "--hyp", str(ref), "--out",
                         str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.startswith("WER 0.00%")
    assert scoring_main(["score", "--ref", str(ref), "--hyp", str(tmp_path / "none"),
                         "--out", str(tmp_path / "o")]) == 1
    assert "none: missing" in capsys.readouterr().err


def test_wer_per_source_from_the_utt2source_beside_the_reference(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    ref = write_text(data / "text", {"a-1": "one two three four", "a-2": "five six",
                                     "b-1": "seven eight", "b-2": "nine ten"})
    hyp = write_text(tmp_path / "hyp", {"a-1": "one two three four", "a-2": "five six",
                                        "b-1": "seven", "b-2": "nine ten eleven"})
    assert "by_source" not in score(ref, hyp, tmp_path / "plain")
    (data / "utt2source").write_text("a-1 flite-awb\na-2 flite-awb\nb-1 festival-ked\nb-2 festival-ked\n")
    r = score(ref, hyp, tmp_path / "out")
    assert r["by_source"] == {
        "festival-ked": {"utterances": 2, "ref_tokens": 4, "errors": 2, "wer": 50.0},
        "flite-awb": {"utterances": 2, "ref_tokens": 6, "errors": 0, "wer": 0.0}}
    assert r["wer"] == pytest.approx(20.0)
    assert (tmp_path / "out" / "by_source" / "festival-ked.sys").is_file()
    assert "|test|festival-ked|2|4|50.00|" in by_source_markdown({"test": r})

    (data / "utt2source").write_text("a-1 flite-awb\na-2 flite-awb\nb-1 festival-ked\n")
    with pytest.raises(ValueError, match="utt2source: no source for 1 utterance.*'b-2'"):
        score(ref, hyp, tmp_path / "out2")
    (data / "utt2source").write_text("a-1 x\na-2 x\nb-1 ../y\nb-2 x\n")
    with pytest.raises(ValueError, match="source label '../y' is not a plain name"):
        score(ref, hyp, tmp_path / "out3")


def test_capitals_and_punctuation_are_scored_as_written_and_normalized(tmp_path):
    """A model that writes capitals and punctuation: as written, every word it cased or
    punctuated differently is an error (sclite and jiwer agree: neither folds case); normalized
    as the Open ASR Leaderboard does, none is. Both are in the result, named."""
    ref = write_text(tmp_path / "ref", {"u1": "Hello, World. It's Mr. Smith", "u2": "the dog ran home"})
    hyp = write_text(tmp_path / "hyp", {"u1": "hello world it is mister smith", "u2": "The dog ran home."})
    result = score(ref, hyp, tmp_path / "out")
    # as written: Hello, World. It's Mr. Smith -> 5 words, 5 differ (one deletion, four
    # substitutions or an insertion for the split "it is"); u2: The, home. -> 2 of 4
    assert result["scoring"] == "as written (case-sensitive)"
    assert result["word"]["errors"] == 8 and result["wer"] == pytest.approx(100 * 8 / 9)
    assert result["jiwer"]["wer"] == pytest.approx(result["wer"])
    assert result["normalized"]["wer"] == 0.0 and result["normalized"]["cer"] == 0.0
    assert "Open ASR Leaderboard" in result["normalized"]["scoring"]
    stored = json.loads((tmp_path / "out" / "normalized" / "result.json").read_text())
    assert stored["wer"] == 0.0 and stored["utterances"] == 2
    lines = sclite.normalized_markdown({"test": result})
    assert lines[0] == "### WER and CER, normalized" and "|test|0.00|0.00|" in lines
    assert "as written (case-sensitive)" in lines[2] and "Open ASR Leaderboard" in lines[2]


def test_a_disagreement_names_its_cause(tmp_path):
    ref = write_text(tmp_path / "ref", {"u1": "a b c"})
    hyp = write_text(tmp_path / "hyp", {"u1": "a { b / c } d"})
    with pytest.raises(RuntimeError, match=r"disagree on .*: the texts hold / \{ \}, which sclite's trn format"):
        score(ref, hyp, tmp_path / "out")
