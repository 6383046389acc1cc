"""NeMo transducers (RNNT, TDT, a hybrid's TDT head) export to sherpa-onnx's NeMo transducer
layout and decode as NeMo decodes them, on randomly initialised tiny models (they emit tokens
on every utterance, and different ones, so the comparisons can fail).

onnxruntime on NeMo's features gives NeMo's greedy transcripts. sherpa-onnx computes its own
features; its NeMo transducer front end differs from NeMo's in two ways that no option
selects (kaldi's povey window for NeMo's Hann window, per-feature normalization by the biased
standard deviation), so its transcripts are compared with NeMo's greedy search on those
features. Both searches are capped as sherpa-onnx caps them (max_symbols).
"""
import onnx
import pytest
import torch

from families import family_cfg
from pinch.deploy import read_tokens
from pinch.deploy.onnx_files import onnx_session
from pinch.deploy.report import latency_feeds
from pinch.deploy.table import TRANSDUCER_FORMS, form_files
from pinch.nemo import pinch_class_for
from pinch.nemo.bin import export_onnx, onnx_transcribe
from pinch.nemo.bin.transcribe import utterances


def sherpa_front_end(preprocessor, monkeypatch):
    """Make NeMo's ``preprocessor`` compute sherpa-onnx 2.0.1's NeMo transducer features."""
    import nemo.collections.asr.parts.preprocessing.features as features

    featurizer = preprocessor.featurizer
    n = torch.arange(featurizer.win_length, dtype=torch.float64)
    featurizer.window = ((0.5 - 0.5 * torch.cos(2 * torch.pi * n / (len(n) - 1))) ** 0.85).float()

    def biased(x, seq_len, normalize_type):
        assert normalize_type == "per_feature"
        valid = (torch.arange(x.shape[2]) < seq_len[:, None])[:, None, :]
        frames = valid.sum(2, keepdim=True)
        mean = torch.where(valid, x, 0.0).sum(2, keepdim=True) / frames
        std = (torch.where(valid, x - mean, 0.0) ** 2).sum(2, keepdim=True).div(frames).sqrt() + 1e-5
        return ((x - mean) / std).masked_fill(~valid, 0.0), mean, std

    monkeypatch.setattr(features, "normalize_batch", biased)


def words(texts):
    return [" ".join(t.split()) for t in texts]


@pytest.mark.parametrize("family", ["rnnt", "tdt", "hybrid_tdt"])
def test_a_transducer_exports_to_sherpa_onnx_layout_and_decodes_as_nemo(family, tiny_model_cfg, tiny_corpus, tmp_path,
                                                                        monkeypatch):
    tdt = family != "rnnt"
    cfg = family_cfg(tiny_model_cfg, family)
    cfg.decoding.greedy.max_symbols = onnx_transcribe.MAX_SYMBOLS_TDT if tdt else onnx_transcribe.MAX_SYMBOLS
    torch.manual_seed(0)
    model = pinch_class_for(cfg.target).nemo_class(cfg=cfg).eval()
    model.save_to(str(tmp_path / "model.nemo"))
    out = tmp_path / "onnx"
    assert export_onnx.main(["--model", str(tmp_path / "model.nemo"), "--out_dir", str(out),
                             "--calibration_dir", str(tiny_corpus / "dev")]) == 0

    assert {p.name for p in out.iterdir()} == {n for names in TRANSDUCER_FORMS.values() for n in names} | {"tokens.txt"}
    tokens = read_tokens(out / "tokens.txt")
    assert tokens == [*model.joint.vocabulary, "<blk>"]
    expected = {"vocab_size": str(len(tokens) - 1), "pred_rnn_layers": "1", "pred_hidden": "16", "feat_dim": "80",
                "subsampling_factor": "4", "normalize_type": "per_feature",
                "model_type": "EncDecHybridRNNTCTCBPEModel" if family == "hybrid_tdt" else "EncDecRNNTBPEModel"}
    for form in TRANSDUCER_FORMS:
        encoder, _, joiner = form_files(tmp_path, form)
        meta = {p.key: p.value for p in onnx.load(str(encoder)).metadata_props}
        assert {k: meta.get(k) for k in expected} == expected and meta.get("url") == ("tdt" if tdt else None)
        assert onnx_session(joiner).get_outputs()[0].shape[-1] == len(tokens) + (5 if tdt else 0)
    onnx_session(out / "encoder.onnx").run(None, latency_feeds(out / "encoder.onnx"))  # the deploy table's timing

    audio = [a for _, a in utterances(tiny_corpus / "test_clean") + utterances(tiny_corpus / "test_other")]
    reference = words(h.text for h in model.transcribe(audio, batch_size=1, verbose=False))
    assert all(reference) and len(set(reference)) > len(reference) // 2

    def decoder(form, runtime):
        return onnx_transcribe.decoder_for(out / TRANSDUCER_FORMS[form][0], runtime, tokens, out / "tokens.txt")

    assert words(map(decoder("fp32", "onnxruntime"), audio)) == reference
    sherpa = {form: words(map(decoder(form, "sherpa-onnx"), audio)) for form in TRANSDUCER_FORMS}
    assert all(all(texts) for texts in sherpa.values())  # every form loads and decodes in sherpa-onnx
    sherpa_front_end(model.preprocessor, monkeypatch)
    assert sherpa["fp32"] == words(h.text for h in model.transcribe(audio, batch_size=1, verbose=False))


def test_onnx_transcription_writes_hypotheses_and_refuses_what_sherpa_onnx_would_exit_on(tiny_model_cfg, tiny_corpus,
                                                                                        tmp_path, capsys):
    """A hybrid deploys its TDT head by default and its CTC head with --branch ctc; a token list
    that does not fit is one error line, not sherpa-onnx ending the process."""
    torch.manual_seed(0)
    model = pinch_class_for(family_cfg(tiny_model_cfg, "hybrid_tdt").target).nemo_class(
        cfg=family_cfg(tiny_model_cfg, "hybrid_tdt"))
    model.save_to(str(tmp_path / "model.nemo"))
    out = tmp_path / "onnx"
    assert export_onnx.main(["--model", str(tmp_path / "model.nemo"), "--out_dir", str(out)]) == 0
    assert not (out / "model.onnx").exists() and not (out / "encoder.int8_static.onnx").exists()
    hyp = tmp_path / "hyp.txt"
    test = tiny_corpus / "test_clean"
    for runtime in onnx_transcribe.RUNTIMES:
        assert onnx_transcribe.main(["--tokens", str(out / "tokens.txt"),
                                     "--decode", str(out / "encoder.int8.onnx"), runtime, str(test), str(hyp)]) == 0
        assert [line.split()[0] for line in hyp.read_text().splitlines()] == sorted(u for u, _ in utterances(test))
    wrong = tmp_path / "tokens.txt"
    wrong.write_text("".join(f"{t} {i}\n" for i, t in enumerate(read_tokens(out / "tokens.txt")[1:])))
    assert onnx_transcribe.main(["--tokens", str(wrong), "--decode", str(out / "encoder.onnx"), "sherpa-onnx",
                                 str(test), str(tmp_path / "wrong.txt")]) == 1
    assert "they do not belong together" in capsys.readouterr().err

    ctc = tmp_path / "ctc"
    assert export_onnx.main(["--model", str(tmp_path / "model.nemo"), "--out_dir", str(ctc), "--branch", "ctc"]) == 0
    assert {p.name for p in ctc.iterdir()} == {"model.onnx", "model.int8.onnx", "tokens.txt"}


def test_a_transducer_sherpa_onnx_cannot_decode_is_refused_before_any_file(tiny_model_cfg, tmp_path, capsys):
    cfg = family_cfg(tiny_model_cfg, "tdt")
    cfg.decoding.durations = cfg.loss.tdt_kwargs.durations = [0, 1, 2, 4, 8]
    pinch_class_for(cfg.target).nemo_class(cfg=cfg).save_to(str(tmp_path / "model.nemo"))
    assert export_onnx.main(["--model", str(tmp_path / "model.nemo"), "--out_dir", str(tmp_path / "onnx")]) == 1
    assert "sherpa-onnx decodes only durations [0, 1, 2, 3, 4]" in capsys.readouterr().err
    assert not (tmp_path / "onnx").exists()
    assert export_onnx.main(["--model", str(tmp_path / "model.nemo"), "--out_dir", str(tmp_path / "onnx"),
                             "--branch", "ctc"]) == 1
    assert "has one head; --branch picks a hybrid's" in capsys.readouterr().err
