"""A transducer held as users hold it, through the NeMo recipe (issue 31, "What must be shown"):
a hybrid RNNT-CTC .nemo whose own tokenizer writes capitals and punctuation, made and saved
here (tiny, untrained: the assertions are about plumbing, not accuracy), compressed with
``--pretrained`` on manifests laid out unlike the embedded corpus (other set names, folders of
their own, wav and flac), decoded by its own greedy transducer search, scored as written and
normalized, and deployed as sherpa-onnx's encoder/decoder/joiner (stages 1-9, one run)."""
import json
import subprocess

import onnx
import pytest
import soundfile as sf
import torch
import yaml
from omegaconf import OmegaConf

from asr_recipe_runs import REPO, TINY, recipe_cmd, recipe_env
from families import TARGETS, family_cfg
from pinch.deploy.table import TRANSDUCER_FORMS, form_files

HYBRID = TARGETS["hybrid"].rsplit(".", 1)[1]  # EncDecHybridRNNTCTCBPEModel
HELD = "held_hybrid"
RUN = f"pretrained_{HELD}_sspg0.5"
TESTS = {"studio_read": "sets/studio_read/manifest.json", "phone_calls": "sets/phone_calls.json"}
QUESTION = {"where", "what", "who", "when", "why", "how", "is", "did", "can", "do"}


def written(text):
    """The corpus's lower-case text as a user's manifest writes it: capitalized, punctuated."""
    return text[0].upper() + text[1:] + ("?" if text.split()[0] in QUESTION else ".")


def _lines(manifest):
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _own_manifest(root, name, entries, audio_dir, rel_to):
    """``entries`` copied to ``root/audio_dir`` (wav and flac in turn), listed in ``root/name``
    with paths relative to ``rel_to`` (a prefix such as ``../../``) and texts as written."""
    out = []
    for i, e in enumerate(entries):
        fmt = ("FLAC", "WAV")[i % 2]
        rel = f"{audio_dir}/u{i:02d}.{fmt.lower()}"
        audio, rate = sf.read(e["audio_filepath"], dtype="int16")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, audio, rate, format=fmt, subtype="PCM_16")
        out.append({"audio_filepath": rel_to + rel, "duration": len(audio) / rate, "text": written(e["text"])})
    return _write(root / name, out)


@pytest.fixture(scope="module")
def held(tiny_corpus, tmp_path_factory):
    """``my/``: lists/fit.json (12 training utterances), lists/tune.json (the dev set), test sets
    studio_read (a folder's manifest.json) and phone_calls (a file stem), every text capitalized
    and punctuated, audio flac and wav; ``models/held_hybrid.nemo``, a tiny hybrid RNNT-CTC
    Conformer with a sentencepiece tokenizer trained on those written texts (greedy_batch
    RNNT decoding). Returns (root, the .nemo, {set: (texts, RNNT head's, CTC head's transcripts)})."""
    from pinch.nemo import pinch_class_for
    from pinch.nemo.bin import onnx_transcribe
    from pinch.nemo.bin.tokenizer import build_tokenizer

    root = tmp_path_factory.mktemp("nemo_held_transducer")
    my = root / "my"
    fit = _own_manifest(my, "lists/fit.json", _lines(tiny_corpus / "train" / "manifest.json")[:12], "audio/fit", "../")
    tune = _own_manifest(my, "lists/tune.json", _lines(tiny_corpus / "dev" / "manifest.json"), "audio/tune", "../")
    tests = {name: _own_manifest(my, path, _lines(tiny_corpus / split / "manifest.json"), f"audio/{name}",
                                 "../" * path.count("/"))
             for (name, path), split in zip(TESTS.items(), ("test_clean", "test_other"))}
    tokenizer = build_tokenizer([fit, tune, *tests.values()], root / "tokenizer", 64)

    cfg = OmegaConf.load(REPO / "conf" / "nemo" / "asr" / "conformer_ctc_bpe.yaml")
    cfg.merge_with_dotlist([o for o in TINY.split() if o.startswith("model.")] + [
        # where it was trained (elsewhere): the pass's overrides name the user's manifests instead
        f"model.train_ds.manifest_filepath={tiny_corpus / 'train' / 'manifest.json'}",
        f"model.validation_ds.manifest_filepath={tiny_corpus / 'dev' / 'manifest.json'}",
        f"model.tokenizer.dir={tokenizer}", "model.preprocessor.dither=0.0"])
    cfg = family_cfg(OmegaConf.create(OmegaConf.to_container(cfg.model, resolve=True)), "hybrid")
    cfg.decoding.greedy.max_symbols = onnx_transcribe.MAX_SYMBOLS  # as sherpa-onnx caps its search
    torch.manual_seed(0)
    model = pinch_class_for(cfg.target).nemo_class(cfg=cfg).eval()
    assert any(c.isupper() for c in model.tokenizer.vocab) and any(c in ".?" for c in "".join(model.tokenizer.vocab))
    nemo = root / "models" / f"{HELD}.nemo"
    nemo.parent.mkdir()
    model.save_to(str(nemo))

    heads = {}
    for name, manifest in tests.items():
        lines, audio = _lines(manifest), _audio(root, name)
        rnnt = [h.text for h in model.transcribe(audio, batch_size=4, verbose=False)]
        model.change_decoding_strategy(decoder_type="ctc", verbose=False)
        ctc = [h.text for h in model.transcribe(audio, batch_size=4, verbose=False)]
        model.change_decoding_strategy(decoder_type="rnnt", verbose=False)
        heads[name] = ([e["text"] for e in lines], rnnt, ctc)
    return root, nemo, heads


@pytest.fixture(scope="module")
def recipe(held):
    """Stages 1-9 from the held .nemo on the user's manifests: one sspg pass at 50% (1 epoch,
    2 updates at the compression config's rate), no dense control. Returns (run root, recipe's stderr)."""
    root, nemo, _ = held
    run, my = root / "run", root / "my"
    run.mkdir()
    finetune = ("model.train_ds.batch_size=8 model.validation_ds.batch_size=8 trainer.log_every_n_steps=1 "
                "exp_manager.create_tensorboard_logger=false trainer.max_epochs=1")
    proc = subprocess.run(recipe_cmd(run, "--results_table", str(run / "results"), "--pretrained", str(nemo),
                                     "--train_manifest", str(my / "lists" / "fit.json"),
                                     "--val_manifest", str(my / "lists" / "tune.json"),
                                     "--test_manifests", " ".join(str(my / p) for p in TESTS.values()),
                                     "--dense_control", "false", "--target_sparsity", "0.5",
                                     "--finetune_args", finetune, "--compress_args", "model.pruning.eta=20",
                                     "--stop_stage", "9", "--deploy_runtimes", "onnxruntime sherpa-onnx"),
                          cwd=run, env=recipe_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return run, proc.stderr


def _audio(root, dset):
    manifest = root / "my" / TESTS[dset]
    return [str(manifest.parent / e["audio_filepath"]) for e in _lines(manifest)]


def _hyps(path):
    return [line.split(" ", 1)[1] if " " in line else "" for line in path.read_text().splitlines()]


def test_the_pass_compresses_the_held_transducer_with_its_own_settings_and_decoding(held, recipe):
    from pinch.nemo import nemo_config

    root, _, _ = held
    run, _ = recipe
    exp = run / "exp"
    assert sorted(p.name for p in exp.iterdir() if p.is_dir() and p.name != "logs") == [f"pretrained_{HELD}", RUN]
    assert f"({HYBRID})" in (exp / "logs" / "pretrained.log").read_text()
    for nemo in (exp / RUN / "gated.nemo", exp / RUN / "model.nemo"):
        cfg = nemo_config(nemo)
        assert cfg.target.rsplit(".", 1)[1] == HYBRID, nemo  # the held class, not the recipe's CTC config's
        assert cfg.decoding.strategy == "greedy_batch" and cfg.aux_ctc.decoding.strategy == "greedy"
        assert any(c.isupper() for c in "".join(cfg.joint.vocabulary))  # its own tokenizer's, capitals too
    train_log = (exp / RUN / "train.log").read_text()
    assert "torchaudio" in train_log  # the RNN-T loss on the CPU (pinch.nemo.rnnt_loss)
    changed = yaml.safe_load((exp / RUN / "finetune_overrides.yaml").read_text())
    assert {k for k in changed if not k.startswith("model.pruning.")} == {
        "model.train_ds.manifest_filepath", "model.validation_ds.manifest_filepath", "model.optim.lr"}
    assert changed["model.train_ds.manifest_filepath"]["new"] == str(root / "my" / "lists" / "fit.json")
    rows = json.loads((run / "results" / "results.json").read_text())
    assert [r["method"] for r in rows] == ["dense", "sspg"] and rows[1]["steps"] == 2
    assert all(set(r["wer"]) == set(TESTS) and "corpus=manifests" in r["notes"] for r in rows)


def test_stage_6_decodes_with_the_transducer_head_and_scores_as_written_and_normalized(held, recipe):
    """The held model's transcripts are its RNNT head's (NeMo's greedy transducer search), not
    its CTC head's; the references keep their capitals and punctuation when scored as written."""
    root, _, heads = held
    run, _ = recipe
    exp = run / "exp"
    for model in (f"pretrained_{HELD}", RUN):
        assert f"{HYBRID} on cpu, its own decoding (greedy_batch)" in (exp / model / "transcribe.log").read_text()
    from nemo.collections.asr.models import ASRModel

    baked = ASRModel.restore_from(str(exp / RUN / "model.nemo"), map_location="cpu").eval()
    compressed = {dset: [h.text for h in baked.transcribe(_audio(root, dset), batch_size=4, verbose=False)]
                  for dset in TESTS}
    for dset, (texts, rnnt, ctc) in heads.items():
        assert rnnt != ctc  # the check below tells the heads apart
        assert _hyps(exp / f"pretrained_{HELD}" / f"decode_{dset}" / "hyp.txt") == rnnt
        assert _hyps(exp / RUN / f"decode_{dset}" / "hyp.txt") == compressed[dset]
        assert _hyps(run / "data" / dset / "text") == texts
        for model in (f"pretrained_{HELD}", RUN):
            score = exp / model / f"decode_{dset}" / "score_wer"
            result = json.loads((score / "result.json").read_text())
            assert result["scoring"] == "as written (case-sensitive)" and result["utterances"] == len(texts)
            assert result["normalized"]["scoring"].startswith("normalized") and "wer" in result["normalized"]
            ref = (score / "ref.word.trn").read_text()
            assert all(t.split()[0] in ref and t.split()[-1] in ref for t in texts)  # "Where", "table?"
            norm = (score / "normalized" / "ref.word.trn").read_text()
            assert not any(c in norm for c in ".?") and not any(c.isupper() for c in norm.split("(")[0])


def test_stage_9_deploys_the_transducer_in_sherpa_onnx_layout_and_decodes_it_in_both_runtimes(held, recipe):
    _, _, heads = held
    run, _ = recipe
    exp = run / "exp"
    for model in (f"pretrained_{HELD}", RUN):
        onnx_dir = exp / model / "onnx"
        assert not (onnx_dir / "model.onnx").exists()
        tokens = (onnx_dir / "tokens.txt").read_text()
        assert any(line[:1].isupper() or line.startswith("▁") and line[1:2].isupper() for line in tokens.splitlines())
        for form in TRANSDUCER_FORMS:
            encoder, decoder, joiner = form_files(exp / model, form)
            assert decoder.is_file() and joiner.is_file()
            meta = {p.key: p.value for p in onnx.load(str(encoder)).metadata_props}
            assert meta.get("model_type") == HYBRID and meta.get("url") is None  # an RNNT head, not TDT
            assert meta.get("vocab_size") == str(len(tokens.splitlines()) - 1) and meta.get("pred_rnn_layers") == "1"
            for rt in ("onnxruntime", "sherpa-onnx"):
                for dset, (texts, _, _) in heads.items():
                    out = onnx_dir / f"{form}_{rt}" / f"decode_{dset}"
                    hyps = _hyps(out / "hyp.txt")
                    assert len(hyps) == len(texts) and (model == RUN or all(hyps)), out  # the held model emits on each
                    result = json.loads((out / "score_wer" / "result.json").read_text())
                    assert "normalized" in result and (out / "mapsswe_vs_dense" / "compare.json").is_file()
    # onnxruntime on NeMo's features reproduces NeMo's greedy transducer search of the held model.
    for dset, (_, rnnt, _) in heads.items():
        assert _hyps(exp / f"pretrained_{HELD}" / "onnx" / "fp32_onnxruntime" / f"decode_{dset}" / "hyp.txt") == rnnt
    rows = json.loads((exp / "DEPLOY.json").read_text())["rows"]
    assert [(r["model"], r["form"], r["runtime"]) for r in rows] == [
        (m, f"onnx {f}", rt) for m in (f"pretrained_{HELD}", RUN) for f in TRANSDUCER_FORMS
        for rt in ("onnxruntime", "sherpa-onnx")]
    assert all(set(r["wer"]) == set(TESTS) for r in rows)
    assert "| onnx int8_static | sherpa-onnx |" in (exp / "DEPLOY.md").read_text()


def test_no_stage_tries_the_network(recipe):
    run, log = recipe
    logs = {"stderr": log} | {str(p): p.read_text(errors="replace") for p in run.rglob("*.log")}
    assert len(logs) > 10
    for name, text in logs.items():
        assert "urlopen" not in text and "Error loading" not in text, name
