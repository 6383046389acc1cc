"""A TTS recipe's results: parameter counts of the encoder apart from the whole model,
RESULTS.md, table rows appended once (in their own TTS table), samples with mel plots,
and the toolkits side by side for TTS."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from pinch.scoring.results import read_rows, render_markdown
from pinch.scoring.side_by_side import main as side_by_side_main
from pinch.scoring.tts_results import TTSModel, parameter_counts, tts_results

SR = 16000


def _judges(path, cer, ovrl, tests=()):
    """A judges.json as pinch.scoring.judges writes it (the fields the results read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pocketsphinx": {"cer": cer, "mapsswe": {
        ref: {"p_value": p, "lossless": lossless} for ref, p, lossless in tests}},
        "dnsmos": {"sig": ovrl + 0.5, "bak": 4.0, "ovrl": ovrl}}))


def _tone(path, hz, seconds=0.5):
    t = np.arange(int(SR * seconds)) / SR
    sf.write(path, 0.3 * np.sin(2 * np.pi * hz * t), SR)


def _model(tmp_path, name, encoder_zeros, mcd, cer, baked, method="dense", tests=(("dense", 0.4, True),)):
    d = tmp_path / name / ("baked" if baked else "")
    d.mkdir(parents=True, exist_ok=True)
    enc = torch.ones(10, 10)
    enc.view(-1)[:encoder_zeros] = 0
    synth = d / "synth" / "test"
    (synth / "tts_metrics").mkdir(parents=True)
    (synth / "tts_metrics" / "tts_metrics.json").write_text(json.dumps({"mcd": mcd, "log_f0_rmse": 0.1, "utterances": 2}))
    (synth / "asr" / "score_wer").mkdir(parents=True)
    (synth / "asr" / "score_wer" / "result.json").write_text(json.dumps({"cer": cer, "wer": 2 * cer}))
    wavs = []
    for i, u in enumerate(("u1", "u2")):
        _tone(synth / f"{u}.wav", 300 + 50 * i + encoder_zeros)
        wavs.append(f"{u} {synth / f'{u}.wav'}")
    (synth / "wav.scp").write_text("\n".join(wavs) + "\n")
    _judges(synth / "judges" / "judges.json", 3 * cer, 3.0 - cer / 10, tests if baked else ())
    for ref, p, lossless in tests if baked else ():
        (synth / "asr" / f"mapsswe_vs_{ref}").mkdir()
        (synth / "asr" / f"mapsswe_vs_{ref}" / "compare.json").write_text(json.dumps({"p_value": p, "lossless": lossless}))
    return TTSModel(name, d, synth, parameter_counts({"tts.enc.w": enc, "tts.dec.w": torch.ones(50)}.items(), "tts.enc."),
                    {"method": "sspg", "target_sparsity": 0.5} if baked else None, method)


def test_encoder_and_model_counted_apart(tmp_path):
    c = _model(tmp_path, "x", 50, 1.0, 1.0, baked=False).counts
    assert c["encoder_params"] == 100 and c["encoder_sparsity"] == 0.5
    assert c["params"] == 150 and c["nonzero_params"] == 100
    assert c["sparsity_model"] == pytest.approx(50 / 150)
    with pytest.raises(ValueError, match="no parameter starts with the encoder prefix 'fastpitch.encoder.'"):
        parameter_counts({"tts.enc.w": torch.ones(2)}.items(), "fastpitch.encoder.")
    # ESPnet's TTS encoders: Tacotron2's enc, FastSpeech2's encoder (not its decoder's "encoders").
    from pinch.espnet.bin.tts_results import ENCODER_PREFIXES

    fastspeech2 = {"tts.encoder.encoders.0.w": torch.zeros(3), "tts.decoder.encoders.0.w": torch.ones(5)}
    c = parameter_counts(fastspeech2.items(), ENCODER_PREFIXES)
    assert c["encoder_params"] == 3 and c["encoder_sparsity"] == 1.0 and c["params"] == 8


def test_results_rows_samples_and_side_by_side(tmp_path, capsys):
    dense = _model(tmp_path, "tts_dense", 0, 6.0, 4.0, baked=False)
    pruned = _model(tmp_path, "tts_dense_sspg0.5", 50, 6.2, 5.0, baked=True)
    # The same target on the encoder and the decoder: a row of its own, its preset named.
    whole = _model(tmp_path, "tts_dense_sspg0.5_tacotron2_tacotron2_decoder", 50, 6.4, 5.5, baked=True)
    whole.pruning.update(preset="[tacotron2, tacotron2_decoder]", gated_params=150)
    ref_scp = tmp_path / "ref.scp"
    for u in ("u1", "u2"):
        _tone(tmp_path / f"ref_{u}.wav", 200)
    ref_scp.write_text("".join(f"{u} {tmp_path / f'ref_{u}.wav'}\n" for u in ("u1", "u2")))
    (tmp_path / "ref_cer.json").write_text(json.dumps({"cer": 3.5, "wer": 7.0}))
    _judges(tmp_path / "ref_judges.json", 12.0, 3.2)
    table = tmp_path / "table"

    def run():
        return tts_results([dense, pruned, whole], "asr", tmp_path / "ref_cer.json", tmp_path / "ref_judges.json", ref_scp,
                           "test",
                           tmp_path / "RESULTS.md", tmp_path / "samples", 1, "espnet", table, notes="corpus=embedded")

    rows = run()
    assert [r["encoder_sparsity"] for r in rows] == [0.0, 0.5, 0.5]
    md = (tmp_path / "RESULTS.md").read_text()
    assert "on the recordings themselves it is 3.50%" in md
    assert ("|tts_dense_sspg0.5|100|0.5000|150|0.3333|6.200|0.1000|5.00|10.00||0.4 (no significant increase)|"
            "15.00|0.4 (no significant increase) vs dense model|3.000|4.000|2.500|") in md
    assert "|the recordings|||||||3.50|7.00|||12.00||3.700|4.000|3.200|" in md
    header = next(line for line in md.splitlines() if line.startswith("|model|"))
    assert all(line.count("|") == header.count("|") for line in md.splitlines() if line.startswith("|"))
    assert sorted(p.name for p in (tmp_path / "samples" / "u1").iterdir()) == [
        "mel.png", "reference.wav", "tts_dense.wav", "tts_dense_sspg0.5.wav",
        "tts_dense_sspg0.5_tacotron2_tacotron2_decoder.wav"]
    assert not (tmp_path / "samples" / "u2").exists()  # n_samples=1
    stored = read_rows(table)
    assert [r["task"] for r in stored] == ["tts"] * 3 and stored[1]["significance"] == {
        "test": {"p_value": 0.4, "lossless": True}}
    assert stored[1]["pocketsphinx_cer"] == 15.0 and stored[1]["dnsmos_ovrl"] == 2.5
    assert stored[1]["pocketsphinx_mapsswe"] == {"dense": {"test": {"p_value": 0.4, "lossless": True}}}
    assert "pocketsphinx CER of the recordings 12.00; DNSMOS of the recordings SIG 3.700 BAK 4.000 OVRL 3.200" \
        in stored[0]["notes"]
    assert [r.get("preset") for r in stored] == [None, "auto", "[tacotron2, tacotron2_decoder]"]
    assert stored[2]["gated_params"] == 150 and stored[2]["model_sparsity"] == pytest.approx(0.3333)
    run()  # a rerun appends no row twice
    assert len(read_rows(table)) == 3
    text = render_markdown(stored + [{"system": "asr_dense", "toolkit": "espnet", "wer": {"test_clean": 9.0}}])
    asr_part, tts_part = text.split("## TTS")
    assert "asr_dense" in asr_part and "MCD" not in asr_part and "tts_dense" not in asr_part
    assert "ASR-CER test" in tts_part and "encoder sparsity" in tts_part and "WER" not in tts_part
    assert "| pocketsphinx CER | DNSMOS SIG | DNSMOS BAK | DNSMOS OVRL |" in tts_part and "DNSMOS" not in asr_part
    assert side_by_side_main(["--table", str(table), "--task", "tts"]) == 0
    out = capsys.readouterr().out
    assert "espnet gated params | espnet model sparsity | espnet MCD dB" in out
    assert "| sspg | 0.5 | 100 | 0.5 | 150 |  | 0.3333 | 6.2 | 0.1 | 5.00 (p=0.4 vs dense, lossless)" in out
    assert "| sspg [tacotron2, tacotron2_decoder] | 0.5 | 100 | 0.5 | 150 | 150 | 0.3333 | 6.4 | 0.1 | 5.50 (p=0.4" in out
    # Every judge beside the first, each CER marked against the same reference.
    assert "espnet DNSMOS OVRL | espnet pocketsphinx CER test | espnet cross ASR-CER test |" in out
    assert "5.00 (p=0.4 vs dense, lossless) | 2.5 | 15.00 (p=0.4 vs dense, lossless) |  |" in out
    assert "nemo" not in out  # a toolkit with no rows gets no empty columns
    assert side_by_side_main(["--table", str(table)]) == 1  # no ASR rows there


def test_the_verdict_of_a_compressed_model_is_against_the_dense_control_where_there_is_one(tmp_path):
    """The control (fine-tuned as long, no pruning) is its own row; the compressed model's verdict
    names the control as its reference, and every test made is kept."""
    dense = _model(tmp_path, "tts_dense", 0, 6.0, 4.0, baked=False)
    control = _model(tmp_path, "tts_dense_finetune", 0, 5.8, 3.5, baked=False, method="dense_finetune")
    pruned = _model(tmp_path, "tts_dense_sspg0.5", 50, 6.2, 5.0, baked=True,
                    tests=(("dense", 0.4, True), ("dense_finetune", 0.02, False)))
    ref_scp = tmp_path / "ref.scp"
    _tone(tmp_path / "ref_u1.wav", 200)
    _tone(tmp_path / "ref_u2.wav", 200)
    ref_scp.write_text("".join(f"{u} {tmp_path / f'ref_{u}.wav'}\n" for u in ("u1", "u2")))
    (tmp_path / "ref_cer.json").write_text(json.dumps({"cer": 3.5, "wer": 7.0}))
    _judges(tmp_path / "ref_judges.json", 12.0, 3.2)
    table = tmp_path / "table"
    tts_results([dense, control, pruned], "asr", tmp_path / "ref_cer.json", tmp_path / "ref_judges.json", ref_scp, "test",
                tmp_path / "RESULTS.md", tmp_path / "samples", 1, "espnet", table)
    stored = read_rows(table)
    assert [r["method"] for r in stored] == ["dense", "dense_finetune", "sspg"]
    assert stored[2]["reference"] == "dense_finetune"
    assert stored[2]["significance"] == {"test": {"p_value": 0.02, "lossless": False}}
    assert stored[2]["mapsswe"]["dense"] == {"test": {"p_value": 0.4, "lossless": True}}
    md = (tmp_path / "RESULTS.md").read_text()
    assert "|MAPSSWE p vs dense control|MAPSSWE p vs dense model|" in md
    assert "|5.00|10.00|0.02 (worse)|0.4 (no significant increase)|15.00|0.02 (worse) vs dense control|" in md
    assert stored[2]["pocketsphinx_mapsswe"]["dense"] == {"test": {"p_value": 0.4, "lossless": True}}


def test_the_other_toolkits_asr_judge_has_its_table_and_its_row_fields(tmp_path):
    """A second ASR judge (the other toolkit's model): its CER and MAPSSWE tests per model, its CER
    on the recordings, in RESULTS.md's second table and in the rows (results.json)."""
    dense = _model(tmp_path, "tts_dense", 0, 6.0, 4.0, baked=False)
    pruned = _model(tmp_path, "tts_dense_sspg0.5", 50, 6.2, 5.0, baked=True)
    for m, cer in ((dense, 8.0), (pruned, 9.5)):
        scores = m.synth_dir / "cross_asr_nemo"
        (scores / "score_wer").mkdir(parents=True)
        (scores / "score_wer" / "result.json").write_text(json.dumps({"cer": cer, "wer": 2 * cer}))
    (pruned.synth_dir / "cross_asr_nemo" / "mapsswe_vs_dense").mkdir()
    (pruned.synth_dir / "cross_asr_nemo" / "mapsswe_vs_dense" / "compare.json").write_text(
        json.dumps({"p_value": 0.03, "lossless": False}))
    ref_scp = tmp_path / "ref.scp"
    _tone(tmp_path / "ref_u1.wav", 200)
    _tone(tmp_path / "ref_u2.wav", 200)
    ref_scp.write_text("".join(f"{u} {tmp_path / f'ref_{u}.wav'}\n" for u in ("u1", "u2")))
    (tmp_path / "ref_cer.json").write_text(json.dumps({"cer": 3.5, "wer": 7.0}))
    (tmp_path / "cross_ref.json").write_text(json.dumps({"cer": 2.25, "wer": 4.5}))
    _judges(tmp_path / "ref_judges.json", 12.0, 3.2)
    table = tmp_path / "table"
    tts_results([dense, pruned], "asr", tmp_path / "ref_cer.json", tmp_path / "ref_judges.json", ref_scp, "test",
                tmp_path / "RESULTS.md", tmp_path / "samples", 1, "espnet", table,
                cross=("cross_asr_nemo", tmp_path / "cross_ref.json"))
    md = (tmp_path / "RESULTS.md").read_text()
    assert "ASR model (`cross_asr_nemo`) as a second judge" in md and "(on the recordings 2.25%)" in md
    assert "|tts_dense|8.00|||" in md and "|tts_dense_sspg0.5|9.50||0.03 (worse)|" in md
    stored = read_rows(table)
    assert [r["cross_cer"] for r in stored] == [{"test": 8.0}, {"test": 9.5}]
    assert stored[1]["cross_mapsswe"] == {"dense": {"test": {"p_value": 0.03, "lossless": False}}}
    assert "cross ASR judge cross_asr_nemo: CER of the recordings 2.25" in stored[0]["notes"]
    # Absent a judge's scores, the results stop and name the file.
    (pruned.synth_dir / "cross_asr_nemo" / "score_wer" / "result.json").unlink()
    with pytest.raises(ValueError, match="cross_asr_nemo/score_wer/result.json is missing"):
        tts_results([dense, pruned], "asr", tmp_path / "ref_cer.json", tmp_path / "ref_judges.json", ref_scp, "test",
                    tmp_path / "RESULTS2.md", tmp_path / "samples", 1, "espnet",
                    cross=("cross_asr_nemo", tmp_path / "cross_ref.json"))
