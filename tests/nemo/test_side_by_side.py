"""The cross-toolkit table lines up ESPnet and NeMo rows of the same method and target."""
import pytest

from pinch.scoring import append_result, read_rows
from pinch.scoring.side_by_side import main, newest_rows, side_by_side


def _row(toolkit, method, wer, date, target=None, corpus="embedded", **extra):
    row = {"system": f"{toolkit}_{method}", "toolkit": toolkit, "method": method, "target_sparsity": target,
           "wer": {"test_clean": wer}, "notes": corpus and f"corpus={corpus}", "date": date, **extra}
    return {k: v for k, v in row.items() if v is not None}


def test_newest_row_per_toolkit_method_and_target(tmp_path):
    sig = {"test_clean": {"p_value": 0.42, "lossless": True}}
    for row in [
        _row("espnet", "dense", 8.0, "2026-01-01T00:00:00Z", params=100),
        _row("nemo", "dense", 7.0, "2026-01-01T00:00:01Z", params=90),
        _row("nemo", "sspg", 9.9, "2026-01-01T00:00:02Z", target=0.65),
        _row("nemo", "sspg", 7.5, "2026-01-02T00:00:00Z", target=0.65, sparsity=0.65, significance=sig),
        _row("espnet", "sspg", 8.2, "2026-01-01T00:00:03Z", target=0.65, wall_time_s=61.0, corpus=None),
        _row("nemo", "sspg", 50.0, "2026-01-03T00:00:00Z", target=0.65, corpus="librispeech"),
    ]:
        append_result(tmp_path, row)
    lines = side_by_side(newest_rows(read_rows(tmp_path), corpus="embedded")).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [r[:2] for r in body] == [["dense", ""], ["sspg", "0.65"]]  # dense first
    dense, sspg = (dict(zip(header, r)) for r in body)
    assert dense["espnet params"] == "100" and dense["nemo params"] == "90"
    assert sspg["nemo WER test_clean"] == "7.50 (p=0.42 vs dense, lossless)"  # the newer embedded row
    assert sspg["espnet WER test_clean"] == "8.20" and sspg["espnet time s"] == "61"  # no corpus note: kept
    assert sspg["nemo sparsity"] == "0.65"


def test_corpus_note_is_found_beside_other_notes():
    from pinch.scoring.side_by_side import corpus_of

    assert corpus_of({"notes": "corpus=embedded; vs dense on test_clean: p=1 lossless"}) == "embedded"
    assert corpus_of({"notes": "corpus=embedded, --max_epoch 2"}) == "embedded"


def test_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="no espnet or nemo asr rows for corpus 'embedded'"):
        newest_rows([_row("nemo", "dense", 1.0, "x", corpus="librispeech")], corpus="embedded")
    assert main(["--table", str(tmp_path)]) == 1
    assert "results.json: missing" in capsys.readouterr().err


def test_plot_draws_a_sweep_from_the_dense_model(tmp_path, capsys):
    for row in [
        _row("espnet", "dense", 8.0, "2026-01-01T00:00:00Z"),
        _row("espnet", "sspg", 9.5, "2026-01-01T00:00:02Z", target=0.8, sparsity=0.8),
        _row("espnet", "sspg", 8.1, "2026-01-01T00:00:01Z", target=0.5, sparsity=0.5),
        _row("nemo", "ump", 7.9, "2026-01-01T00:00:03Z", target=0.5, sparsity=0.5),
    ]:
        append_result(tmp_path, row)
    png = tmp_path / "plots" / "wer.png"
    assert main(["--table", str(tmp_path), "--corpus", "embedded", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from pinch.scoring.side_by_side_plot import wer_curves

    curves = wer_curves(newest_rows(read_rows(tmp_path), corpus="embedded"))
    # Sorted by sparsity and starting at the toolkit's dense model; no dense NeMo row.
    assert curves == {"test_clean": {("espnet", "sspg"): [(0.0, 8.0), (0.5, 8.1), (0.8, 9.5)],
                                     ("nemo", "ump"): [(0.5, 7.9)]}}


def test_curves_start_at_the_equally_trained_dense_control(tmp_path):
    from pinch.scoring.side_by_side_plot import wer_curves

    rows = [_row("espnet", "dense", 8.0, "2026-01-01T00:00:00Z"),
            _row("espnet", "dense_finetune", 6.0, "2026-01-01T00:00:01Z"),
            _row("espnet", "sspg", 6.3, "2026-01-01T00:00:02Z", target=0.65, sparsity=0.65,
                 reference="dense_finetune", significance={"test_clean": {"p_value": 0.3, "lossless": True}})]
    newest = newest_rows(rows, corpus="embedded")
    assert wer_curves(newest) == {"test_clean": {("espnet", "sspg"): [(0.0, 6.0), (0.65, 6.3)]}}
    body = side_by_side(newest).splitlines()[2:]
    assert [line.split("|")[1].strip() for line in body] == ["dense", "dense_finetune", "sspg"]
    assert "(p=0.3 vs dense_finetune, lossless)" in body[2]


def test_plot_needs_a_compressed_row(tmp_path):
    from pinch.scoring.side_by_side_plot import plot_wer_vs_sparsity

    rows = newest_rows([_row("espnet", "dense", 8.0, "2026-01-01T00:00:00Z")], corpus="embedded")
    with pytest.raises(ValueError, match="no compressed row"):
        plot_wer_vs_sparsity(rows, tmp_path / "wer.png")
    assert not (tmp_path / "wer.png").exists()
