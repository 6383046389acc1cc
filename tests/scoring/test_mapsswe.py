"""MAPSSWE (sctk sc_stats): significant for a clearly worse system, not for an equal one."""
import json

import pytest

from pinch.scoring.__main__ import main as scoring_main
from pinch.scoring.mapsswe import compare

from .transcripts import corrupt, references, write_text


@pytest.fixture
def ref(tmp_path):
    return references(80, seed=7)


def test_clearly_worse_system_is_significant(tmp_path, ref):
    r = compare(write_text(tmp_path / "ref", ref),
                write_text(tmp_path / "dense", corrupt(ref, 0.03, 1)),
                write_text(tmp_path / "pruned", corrupt(ref, 0.4, 2)), tmp_path / "out",
                name_a="dense", name_b="pruned")
    assert r["wer_b"] > r["wer_a"] + 20
    assert r["p_value"] < 0.05 and r["significant"] and not r["lossless"]
    assert r["sctk_stat_diff"] == "Yes"
    assert json.loads((tmp_path / "out" / "compare.json").read_text())["p_value"] == r["p_value"]


def test_a_deep_output_dir_is_scored(tmp_path, ref):
    """sc_stats aborts ("stack smashing") on an output path of about 190 characters, which a
    TTS recipe's nested dirs reach; compare runs it from inside the output dir."""
    out = tmp_path / ("d" * 100) / ("e" * 100) / "mapsswe_vs_dense"
    r = compare(write_text(tmp_path / "ref", ref), write_text(tmp_path / "a", corrupt(ref, 0.1, 4)),
                write_text(tmp_path / "b", corrupt(ref, 0.3, 5)), out)
    assert len(str(out)) > 200 and r["p_value"] < 0.05 and (out / "compare.json").is_file()


def test_identical_system_is_not_significant(tmp_path, ref):
    hyp = write_text(tmp_path / "hyp", corrupt(ref, 0.1, 3))
    r = compare(write_text(tmp_path / "ref", ref), hyp, hyp, tmp_path / "out")
    assert r["p_value"] > 0.05 and r["lossless"] and r["wer_a"] == r["wer_b"]


def test_equally_good_different_errors_is_not_significant(tmp_path, ref):
    r = compare(write_text(tmp_path / "ref", ref),
                write_text(tmp_path / "a", corrupt(ref, 0.1, 4)),
                write_text(tmp_path / "b", corrupt(ref, 0.1, 5)), tmp_path / "out")
    assert r["p_value"] > 0.05 and r["lossless"]
    assert "sctk_stat_diff" in r  # sc_stats did run: the outputs differ


def test_better_compressed_system_is_lossless(tmp_path, ref):
    r = compare(write_text(tmp_path / "ref", ref),
                write_text(tmp_path / "a", corrupt(ref, 0.4, 6)),
                write_text(tmp_path / "b", corrupt(ref, 0.02, 7)), tmp_path / "out")
    assert r["significant"] and r["lossless"]


def test_cli_compare_and_bad_names(tmp_path, ref, capsys):
    refp = write_text(tmp_path / "ref", ref)
    a = write_text(tmp_path / "a", corrupt(ref, 0.03, 1))
    b = write_text(tmp_path / "b", corrupt(ref, 0.4, 2))
    assert scoring_main(["compare", "--ref", str(refp), "--hyp-a", str(a), "--hyp-b", str(b),
                         "--out", str(tmp_path / "o"), "--name-a", "dense",
                         "--name-b", "sspg"]) == 0
    assert "NOT lossless" in capsys.readouterr().out
    with pytest.raises(ValueError, match="system name 'my model'"):
        compare(refp, a, b, tmp_path / "o", name_a="my model")
