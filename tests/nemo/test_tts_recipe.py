"""The NeMo TTS recipe end to end on the tiny embedded corpus with a tiny FastPitch (CPU).

The NeMo ASR recipe's stages 1-3 (``nemo_dense``, shared with the ASR recipe module) made the
corpus (the TTS recipe's --datadir) and the dense ASR model that scores the synthesized speech;
the ESPnet ASR recipe's dense model (``espnet_dense``) is the second, cross-toolkit judge; the TTS
recipe then runs every stage once (module fixture).
"""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from asr_recipe_runs import DENSE, REPO, recipe_env

RECIPES = REPO / "recipes" / "nemo"
ASR_MODEL = f"asr_exp/{DENSE}/model.nemo"  # the shared dense model (nemo_dense)
# FastPitch of a few thousand weights; at least a frame per token, so that the untrained model
# still speaks every sentence.
TINY_FASTPITCH = " ".join([
    "model.symbols_embedding_dim=16", "model.input_fft.n_layer=1", "model.output_fft.n_layer=1",
    "model.input_fft.n_head=1", "model.output_fft.n_head=1", "model.input_fft.d_head=8", "model.output_fft.d_head=8",
    "model.input_fft.d_inner=64", "model.output_fft.d_inner=32", "model.duration_predictor.filter_size=16",
    "model.pitch_predictor.filter_size=16", "model.duration_predictor.n_layers=1", "model.pitch_predictor.n_layers=1",
    "model.alignment_module.n_att_channels=16", "model.min_token_duration=1",
    "model.train_ds.dataloader_params.batch_size=4", "trainer.log_every_n_steps=1",
    "exp_manager.create_tensorboard_logger=false"])
# A high learning rate lets the thresholds reach the target within the 6 updates of the pass.
FINETUNE = ("model.train_ds.dataloader_params.batch_size=4 trainer.max_epochs=3 model.optim.lr=0.05 "
            "trainer.log_every_n_steps=1 exp_manager.create_tensorboard_logger=false")
SYNTH = "synth_griffin_lim/test"
ASR_TAG = "asr_conformer_ctc_bpe_unigram32"
CROSS_MODEL_DIR = "exp/asr_train_asr_conformer_ctc_raw_bpe30"  # espnet_dense's, under <root>/espnet_asr


def run(cmd, check=True):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=recipe_env(), timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd[1]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def tts_cmd(root, *options):
    return ["bash", str(RECIPES / "tts" / "run.sh"), "--python", sys.executable, "--size", "tiny",
            "--datadir", str(root / "data"), "--dumpdir", str(root / "tts_dump"), "--expdir", str(root / "tts_exp"),
            "--results_table", str(root / "results"), "--asr_model", str(root / ASR_MODEL), "--n_samples", "1",
            "--train_args", f"{TINY_FASTPITCH} trainer.max_epochs=2", "--finetune_args", FINETUNE,
            "--cross_asr_recipe", str(root / "espnet_asr"), "--cross_asr_model_dir", CROSS_MODEL_DIR,
            "--cross_asr_inference_config", str(REPO / "recipes" / "espnet" / "asr1" / "conf" / "decode_ctc.yaml"),
            *options]


@pytest.fixture(scope="module")
def recipe(nemo_dense, espnet_dense, tmp_path_factory):
    """The TTS recipe on the ASR recipe's corpus and dense model (``nemo_dense``): the corpus a copy
    of its own (stage 6 below edits a text file in it), the ASR model read in place."""
    root = tmp_path_factory.mktemp("nemo_tts_recipe")
    shutil.copytree(nemo_dense / "data", root / "data", symlinks=True)
    (root / "asr_exp").symlink_to(nemo_dense / "exp")
    (root / "espnet_asr").symlink_to(espnet_dense)  # the cross-toolkit judge's recipe root
    log = run(tts_cmd(root, "--stop_stage", "5")).stderr
    # Stage 6 speaks the test sentences plus two it cannot: digits are no token of the
    # character tokenizer (there is no text normalizer), and an empty line.
    text = root / "data" / "tts" / "test" / "text"
    original = text.read_text()
    try:
        text.write_text(original + "zz-bad-1 room 42 is open\nzz-bad-2\n")
        log += run(tts_cmd(root, "--stage", "6", "--stop_stage", "6")).stderr
    finally:
        text.write_text(original)
    log += run(tts_cmd(root, "--stage", "7")).stderr
    exp = root / "tts_exp"
    return {"root": root, "exp": exp, "dense": exp / "fastpitch", "control": exp / "fastpitch_finetune",
            "compressed": exp / "fastpitch_sspg0.5",
            "test_ids": [line.split()[0] for line in original.splitlines()], "stderr": log}


def test_every_stage_ran_and_wrote_results(recipe):
    exp, log = recipe["exp"], recipe["stderr"]
    for stage in range(1, 8):
        assert f"Stage {stage}" in log
    # Stage 2 filled the pitch cache and a TTSDataset read it without running librosa.pyin.
    assert "TTSDataset (train) read the cached pitch" in log and "librosa.pyin not run" in log
    stats = json.loads((recipe["root"] / "tts_dump" / "sup_data" / "pitch_stats.json").read_text())["default"]
    assert 60 < stats["pitch_mean"] < 400 and stats["pitch_std"] > 0
    for model in (recipe["dense"], recipe["control"], recipe["compressed"]):
        out = model / SYNTH
        assert [line.split()[0] for line in (out / "wav.scp").read_text().splitlines()] == recipe["test_ids"]
        assert json.loads((out / "tts_metrics" / "tts_metrics.json").read_text())["mcd"] > 0
        assert (out / ASR_TAG / "score_wer" / "result.json").is_file()
    # The compressed model is tested against the dense model and the dense control (the same
    # pass without pruning: the verdict's reference), by both ASR judges.
    for ref in ("dense", "dense_finetune"):
        assert (recipe["compressed"] / SYNTH / ASR_TAG / f"mapsswe_vs_{ref}" / "compare.json").is_file()
        assert (recipe["compressed"] / SYNTH / "judges" / "pocketsphinx" / f"mapsswe_vs_{ref}" / "compare.json").is_file()
    control_log = (recipe["control"] / "train.log").read_text()
    assert "Stage 4: One-pass compression" in log and "and the dense control (the pass without pruning)" in log
    assert "pinch: gates " not in control_log and "pinch: gates " in (recipe["compressed"] / "train.log").read_text()
    assert json.loads((exp / "judges" / "test" / "judges.json").read_text())["utterances"] == len(recipe["test_ids"])
    results = (exp / "RESULTS.md").read_text()
    assert all(f"|fastpitch{s}|" in results for s in ("", "_finetune", "_sspg0.5"))
    rows = json.loads((recipe["root"] / "results" / "results.json").read_text())
    assert [(r["task"], r["toolkit"], r["method"]) for r in rows] == [
        ("tts", "nemo", "dense"), ("tts", "nemo", "dense_finetune"), ("tts", "nemo", "sspg")]
    dense, control, sspg = rows
    assert sspg["reference"] == "dense_finetune" and set(sspg["mapsswe"]) == {"dense", "dense_finetune"}
    assert set(sspg["pocketsphinx_mapsswe"]) == {"dense", "dense_finetune"}
    # The other toolkit's ASR model (ESPnet's) judged every model too, against the same references.
    assert all(set(r["cross_cer"]) == {"test"} for r in rows) and set(sspg["cross_mapsswe"]) == {"dense", "dense_finetune"}
    assert "ASR model (`cross_asr_asr_train_asr_conformer_ctc_raw_bpe30`) as a second judge" in results
    assert control["encoder_sparsity"] < 0.01 and control["params"] == dense["params"]
    assert all(1 <= r["dnsmos_ovrl"] <= 5 and r["pocketsphinx_cer"] >= 0 for r in rows)
    assert dense["encoder_sparsity"] < 0.01 and "corpus=embedded" in sspg["notes"]
    # Half of the gated matrices' weights are zero; the encoder's embedding and biases are not
    # gated, so the encoder as a whole is a little under half.
    report = json.loads((recipe["compressed"] / "model.json").read_text())  # bake's report
    assert report["pruning"]["method"] == "sspg" and report["gated"] == pytest.approx(0.5, abs=0.02)
    assert 0.4 < sspg["encoder_sparsity"] <= 0.51 and sspg["target_sparsity"] == 0.5
    assert sspg["params"] == dense["params"] and sspg["nonzero_params"] < dense["nonzero_params"]
    sample = next((exp / "samples").iterdir())
    assert {p.name for p in sample.iterdir()} >= {"mel.png", "reference.wav", "fastpitch.wav", "fastpitch_sspg0.5.wav"}
    assert "urlopen" not in log


# Runs in a fresh interpreter in which importing pinch fails: NeMo alone restores the baked model.
NO_PINCH = r"""
import importlib.abc, json, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pinch" or name.startswith("pinch."):
            raise ImportError("pinch is blocked in this process")

sys.meta_path.insert(0, Block())
import torch
from nemo.collections.tts.models import FastPitchModel
model = FastPitchModel.restore_from(sys.argv[1], map_location="cpu").eval()
zeros = {}
for name, p in model.named_parameters():
    gated = name.startswith("fastpitch.encoder.layers.") and name.endswith(
        ("qkv_net.weight", "o_net.weight", "CoreNet.0.weight", "CoreNet.2.weight"))
    part = "gated" if gated else "decoder" if name.startswith("fastpitch.decoder.") else "other"
    z, n = zeros.get(part, (0, 0))
    zeros[part] = (z + int((p == 0).sum()), n + p.numel())
with torch.no_grad():
    spec = model.generate_spectrogram(tokens=model.parse("we need eggs"))
print("RESULT " + json.dumps({"class": type(model).__name__, "pruning": "pruning" in model.cfg,
                              "zeros": {k: z / n for k, (z, n) in zeros.items()}, "frames": spec.shape[-1],
                              "pinch": any(m == "pinch" or m.startswith("pinch.") for m in sys.modules)}))
"""


def test_baked_model_restores_with_plain_nemo_and_only_the_encoder_is_sparse(recipe):
    proc = subprocess.run([sys.executable, "-c", NO_PINCH, str(recipe["compressed"] / "model.nemo")],
                          capture_output=True, text=True, timeout=600, env=recipe_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1][len("RESULT "):])
    assert result["class"] == "FastPitchModel" and result["pruning"] is False and result["pinch"] is False
    assert result["zeros"]["gated"] == pytest.approx(0.5, abs=0.02) and result["zeros"]["decoder"] < 0.01
    assert result["frames"] > 0


def test_a_sentence_it_cannot_spell_is_named_and_the_others_are_synthesized(recipe):
    for model in (recipe["dense"], recipe["compressed"]):
        out = model / SYNTH
        assert (out / "skipped").read_text() == ("zz-bad-1: characters not in the token list: '2' '4'\n"
                                                 "zz-bad-2: empty sentence\n")
        assert [line.split()[0] for line in (out / "text").read_text().splitlines()] == recipe["test_ids"]
        assert len(list((out / "wav").glob("*.wav"))) == len(recipe["test_ids"])
    assert "2 sentence(s) skipped" in recipe["stderr"]


def test_the_token_list_has_what_the_tokenizer_speaks():
    """Upper case and accented letters are spoken (the tokenizer's preprocessing lowers and strips
    them); digits and symbols outside its punctuation are not."""
    from nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers import EnglishCharsTokenizer

    from pinch.nemo.bin.synthesize import SPACE, speakable_characters

    chars = set(speakable_characters(EnglishCharsTokenizer(pad_with_space=True)))
    assert {SPACE, "a", "z", "'", ",", "?", "A", "\u00e9", "\u00c7", "\u2019"} <= chars
    assert not {"4", "#", "@", "&", "\u00f8", "<pad>", " "} & chars


def test_bad_options_are_refused_with_their_name(recipe, tmp_path):
    proc = run(tts_cmd(recipe["root"], "--vocoder", str(tmp_path / "none.nemo")), check=False)
    assert proc.returncode != 0 and "--vocoder" in proc.stderr and "no such file" in proc.stderr
    proc = run(tts_cmd(recipe["root"], "--stage", "7", "--asr_model", str(tmp_path / "asr.nemo")), check=False)
    assert proc.returncode != 0 and f"--asr_model {tmp_path / 'asr.nemo'}: no such file" in proc.stderr
    assert "run it first" in proc.stderr


def test_a_vocoder_that_is_no_vocoder_is_named(recipe, tmp_path, capsys):
    from pinch.nemo.bin import synthesize

    out = tmp_path / "synth"
    text = tmp_path / "text"
    text.write_text("u1 we need eggs\n")
    baked = recipe["compressed"] / "model.nemo"
    assert synthesize.main(["--set", str(baked), str(text), str(out), "--vocoder", str(baked)]) == 1
    assert f"{baked}: holds a FastPitchModel, not a NeMo vocoder" in capsys.readouterr().err
    assert not (out / "wav.scp").exists()


def test_world_pitch_has_pyins_frames_and_values():
    """The cache's frames are those NeMo's TTSDataset would compute with librosa.pyin."""
    import librosa

    from pinch.nemo.bin.tts_sup_data import frame_count, world_pitch

    sr, hop = 16000, 256
    t = np.arange(int(0.77 * sr)) / sr
    audio = (0.3 * sum(np.sin(2 * np.pi * k * 120 * t) / k for k in (1, 2, 3))).astype(np.float32)
    f0 = world_pitch(audio, sr, hop, 65.4, 800.0)
    ref, _, _ = librosa.pyin(audio, fmin=65.4, fmax=800.0, frame_length=4 * hop, sr=sr, fill_na=0.0)
    assert len(f0) == len(ref) == frame_count(len(audio), hop)
    both = (f0 > 0) & (ref > 0)
    assert both.mean() > 0.8 and np.median(np.abs(f0[both] / ref[both] - 1)) < 0.02


def held_root(recipe, tmp_path):
    """A recipe root of its own on the fixture's corpus, with the fixture's dense FastPitch as a
    model a user holds (a .nemo outside every recipe dir)."""
    root = tmp_path / "held"
    root.mkdir()
    for d in ("data", "asr_exp", "espnet_asr"):
        (root / d).symlink_to(recipe["root"] / d)
    shutil.copy(recipe["dense"] / "model.nemo", tmp_path / "fastpitch_mine.nemo")
    return root, tmp_path / "fastpitch_mine.nemo"


def test_a_held_fastpitch_is_compressed_with_its_own_mel_settings(recipe, tmp_path):
    from pinch.nemo.archive import nemo_config

    root, held = held_root(recipe, tmp_path)
    # --fs says 22050; the held model's preprocessor (16000 Hz) is what counts.
    err = run(tts_cmd(root, "--pretrained", str(held), "--corpus", "embedded", "--stage", "2", "--stop_stage", "5",
                      "--dense_control", "false", "--fs", "22050")).stderr
    assert "Stage 3: the dense model is --pretrained" in err and "Stage 3: Dense training" not in err
    dense = root / "tts_exp" / "pretrained_fastpitch_mine"
    assert (dense / "model.nemo").resolve() == held.resolve()
    assert "model.sample_rate=16000\n" in (dense / "audio_overrides").read_text()
    assert any((root / "tts_dump" / "sup_data_pretrained_fastpitch_mine" / "pitch").iterdir())
    run_dir = root / "tts_exp" / "pretrained_fastpitch_mine_sspg0.5"
    cfg = nemo_config(run_dir / "model.nemo")
    assert cfg.train_ds.dataset.sample_rate == 16000 and cfg.get("pruning") is None
    # Every key of the held config the pass changed is on record (the recipe's learning rate).
    changed = (run_dir / "finetune_overrides.yaml").read_text()
    assert "optim.lr" in changed and "sample_rate" not in changed
    report = json.loads((run_dir / "model.json").read_text())  # bake's report
    assert report["gated"] == pytest.approx(0.5, abs=0.02)


def test_a_held_model_without_data_named_or_of_another_task_is_refused(recipe, tmp_path):
    root, held = held_root(recipe, tmp_path)
    proc = run(tts_cmd(root, "--pretrained", str(held)), check=False)
    assert proc.returncode != 0 and "name the data to fine-tune and test it on: --corpus embedded" in proc.stderr
    asr = root / ASR_MODEL
    proc = run(tts_cmd(root, "--pretrained", str(asr), "--corpus", "embedded", "--stage", "2", "--stop_stage", "2"),
               check=False)
    assert proc.returncode != 0 and "not a TTS model (a FastPitch .nemo)" in proc.stderr, proc.stderr[-2000:]
    assert not (root / "tts_exp" / "pretrained_model" / "model.nemo").exists()


def tiny_hifigan(path, hop=256, sample_rate=16000):
    """An untrained NeMo HiFi-GAN (HifiGanModel, small discriminators) on the recipe's mel
    settings, saved as a user's vocoder .nemo: its upsampling makes ``hop`` samples a frame."""
    from nemo.collections.tts.models import HifiGanModel
    from omegaconf import OmegaConf

    rates = {256: [8, 8, 4], 128: [8, 4, 4]}[hop]
    cfg = OmegaConf.create({
        "train_ds": {"defer_setup": True, "dataset": {"_target_": "nemo.collections.tts.data.vocoder_dataset.VocoderDataset"}},
        "debug": True, "max_steps": 1, "optim": {"_target_": "torch.optim.AdamW", "lr": 1e-4},
        # NeMo's hifigan configs name FilterbankFeatures here (HifiGanModel passes it use_grads)
        "preprocessor": {"_target_": "nemo.collections.asr.parts.preprocessing.features.FilterbankFeatures",
                         "sample_rate": sample_rate, "nfilt": 80, "n_window_size": 1024, "n_window_stride": hop,
                         "n_fft": 1024, "lowfreq": 0, "highfreq": 8000, "window": "hann", "normalize": None,
                         "dither": 0.0, "pad_to": 1, "pad_value": 0, "preemph": None, "exact_pad": True,
                         "log": True, "log_zero_guard_type": "add", "log_zero_guard_value": 1e-05, "mag_power": 1.0},
        "generator": {"_target_": "nemo.collections.tts.modules.hifigan_modules.Generator", "resblock": 1,
                      "upsample_rates": rates, "upsample_kernel_sizes": [2 * r for r in rates],
                      "upsample_initial_channel": 16, "resblock_kernel_sizes": [3],
                      "resblock_dilation_sizes": [[1, 3, 5]]},
    })
    HifiGanModel(cfg=cfg).save_to(str(path))
    return path


def test_a_nemo_vocoder_speaks_in_place_of_griffin_lim_and_a_foreign_one_is_named(recipe, tmp_path, capsys):
    import soundfile as sf

    from pinch.nemo.bin import synthesize

    vocoder = tiny_hifigan(tmp_path / "hifigan_16k.nemo")
    err = run(tts_cmd(recipe["root"], "--stage", "6", "--stop_stage", "6", "--vocoder", str(vocoder))).stderr
    for model in (recipe["dense"], recipe["control"], recipe["compressed"]):
        out = model / "synth_hifigan_16k" / "test"
        wavs = [line.split()[1] for line in (out / "wav.scp").read_text().splitlines()]
        assert len(wavs) == len(recipe["test_ids"]), err[-2000:]
        # The vocoder's upsampling: 256 samples a frame, at the generator's 16 kHz.
        info = sf.info(wavs[0])
        assert info.samplerate == 16000 and info.frames % 256 == 0
    # A vocoder of another hop would speak at another speed: refused before a sentence is spoken.
    foreign = tiny_hifigan(tmp_path / "hifigan_hop128.nemo", hop=128)
    text = tmp_path / "text"
    text.write_text("u1 we need eggs\n")
    out = tmp_path / "synth"
    assert synthesize.main(["--set", str(recipe["compressed"] / "model.nemo"), str(text), str(out),
                            "--vocoder", str(foreign)]) == 1
    assert "the vocoder's hop is 128, the spectrogram generator" in capsys.readouterr().err
    assert not (out / "wav.scp").exists()
