"""NeMo FastPitch compresses through pinch.nemo like the ASR classes: the pinch class is derived
from ``FastPitchModel``, the penalty joins the loss its ``training_step`` returns (it has no
auxiliary-loss hook), the default preset gates the text encoder only (the decoder is opt-in),
the train entry point compresses a dense .nemo, and bake writes a .nemo that a plain
``FastPitchModel.restore_from`` runs, in a process that never imports pinch, to the same
spectrogram."""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

from pinch.nemo import pinch_class_for, save_nemo
from pinch.nemo.archive import restore_gated
from pinch.nemo.bin.bake import bake_file
from pinch.nemo.bin.train import build_model, main

PRUNING = Path(__file__).resolve().parents[2] / "conf" / "pruning"
TARGET = "nemo.collections.tts.models.FastPitchModel"
SR = 16000
TEXTS = ["a cat sat.", "the dog ran", "hello there", "on the mat"]
# NeMo's examples/tts/conf/fastpitch_align_v1.05.yaml (learned alignment, pitch and
# alignment-prior sup data), shrunk: one layer of width 16 everywhere, 20 mel bands of 16 kHz
# audio, a character tokenizer that needs no files (the example's phonemizer reads CMUdict).
MEL = {"sample_rate": SR, "n_fft": 256, "win_length": 256, "hop_length": 64, "window": "hann", "n_mels": 20,
       "lowfreq": 0, "highfreq": 8000}
FFT = {"n_layer": 1, "n_head": 1, "d_model": 16, "d_head": 8, "d_inner": 32, "kernel_size": 3, "dropout": 0.0,
       "dropatt": 0.0}
PREDICTOR = {"_target_": "nemo.collections.tts.modules.fastpitch.TemporalPredictor", "input_size": 16,
             "kernel_size": 3, "filter_size": 16, "dropout": 0.0, "n_layers": 1}
TINY_FASTPITCH = {
    "target": TARGET,
    "learn_alignment": True, "bin_loss_warmup_epochs": 1, "n_speakers": 1, "max_token_duration": 75,
    # At least a frame per token: the untrained duration predictor would otherwise give an
    # empty spectrogram, and the comparison with the baked model would prove nothing.
    "min_token_duration": 1,
    "symbols_embedding_dim": 16, "pitch_embedding_kernel_size": 3, "n_mel_channels": 20,
    "text_tokenizer": {"_target_": "nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers."
                                   "EnglishCharsTokenizer", "pad_with_space": True},
    "preprocessor": {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor", "features": 20,
                     "lowfreq": 0, "highfreq": 8000, "n_fft": 256, "n_window_size": 256, "window_size": False,
                     "n_window_stride": 64, "window_stride": False, "pad_to": 1, "pad_value": 0, "sample_rate": SR,
                     "window": "hann", "normalize": None, "preemph": None, "dither": 0.0, "frame_splicing": 1,
                     "log": True, "log_zero_guard_type": "add", "log_zero_guard_value": 1e-05, "mag_power": 1.0},
    "input_fft": {"_target_": "nemo.collections.tts.modules.transformer.FFTransformerEncoder", **FFT, "d_embed": 16},
    "output_fft": {"_target_": "nemo.collections.tts.modules.transformer.FFTransformerDecoder", **FFT},
    "alignment_module": {"_target_": "nemo.collections.tts.modules.aligner.AlignmentEncoder", "n_mel_channels": 20,
                         "n_text_channels": 16, "n_att_channels": 16},
    "duration_predictor": PREDICTOR,
    "pitch_predictor": PREDICTOR,
    "optim": {"name": "adam", "lr": 0.01},
}
ENCODER_GATES = [f"fastpitch.encoder.layers.0.{m}.weight" for m in
                 ("dec_attn.qkv_net", "dec_attn.o_net", "pos_ff.CoreNet.0", "pos_ff.CoreNet.2")]

# The spectrogram of a fixed sentence; run here on the gated model and in a fresh
# interpreter on the baked one.
SPECTROGRAM = """
import torch

def spectrogram(model):
    model.eval()
    with torch.no_grad():
        return model.generate_spectrogram(tokens=model.parse("the cat sat on the mat")).tolist()
"""
NO_PINCH = SPECTROGRAM + """
import json, sys
from nemo.collections.tts.models import FastPitchModel
model = FastPitchModel.restore_from(sys.argv[1], map_location="cpu")
print("RESULT " + json.dumps({"class": type(model).__name__, "spectrogram": spectrogram(model),
                              "pinch_imported": any(m == "pinch" or m.startswith("pinch.") for m in sys.modules)}))
"""
namespace = {}
exec(SPECTROGRAM, namespace)
spectrogram = namespace["spectrogram"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Four harmonic half-second glides and their NeMo manifest; the sup-data folder is shared
    so that pitch (librosa.pyin, the slow part) is computed once for the module."""
    root = tmp_path_factory.mktemp("fastpitch_data")
    rng = np.random.default_rng(0)
    t = np.arange(SR // 2) / SR
    lines = []
    for i, text in enumerate(TEXTS):
        phase = 2 * np.pi * np.cumsum(140 + 20 * i + 30 * t) / SR
        audio = 0.3 * sum(np.sin(k * phase) / k for k in (1, 2, 3)) + 0.01 * rng.standard_normal(t.size)
        path = root / f"utt{i}.wav"
        sf.write(path, audio.astype(np.float32), SR)
        lines.append(json.dumps({"audio_filepath": str(path), "text": text, "duration": 0.5}))
    (root / "manifest.json").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def pinch_log_restored():
    """The entry point gives pinch's logger its own handler and stops it propagating: put it back,
    or later tests in this process (caplog) would not see pinch's messages."""
    log = logging.getLogger("pinch")
    handlers, level, propagate = log.handlers[:], log.level, log.propagate
    yield
    log.handlers[:] = handlers
    log.setLevel(level)
    log.propagate = propagate


def data_cfg(data):
    """train_ds / validation_ds as NeMo's FastPitch example has them: TTSDataset computes the
    alignment prior and (with librosa.pyin) the pitch, normalised by the stats given here."""
    dataset = {"_target_": "nemo.collections.tts.data.dataset.TTSDataset",
               "manifest_filepath": str(data / "manifest.json"), "sup_data_path": str(data / "sup"),
               "sup_data_types": ["align_prior_matrix", "pitch"], **MEL, "pitch_fmin": 130.0, "pitch_fmax": 400.0,
               "pitch_norm": True, "pitch_mean": 180.0, "pitch_std": 30.0, "use_beta_binomial_interpolator": True}
    loader = {"batch_size": 2, "num_workers": 0, "drop_last": False}
    return {"train_ds": {"dataset": dataset, "dataloader_params": {**loader, "shuffle": True}},
            "validation_ds": {"dataset": dataset, "dataloader_params": {**loader, "shuffle": False}}}


def fastpitch_cfg(data, **pruning):
    cfg = OmegaConf.create({**TINY_FASTPITCH, **data_cfg(data)})
    if pruning:
        cfg.pruning = {"method": "sspg", "target_sparsity": 0.5, **pruning}
    return cfg


def gates(model):
    return sorted(n[: -len("_threshold")] for n, _ in model.named_parameters() if n.endswith("_threshold"))


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # training_step called without a trainer
def test_penalty_joins_fastpitch_loss_and_reaches_only_the_text_encoder(data):
    torch.manual_seed(0)
    model = pinch_class_for(TARGET)(cfg=fastpitch_cfg(data, preset="auto"))
    assert type(model).__name__ == "PinchFastPitchModel" and model.nemo_class.__name__ == "FastPitchModel"
    model.attach_pruner(total_steps=10)
    assert gates(model) == sorted(ENCODER_GATES)

    batch = next(iter(model._train_dl))
    total = model.training_step(batch, 0)  # pinch's: FastPitch's loss tensor + the penalty
    task = model.nemo_class.training_step(model, batch, 0)
    penalty = model.pruner.penalty()
    assert penalty > 0
    torch.testing.assert_close(total - task, penalty)
    # The penalty moves the gated encoder matrices (through the soft mask) and their
    # thresholds: nothing of the decoder, the predictors or the aligner.
    names, params = zip(*model.named_parameters())
    grads = torch.autograd.grad(penalty, params, allow_unused=True)
    reached = sorted(n for n, g in zip(names, grads) if g is not None and bool(g.any()))
    assert reached == sorted(ENCODER_GATES + [n + "_threshold" for n in ENCODER_GATES])


def test_decoder_is_opt_in(data):
    model = pinch_class_for(TARGET)(cfg=fastpitch_cfg(data, preset=["auto", "fastpitch_decoder"]))
    model.attach_pruner(total_steps=10)
    assert gates(model) == sorted(ENCODER_GATES + [n.replace("encoder", "decoder") for n in ENCODER_GATES])


def test_train_entry_point_compresses_a_dense_nemo_and_bake_restores_without_pinch(data, tmp_path,
                                                                                     pinch_log_restored):
    torch.manual_seed(0)
    dense = save_nemo(pinch_class_for(TARGET).nemo_class(cfg=fastpitch_cfg(data)), tmp_path / "dense.nemo")
    # What `python -m pinch.nemo.bin.train` gets from Hydra: the shared sspg preset file, its
    # preset overridden under model.pruning, the data and optimizer of this run.
    cfg = OmegaConf.create({
        "name": "fastpitch_sspg", "seed": 0, "init_from_nemo_model": str(dense),
        "pruning_config": str(PRUNING / "sspg.yaml"), "output_nemo": str(tmp_path / "gated.nemo"),
        "model": {**data_cfg(data), "optim": {"name": "adam", "lr": 0.05},
                  "pruning": {"preset": "auto", "target_sparsity": 0.5}},
        "trainer": {"accelerator": "cpu", "devices": 1, "max_steps": 4, "logger": False,
                    "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False,
                    "num_sanity_val_steps": 0, "limit_val_batches": 0, "log_every_n_steps": 1},
        "exp_manager": {"exp_dir": str(tmp_path / "exp"), "name": "fastpitch_sspg",
                        "create_tensorboard_logger": False, "create_checkpoint_callback": False},
    })
    main(cfg)

    gated = restore_gated(cfg.output_nemo)
    assert type(gated) is pinch_class_for(TARGET) and int(gated.pinch_steps) == 4
    assert gates(gated) == sorted(ENCODER_GATES)
    gated_spectrogram = spectrogram(gated)
    assert len(gated_spectrogram[0][0]) >= len("the cat sat on the mat")  # a frame per token at least
    baked, report = bake_file(cfg.output_nemo, tmp_path / "model.nemo")
    assert report.gated == pytest.approx(0.5, abs=0.01)

    proc = subprocess.run([sys.executable, "-c", NO_PINCH, str(baked)], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1][len("RESULT "):])
    assert result["class"] == "FastPitchModel" and result["pinch_imported"] is False
    torch.testing.assert_close(torch.tensor(result["spectrogram"]), torch.tensor(gated_spectrogram),
                               atol=1e-5, rtol=1e-4)


def test_build_model_picks_the_pinch_class_from_the_config_target(data):
    """A FastPitch config trained from scratch: the entry point's class choice, with and without
    a pruning block; configs may also name the derived class."""
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=1, logger=False, enable_checkpointing=False)
    cfg = OmegaConf.create({"model": fastpitch_cfg(data, preset="auto"), "init_from_nemo_model": None})
    model = build_model(cfg, trainer)
    assert type(model) is pinch_class_for(TARGET)
    cfg.model.pop("pruning")
    assert type(build_model(cfg, trainer)).__name__ == "FastPitchModel"
    assert pinch_class_for("pinch.nemo.models.PinchFastPitchModel") is type(model)


@pytest.mark.parametrize("target", ["nemo.collections.tts.models.HifiGanModel",
                                    "nemo.collections.tts.modules.transformer.FFTransformerEncoder"])
def test_tts_classes_pinch_cannot_compress_are_named(target):
    with pytest.raises(ValueError, match=r"ASR models .* and TTS spectrogram generators .* is neither"):
        pinch_class_for(target)
