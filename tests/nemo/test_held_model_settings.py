"""A compression pass of a .nemo you hold keeps that model's own training settings
(``keep_model_config=true``, what the recipe's ``--pretrained`` passes): its loaders and optimizer
stay, only the data, the learning rate, the pruning block and what the command line sets come
from the compression config, and every key the pass changes is logged and written to
``finetune_overrides.yaml``. The recipe's own dense model (``false``) takes the config's sections
whole, as before."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from pinch.config_changes import OVERRIDES_FILE, changed_keys
from pinch.nemo.bin.train import FINETUNE_KEYS, finetune_settings

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf" / "nemo" / "asr"
PRUNING = REPO / "conf" / "pruning"
SSPG = "conformer_ctc_bpe_sspg"
# A published model's loaders and optimizer, Parakeet-like: tarred shards, bucketing, an
# augmentor, workers, a NoamAnnealing-free schedule with its own max_steps.
HELD = {
    "train_ds": {"manifest_filepath": "/corpora/theirs/tarred_audio_manifest.json", "is_tarred": True,
                 "tarred_audio_filepaths": "/corpora/theirs/audio_{0..127}.tar", "batch_size": 12,
                 "num_workers": 8, "shuffle": True, "max_duration": 20.0, "min_duration": 0.5,
                 "bucketing_strategy": "fully_randomized", "bucketing_batch_size": [24, 16, 8],
                 "augmentor": {"white_noise": {"prob": 0.5, "min_level": -90, "max_level": -46}}},
    "validation_ds": {"manifest_filepath": ["/corpora/theirs/dev_a.json", "/corpora/theirs/dev_b.json"],
                      "batch_size": 16, "num_workers": 8, "shuffle": False},
    "optim": {"name": "adamw", "lr": 1e-4, "betas": [0.9, 0.98], "weight_decay": 1e-3,
              "sched": {"name": "CosineAnnealing", "warmup_steps": 15000, "warmup_ratio": None,
                        "min_lr": 1e-6, "max_steps": 300000}},
}


def run_sections(*overrides):
    """The compression config's train_ds, validation_ds, optim (and a pruning block), resolved,
    as the recipe composes it."""
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(SSPG, overrides=["init_from_nemo_model=held.nemo", f"pruning_config={PRUNING / 'sspg.yaml'}",
                                       "model.train_ds.manifest_filepath=/my/train.json",
                                       "model.validation_ds.manifest_filepath=/my/dev.json", *overrides])
    run = {key: OmegaConf.to_container(cfg.model[key], resolve=True) for key in FINETUNE_KEYS[:3]}
    return {**run, "pruning": {"method": "sspg", "target_sparsity": 0.5}}


def test_a_held_model_keeps_its_loaders_and_optimizer():
    run = run_sections("model.train_ds.batch_size=4")
    settings = finetune_settings(copy.deepcopy(HELD), run, keep_model_config=True, given=["train_ds.batch_size"])
    assert set(changed_keys(HELD, settings)) == {
        "model.train_ds.manifest_filepath", "model.train_ds.is_tarred", "model.train_ds.tarred_audio_filepaths",
        "model.train_ds.batch_size",  # set on the command line
        "model.validation_ds.manifest_filepath", "model.optim.lr", "model.optim.sched.max_steps",
        "model.pruning.method", "model.pruning.target_sparsity"}
    train, optim = settings["train_ds"], settings["optim"]
    assert train["manifest_filepath"] == "/my/train.json" and train["is_tarred"] is False
    assert train["tarred_audio_filepaths"] is None and train["batch_size"] == 4
    assert settings["validation_ds"]["manifest_filepath"] == "/my/dev.json"
    assert optim["lr"] == run["optim"]["lr"] == 1.5e-3  # the config's documented rate of the pass
    assert optim["sched"]["max_steps"] is None  # the pass's length: NeMo counts it from the trainer
    for key in ("num_workers", "max_duration", "min_duration", "bucketing_strategy", "bucketing_batch_size",
                "augmentor", "shuffle"):
        assert train[key] == HELD["train_ds"][key], key
    assert optim == {**HELD["optim"], "lr": 1.5e-3, "sched": {**HELD["optim"]["sched"], "max_steps": None}}
    assert run["optim"]["weight_decay"] == 0.0 and optim["weight_decay"] == 1e-3  # the model's, not the config's


def test_the_recipes_own_model_takes_the_config_whole():
    run = run_sections()
    settings = finetune_settings(copy.deepcopy(HELD), run, keep_model_config=False)
    assert settings == run


def test_noam_annealing_gets_the_scale_that_peaks_at_the_rate():
    """NoamAnnealing multiplies lr by d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)."""
    from nemo.core.optim.lr_scheduler import NoamAnnealing

    held = copy.deepcopy(HELD)
    held["optim"]["sched"] = {"name": "NoamAnnealing", "d_model": 256, "warmup_steps": 40, "min_lr": 1e-6}
    optim = finetune_settings(held, run_sections(), keep_model_config=True)["optim"]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=optim["lr"])
    sched = NoamAnnealing(opt, d_model=256, warmup_steps=40, min_lr=1e-6)
    rates = []
    for _ in range(80):
        opt.step()
        sched.step()
        rates.append(sched.get_last_lr()[0])
    assert max(rates) == pytest.approx(1.5e-3)
    held["optim"]["sched"] = {"name": "NoamAnnealing", "d_model": 256, "warmup_ratio": 0.1}
    with pytest.raises(ValueError, match="NoamAnnealing with warmup_ratio"):
        finetune_settings(held, run_sections(), keep_model_config=True)


def test_a_compression_run_of_a_held_model_logs_what_it_changed(tmp_path, tiny_model_cfg, tiny_corpus):
    """The train entry point end to end, as the recipe's --pretrained runs it: two updates."""
    from nemo.collections.asr.models import EncDecCTCModelBPE

    from pinch.nemo.archive import nemo_config

    with open_dict(tiny_model_cfg):
        tiny_model_cfg.train_ds.update(batch_size=4, num_workers=0, max_duration=20.0, min_duration=0.05,
                                       augmentor={"white_noise": {"prob": 0.5, "min_level": -90, "max_level": -46}})
        tiny_model_cfg.validation_ds.batch_size = 2
        tiny_model_cfg.optim = {"name": "adam", "lr": 0.01, "betas": [0.8, 0.95], "weight_decay": 0.0,
                                "sched": {"name": "CosineAnnealing", "warmup_steps": 1, "min_lr": 1e-6,
                                          "max_steps": 1000}}
    torch.manual_seed(0)
    held = tmp_path / "held.nemo"
    EncDecCTCModelBPE(cfg=tiny_model_cfg).save_to(str(held))
    held_cfg = OmegaConf.to_container(nemo_config(held), resolve=True)
    train, dev = tiny_corpus / "test_clean" / "manifest.json", tiny_corpus / "test_other" / "manifest.json"
    exp = tmp_path / "exp"
    proc = subprocess.run(
        [sys.executable, "-m", "pinch.nemo.bin.train", "--config-path", str(CONF), "--config-name", SSPG,
         f"init_from_nemo_model={held}", "++keep_model_config=true", f"pruning_config={PRUNING / 'sspg.yaml'}",
         f"output_nemo={tmp_path / 'gated.nemo'}", f"model.train_ds.manifest_filepath={train}",
         f"model.validation_ds.manifest_filepath={dev}", "model.validation_ds.batch_size=8",
         "trainer.max_epochs=1",  # 8 utterances in batches of 4
         f"exp_manager.exp_dir={exp}", "trainer.log_every_n_steps=1", "exp_manager.create_tensorboard_logger=false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    expected = {"model.train_ds.manifest_filepath": (held_cfg["train_ds"]["manifest_filepath"], str(train)),
                "model.validation_ds.manifest_filepath": (held_cfg["validation_ds"]["manifest_filepath"], str(dev)),
                "model.validation_ds.batch_size": (2, 8),  # the command line's
                "model.optim.lr": (0.01, 1.5e-3), "model.optim.sched.max_steps": (1000, None)}
    records = yaml.safe_load((exp / OVERRIDES_FILE).read_text())  # the run dir, as the ESPnet recipe writes it
    pruning = {k: v for k, v in records.items() if k.startswith("model.pruning.")}
    assert {k: (v["old"], v["new"]) for k, v in records.items() if k not in pruning} == expected
    assert pruning["model.pruning.method"] == {"new": "sspg"}  # absent from the held model: no "old"
    for key, (old, new) in expected.items():
        assert f"pinch.nemo: {key}: {json.dumps(old)} -> {json.dumps(new)}\n" in proc.stderr
    gated = OmegaConf.to_container(nemo_config(tmp_path / "gated.nemo"), resolve=True)
    for section in ("train_ds", "validation_ds", "optim"):
        for key, value in held_cfg[section].items():
            if f"model.{section}.{key}" not in expected and key != "sched":
                assert gated[section][key] == value, f"{section}.{key}"
    assert gated["optim"]["sched"] == {**held_cfg["optim"]["sched"], "max_steps": None}
    assert gated["train_ds"]["augmentor"] == held_cfg["train_ds"]["augmentor"]
