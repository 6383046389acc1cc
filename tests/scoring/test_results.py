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
