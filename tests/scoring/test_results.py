"""The results table only ever grows; bad rows are rejected before anything is written."""
import json

import pytest

from pinch.scoring.__main__ import main as scoring_main
from pinch.scoring.results import append_result, read_rows

DENSE = {"system": "conformer-dense", "toolkit": "espnet", "method": "dense",
         "params": 2600000, "nonzero_params": 2600000, "size_mb": 10.4,
         "wer": {"test_clean": 6.1, "test_other": 14.0}}
PRUNED = {"system": "conformer-sspg-65", "toolkit": "nemo", "method": "sspg",
          "target_sparsity": 0.65, "sparsity": 0.651, "params": 2600000,
          "nonzero_params": 1100000, "size_mb": 4.9, "wer": {"test_clean": 6.3},
          "significance": {"test_clean": {"p_value": 0.41, "lossless": True}},
          "wall_time_s": 612.5}


def test_rows_are_appended_never_overwritten(tmp_path):
    first = append_result(tmp_path, DENSE)
    before = (tmp_path / "results.md").read_text().splitlines()
    append_result(tmp_path, PRUNED)
    append_result(tmp_path, DENSE)  # a rerun is a new row, not a replacement
    rows = read_rows(tmp_path)
    assert [r["system"] for r in rows] == ["conformer-dense", "conformer-sspg-65",
                                           "conformer-dense"]
    assert rows[0] == first and "date" in first
    md = (tmp_path / "results.md").read_text().splitlines()
    assert len(md) == 2 + 3
    assert md[2].split("|")[1:4] == before[2].split("|")[1:4]
    assert "0.41 (lossless)" in md[3] and "| 6.3 |" in md[3]
    assert md[0].count("WER test_clean") == 1 and "WER test_other" in md[0]


@pytest.mark.parametrize("row, message", [
    ({"toolkit": "espnet"}, "'system' is required"),
    ({"system": "x", "wer_clean": 3.0}, "unknown key 'wer_clean'"),
    ({"system": "x", "sparsity": 65}, r"'sparsity' must be in \[0, 1\]"),
    ({"system": "x", "params": "many"}, "'params' must be Integral"),
    ({"system": "x", "wer": {"test_clean": "low"}}, r"wer\['test_clean'\] must be a number"),
    ({"system": "x", "significance": {"test_clean": 0.3}}, "must hold p_value and lossless"),
])
def test_bad_rows_are_rejected_and_table_kept(tmp_path, row, message):
    append_result(tmp_path, DENSE)
    before = {p.name: p.read_text() for p in tmp_path.glob("results.*")}
    with pytest.raises(ValueError, match=message):
        append_result(tmp_path, row)
    assert {p.name: p.read_text() for p in tmp_path.glob("results.*")} == before


def test_foreign_markdown_table_is_not_overwritten(tmp_path):
    (tmp_path / "results.md").write_text("| my | table |\n")
    with pytest.raises(ValueError, match="results.md exists without"):
        append_result(tmp_path, DENSE)
    assert (tmp_path / "results.md").read_text() == "| my | table |\n"


def test_cli_append_result(tmp_path, capsys):
    assert scoring_main(["append-result", "--table", str(tmp_path),
                         "--row", json.dumps(PRUNED)]) == 0
    assert json.loads(capsys.readouterr().out)["system"] == "conformer-sspg-65"
    assert scoring_main(["append-result", "--table", str(tmp_path), "--row", "{bad"]) == 1
    assert "--row is not valid JSON" in capsys.readouterr().err
    assert len(read_rows(tmp_path)) == 1


def test_verdict_prefers_the_equally_trained_dense_control_and_names_it(tmp_path):
    from pinch.scoring.results import verdicts

    def test(p, lossless):
        return {"p_value": p, "lossless": lossless, "wer_a": 6.0, "wer_b": 6.5}

    tests = {"dense": {"test_clean": test(0.001, True)}, "dense_finetune": {"test_clean": test(0.02, False)}}
    ref, significance, notes = verdicts(tests)
    assert ref == "dense_finetune" and significance == {"test_clean": {"p_value": 0.02, "lossless": False}}
    assert notes == ["vs dense on test_clean: p=0.001 lossless"]
    assert verdicts({"dense": tests["dense"]})[0] == "dense"
    with pytest.raises(ValueError, match="no MAPSSWE test against dense_finetune or dense"):
        verdicts({"other": tests["dense"]})
    append_result(tmp_path, {**PRUNED, "reference": ref, "significance": significance})
    header, _, row = (tmp_path / "results.md").read_text().splitlines()
    cells = dict(zip(header.split("|"), row.split("|")))
    assert cells[" verdict vs "].strip() == "dense_finetune" and "worse" in cells[" p test_clean "]


def test_concurrent_appends_lose_no_row(tmp_path):
    """Recipes finishing together: each process appends under the lock, every row stays."""
    import multiprocessing

    rows = [dict(DENSE, system=f"run{i}") for i in range(40)]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.starmap(append_result, [(tmp_path, row) for row in rows])
    assert sorted(r["system"] for r in read_rows(tmp_path)) == sorted(r["system"] for r in rows)
    assert len((tmp_path / "results.md").read_text().splitlines()) == 2 + 40
