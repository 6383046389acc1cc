"""Compression inside Lightning: schedule on real optimizer steps, logging, resume."""
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import OmegaConf
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from pinch.nemo import PinchEncDecCTCModelBPE

PRUNING = Path(__file__).resolve().parents[2] / "conf" / "pruning"


def _trainer(**kwargs):
    kwargs.setdefault("logger", False)
    kwargs.setdefault("enable_checkpointing", False)
    return pl.Trainer(accelerator="cpu", devices=1, enable_progress_bar=False, num_sanity_val_steps=0,
                      limit_val_batches=0, enable_model_summary=False, **kwargs)


def _gates(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("_threshold")}


def test_steps_follow_optimizer_updates_and_stats_are_logged(tiny_model_cfg, sspg_block):
    tiny_model_cfg.pruning = sspg_block()
    # 24 utterances in batches of 8: 3 batches per epoch, one update per 3 batches.
    trainer = _trainer(max_epochs=2, accumulate_grad_batches=3)
    model = PinchEncDecCTCModelBPE(cfg=tiny_model_cfg, trainer=trainer)
    trainer.fit(model)
    assert model.pruner.clock.total_steps == 2
    assert int(model.pinch_steps) == trainer.global_step == 2
    assert {"sparsity", "eta", "tau", "loss_sparsity"} <= set(trainer.callback_metrics)
    assert trainer.callback_metrics["tau"] < 0.5  # annealed from tau_start


@pytest.mark.parametrize("method", ["ump", "global_magnitude", "gmp", "imp", "l1"])
def test_every_baseline_trains_in_lightning_and_prunes_from_its_first_update(tiny_model_cfg, method):
    """NeMo's training_step calls self.forward (no forward hooks on the model): a one-shot
    method must still prune before the first forward, not zero weights its graph holds."""
    preset = OmegaConf.to_container(OmegaConf.load(PRUNING / f"{method}.yaml"))
    tiny_model_cfg.pruning = {**preset, "target_sparsity": 0.5}
    trainer = _trainer(max_epochs=1)
    model = PinchEncDecCTCModelBPE(cfg=tiny_model_cfg, trainer=trainer)
    trainer.fit(model)
    assert int(model.pinch_steps) == trainer.global_step == 3
    if method in ("ump", "global_magnitude"):
        assert abs(model.pruner.sparsity().gated - 0.5) < 0.01


def test_thresholds_get_no_weight_decay(tiny_model_cfg, sspg_block):
    tiny_model_cfg.pruning = sspg_block()
    tiny_model_cfg.optim.weight_decay = 0.1
    model = PinchEncDecCTCModelBPE(cfg=tiny_model_cfg)
    model.attach_pruner(total_steps=10)
    model.setup_optimizer_param_groups()  # what NeMo's setup_optimization builds the optimizer from
    optimizer = torch.optim.AdamW(model._optimizer_param_groups, lr=1e-3, weight_decay=0.1)
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    thresholds = {id(p) for n, p in model.named_parameters() if n.endswith("_threshold")}
    assert thresholds and all(decay[t] == 0.0 for t in thresholds)
    assert {decay[id(p)] for p in model.parameters() if id(p) not in thresholds} == {0.1}
    assert len(decay) == sum(1 for _ in model.parameters())


class _AtStart(Callback):
    """What the model holds when training (re)starts: after any checkpoint restore."""

    def on_train_start(self, trainer, model):
        self.steps, self.gates = int(model.pinch_steps), _gates(model)


class _StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        trainer.should_stop = trainer.global_step >= self.step


def test_resume_mid_compression(tmp_path, tiny_model_cfg, sspg_block):
    tiny_model_cfg.pruning = sspg_block()
    tiny_model_cfg.optim.lr = 0.02
    ckpt = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_top_k=-1, filename="{step}")
    trainer = _trainer(max_steps=6, enable_checkpointing=True, callbacks=[ckpt])
    trainer.fit(PinchEncDecCTCModelBPE(cfg=tiny_model_cfg, trainer=trainer))

    # Resume half way (step 3 of 6, an epoch boundary: Lightning restarts an interrupted
    # epoch's data from its first batch, so only there is the next batch the same).
    saved = torch.load(tmp_path / "step=3.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    at_start = _AtStart()
    trainer = _trainer(max_steps=6, callbacks=[at_start, _StopAt(4)])
    resumed = PinchEncDecCTCModelBPE(cfg=tiny_model_cfg, trainer=trainer)
    trainer.fit(resumed, ckpt_path=str(tmp_path / "step=3.ckpt"))

    assert at_start.steps == int(saved["pinch_steps"]) == 3
    assert at_start.gates.keys() == {k for k in saved if k.endswith("_threshold")} != set()
    for name, value in at_start.gates.items():
        assert torch.equal(value, saved[name]), name
    # The schedule continues where it stopped: the next update is the uninterrupted run's.
    assert resumed.pruner.clock.total_steps == 6
    straight = torch.load(tmp_path / "step=4.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    state = resumed.state_dict()
    assert state.keys() == straight.keys()
    for name, value in straight.items():
        assert torch.equal(state[name], value), name
