"""Scoring, the results table and the reports built from it refuse what would make them wrong:
an empty or non-finite input, a NaN on its way into the table, a hand-edited row that is not a
row, a report written over the table. Each ends in one line, a non-zero exit, the table unchanged."""
import json
import math

import numpy as np
import pytest
import soundfile as sf

from cli_errors import one_line_error, snapshot
from pinch.cli.main import main as pinch_main
from pinch.data.atomic import write_json_atomic
from pinch.scoring.__main__ import main as scoring_main
from pinch.scoring.results import append_result
from pinch.scoring.tts_results import tts_results
from pinch.sweep.doc_tables import main as doc_tables_main
from pinch.sweep.report import main as sweep_main

from .test_tts_results import _model, _tone

SR = 16000
ROW = {"system": "exp/dense", "toolkit": "espnet", "method": "dense", "wer": {"test": 5.0},
       "notes": "corpus=embedded", "dense_fingerprint": "f"}
SIG = {"test": {"p_value": 0.5, "lossless": True}}
RUN = dict(ROW, system="exp/sspg0.5", method="sspg", target_sparsity=0.5, sparsity=0.5, wer={"test": 5.5},
           significance=SIG, mapsswe={"dense": SIG}, reference="dense")


@pytest.fixture
def table(tmp_path):
    """A table every report can be made from: a dense row and a compressed one."""
    d = tmp_path / "results"
    append_result(d, ROW)
    append_result(d, RUN)
    return d


def _table_files(table):
    return snapshot(table / "results.json", table / "results.md")


def test_tts_scoring_of_empty_wav_scp_files_is_refused(tmp_path, capsys):
    ref, syn = tmp_path / "ref.scp", tmp_path / "syn.scp"
    ref.write_text("")
    syn.write_text("")
    line = one_line_error(scoring_main, ["tts", "--ref-scp", ref, "--syn-scp", syn, "--out", tmp_path / "o"], capsys)
    assert str(ref) in line and "empty" in line
    assert not (tmp_path / "o" / "tts_metrics.json").exists()


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_audio_is_named(tmp_path, capsys, bad):
    _tone(tmp_path / "ref.wav", 200)
    x = 0.3 * np.sin(np.arange(SR // 2) * 0.1)
    x[100] = bad
    sf.write(tmp_path / "syn.wav", x, SR, subtype="FLOAT")
    (tmp_path / "ref.scp").write_text(f"u1 {tmp_path / 'ref.wav'}\n")
    (tmp_path / "syn.scp").write_text(f"u1 {tmp_path / 'syn.wav'}\n")
    line = one_line_error(scoring_main, ["tts", "--ref-scp", tmp_path / "ref.scp", "--syn-scp", tmp_path / "syn.scp",
                                         "--out", tmp_path / "o"], capsys)
    assert str(tmp_path / "syn.wav") in line and "non-finite" in line
    assert not (tmp_path / "o" / "tts_metrics.json").exists()


def test_scoring_empty_transcripts_is_refused(tmp_path, capsys):
    (tmp_path / "ref").write_text("")
    (tmp_path / "hyp").write_text("")
    line = one_line_error(scoring_main, ["score", "--ref", tmp_path / "ref", "--hyp", tmp_path / "hyp",
                                         "--out", tmp_path / "o"], capsys)
    assert str(tmp_path / "ref") in line and "empty" in line
    assert not (tmp_path / "o" / "result.json").exists()


def test_a_transcript_not_in_utf8_is_named(tmp_path, capsys):
    (tmp_path / "ref").write_bytes(b"u1 caf\xe9\n")
    (tmp_path / "hyp").write_text("u1 cafe\n")
    line = one_line_error(scoring_main, ["score", "--ref", tmp_path / "ref", "--hyp", tmp_path / "hyp",
                                         "--out", tmp_path / "o"], capsys)
    assert str(tmp_path / "ref") in line and "UTF-8" in line


def test_a_document_not_in_utf8_is_named(tmp_path, capsys):
    (tmp_path / "README.md").write_bytes(b"caf\xe9\n")
    before = snapshot(tmp_path / "README.md")
    line = one_line_error(doc_tables_main, ["--root", tmp_path, tmp_path / "README.md"], capsys)
    assert str(tmp_path / "README.md") in line and "UTF-8" in line
    assert snapshot(tmp_path / "README.md") == before


@pytest.mark.parametrize("extra, field", [
    ({"wer": {"test": math.nan}}, "wer['test']"),
    ({"task": "tts", "mcd": math.inf}, "mcd"),
    ({"task": "tts", "log_f0_rmse": -math.inf}, "log_f0_rmse"),
    ({"significance": {"test": {"p_value": math.nan, "lossless": True}}}, "significance['test']['p_value']"),
    ({"mapsswe": {"dense": {"test": {"p_value": math.nan, "lossless": True}}}},
     "mapsswe['dense']['test']['p_value']"),
])
def test_non_finite_values_never_enter_the_table(table, capsys, extra, field):
    before = _table_files(table)
    row = json.dumps(dict(ROW, system="exp/run", **extra))  # json writes NaN and Infinity, json.loads reads them
    line = one_line_error(scoring_main, ["append-result", "--table", table, "--row", row], capsys)
    assert field in line and "finite" in line
    assert _table_files(table) == before


@pytest.mark.parametrize("extra, message", [
    ({"significance": {"test": {"p_value": "low", "lossless": True}}}, "p_value"),
    ({"significance": {"test": {"p_value": 1.5, "lossless": True}}}, "p_value"),
    ({"significance": {"test": {"p_value": 0.5, "lossless": "yes"}}}, "lossless"),
    ({"mapsswe": {"dense": {"test": 0.3}}}, "mapsswe['dense']['test']"),
])
def test_mistyped_significance_never_enters_the_table(table, capsys, extra, message):
    before = _table_files(table)
    line = one_line_error(scoring_main, ["append-result", "--table", table, "--row",
                                         json.dumps(dict(ROW, system="exp/run", **extra))], capsys)
    assert message in line
    assert _table_files(table) == before


def test_the_json_writer_names_a_non_finite_field(tmp_path):
    with pytest.raises(ValueError, match=r"out.json: a\['b'\]\[1\] is nan"):
        write_json_atomic(tmp_path / "out.json", {"a": {"b": [1.0, math.nan]}})
    assert list(tmp_path.iterdir()) == []


HAND_EDITED = {
    "a row not an object": b'[1]',
    "a row without system": b'[{"toolkit": "espnet", "wer": {"test": 5.0}}]',
    "a NaN": b'[{"system": "x", "toolkit": "espnet", "wer": {"test": NaN}}]',
    "not UTF-8": '[{"system": "caf\xe9"}]'.encode("latin-1"),
}
COMMANDS = {
    "append-result": lambda t: (scoring_main, ["append-result", "--table", t, "--row", json.dumps(ROW)]),
    "pinch compare": lambda t: (pinch_main, ["compare", "--table", t]),
    "python -m pinch.sweep": lambda t: (sweep_main, ["--table", t, "--out", t.parent / "REPORT.md"]),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("edit", sorted(HAND_EDITED))
def test_a_hand_edited_table_is_named_not_a_traceback(table, capsys, command, edit):
    (table / "results.json").write_bytes(HAND_EDITED[edit])
    before = _table_files(table)
    main, argv = COMMANDS[command](table)
    line = one_line_error(main, argv, capsys)
    assert str(table / "results.json") in line
    assert _table_files(table) == before and not (table.parent / "REPORT.md").exists()


def test_a_sweep_row_without_a_method_is_named(table, capsys):
    append_result(table, dict(ROW, system="exp/run", method=None, target_sparsity=0.5))
    before = _table_files(table)
    line = one_line_error(sweep_main, ["--table", table, "--out", table.parent / "REPORT.md"], capsys)
    assert str(table / "results.json") in line and "'exp/run'" in line and "'method'" in line
    assert _table_files(table) == before and not (table.parent / "REPORT.md").exists()


@pytest.mark.parametrize("alpha", ["nan", "0", "1.5"])
def test_a_significance_level_outside_0_1_is_refused(tmp_path, capsys, alpha):
    for name, text in (("ref", "u1 a b c\n"), ("a", "u1 a b c\n"), ("b", "u1 a x c\n")):
        (tmp_path / name).write_text(text)
    line = one_line_error(scoring_main, ["compare", "--ref", tmp_path / "ref", "--hyp-a", tmp_path / "a",
                                         "--hyp-b", tmp_path / "b", "--out", tmp_path / "o", "--alpha", alpha], capsys)
    assert "alpha" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [
    lambda t: ["compare", "--table", t, "--out", t / "results.md"],
    lambda t: ["compare", "--table", t, "--out", t / "results.json"],
    lambda t: ["compare", "--table", t, "--plot", t / "results.json"],
    lambda t: ["compare", "--table", t, "--out", t.parent / "same", "--plot", t.parent / "same"],
    lambda t: ["sweep-report", "--table", t, "--out", t / "results.md"],
])
def test_pinch_reports_are_not_written_over_the_table(table, capsys, argv):
    before = _table_files(table)
    line = one_line_error(pinch_main, argv(table), capsys)
    assert "--out" in line or "--plot" in line
    assert _table_files(table) == before and not (table.parent / "same").exists()


def test_the_sweep_report_is_not_written_over_the_table(table, capsys):
    (table.parent / "link.json").symlink_to(table / "results.json")
    before = _table_files(table)
    for out in (table / "results.json", table.parent / "link.json"):
        line = one_line_error(sweep_main, ["--table", table, "--out", out], capsys)
        assert str(out) in line and "results table" in line
    assert _table_files(table) == before


def test_tts_results_refuse_a_nan_mcd_before_writing_anything(tmp_path):
    dense = _model(tmp_path, "tts_dense", 0, math.nan, 4.0, baked=False)
    _tone(tmp_path / "ref.wav", 200)
    (tmp_path / "ref.scp").write_text("".join(f"{u} {tmp_path / 'ref.wav'}\n" for u in ("u1", "u2")))
    (tmp_path / "ref_cer.json").write_text(json.dumps({"cer": 3.5}))
    table = tmp_path / "table"
    with pytest.raises(ValueError, match=r"tts_metrics.json: .*NaN"):
        tts_results([dense], "asr", tmp_path / "ref_cer.json", tmp_path / "ref_judges.json", tmp_path / "ref.scp", "test", tmp_path / "RESULTS.md",
                    tmp_path / "samples", 1, "espnet", table)
    assert not (tmp_path / "RESULTS.md").exists() and not table.exists()


def test_tts_results_are_not_written_over_the_table(tmp_path, table):
    dense = _model(tmp_path, "tts_dense", 0, 6.0, 4.0, baked=False)
    _tone(tmp_path / "ref.wav", 200)
    (tmp_path / "ref.scp").write_text("".join(f"{u} {tmp_path / 'ref.wav'}\n" for u in ("u1", "u2")))
    (tmp_path / "ref_cer.json").write_text(json.dumps({"cer": 3.5}))
    before = _table_files(table)
    with pytest.raises(ValueError, match="results table"):
        tts_results([dense], "asr", tmp_path / "ref_cer.json", tmp_path / "ref_judges.json", tmp_path / "ref.scp", "test", table / "results.md",
                    tmp_path / "samples", 1, "espnet", table)
    assert _table_files(table) == before
