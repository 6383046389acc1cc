"""MAPSSWE (sctk sc_stats): significant for a clearly worse system, not for an equal one."""
import json
import math
import statistics

import pytest

from pinch.scoring.__main__ import main as scoring_main
from pinch.scoring.mapsswe import compare

from .transcripts import corrupt, references, write_text


def _two_sided_p(z):
    """The normal test's p-value, from the standard library (not mapsswe's erfc)."""
    return 2 * statistics.NormalDist().cdf(-abs(z))


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
    assert r["p_value"] == pytest.approx(_two_sided_p(r["z"]), rel=1e-9)
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
    assert r["p_value"] == 1.0 and r["z"] == 0.0 and r["lossless"] and r["wer_a"] == r["wer_b"]


def test_equally_good_different_errors_is_not_significant(tmp_path, ref):
    r = compare(write_text(tmp_path / "ref", ref),
                write_text(tmp_path / "a", corrupt(ref, 0.1, 4)),
                write_text(tmp_path / "b", corrupt(ref, 0.1, 5)), tmp_path / "out")
    assert r["p_value"] > 0.05 and r["lossless"]
    assert r["p_value"] == pytest.approx(_two_sided_p(r["z"]), rel=1e-9)
    assert "sctk_stat_diff" in r  # sc_stats did run: the outputs differ


SEVEN = "alpha bravo charlie delta echo foxtrot golf".split()


@pytest.mark.parametrize("plan, z_exact", [
    # (errors of A, errors of B) per sentence: 6 sentences only B errs, 1 only A, 3 both
    ([(0, 1)] * 6 + [(1, 0)] + [(1, 1)] * 3, -math.sqrt(5)),
    ([(0, 1)] * 3 + [(1, 0)] * 2 + [(1, 1)] * 5, -0.1 / math.sqrt(4.9 / 9 / 10)),
])
def test_z_and_p_value_are_the_hand_computed_mapsswe(tmp_path, plan, z_exact):
    """Seven-word sentences, at most one substitution each, in the middle word: every
    sentence is one MAPSSWE segment (bounded by >= 2 words both systems got right), with
    the plan's error counts. Z = mean(d) / (sd(d) / sqrt(n)) over d = errors(A) - errors(B)
    per segment, sd with n - 1 (Gillick and Cox; sctk's calc_mean_var_std_dev_Zstat)."""
    refs, hyp_a, hyp_b = {}, {}, {}
    for i, (err_a, err_b) in enumerate(plan):
        utt = f"spk{i % 2}-utt{i:03d}"
        refs[utt] = " ".join(SEVEN)
        hyp_a[utt] = " ".join(SEVEN[:3] + ["zulu" if err_a else SEVEN[3]] + SEVEN[4:])
        hyp_b[utt] = " ".join(SEVEN[:3] + ["yankee" if err_b else SEVEN[3]] + SEVEN[4:])
    r = compare(write_text(tmp_path / "ref", refs), write_text(tmp_path / "a", hyp_a),
                write_text(tmp_path / "b", hyp_b), tmp_path / "out")
    d = [a - b for a, b in plan]
    z = statistics.mean(d) / (statistics.stdev(d) / math.sqrt(len(d)))
    assert z == pytest.approx(z_exact, rel=1e-12)
    n_words = len(SEVEN) * len(plan)
    assert r["wer_a"] == pytest.approx(100 * sum(a for a, _ in plan) / n_words)
    assert r["wer_b"] == pytest.approx(100 * sum(b for _, b in plan) / n_words)
    assert r["z"] == round(z, 3)  # sc_stats prints Z with 3 decimals: -2.236 and -0.429
    p = _two_sided_p(round(z, 3))  # 0.02535 and 0.6679 (0.02535 and 0.6682 from the unrounded Z)
    assert r["p_value"] == pytest.approx(p, rel=1e-9)
    assert r["significant"] == (p < 0.05) and r["lossless"] == (p >= 0.05)


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


def test_a_verdict_names_the_hypotheses_of_its_reference(tmp_path):
    import hashlib

    from pinch.scoring.results import all_tests

    ref = write_text(tmp_path / "ref", {"u1": "a b c", "u2": "d e f"})
    a = write_text(tmp_path / "a", {"u1": "a b c", "u2": "d x f"})
    b = write_text(tmp_path / "b", {"u1": "a b c", "u2": "d e f"})
    result = compare(ref, a, b, tmp_path / "out")
    assert result["hyp_a_sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
    assert all_tests({"dense": {"test": result}}) == {
        "dense": {"test": {"p_value": result["p_value"], "lossless": True, "reference_hyps": result["hyp_a_sha256"][:16]}}}
