"""Compression inside Lightning: schedule on real optimizer steps, logging, resume."""
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import OmegaConf
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from pinch.gates.gate import iter_gates
from pinch.nemo import PinchEncDecCTCModelBPE

PRUNING = Path(__file__).resolve().parents[2] / "conf" / "pruning"


def _trainer(**kwargs):
    kwargs.setdefault("logger", False)
    kwargs.setdefault("enable_checkpointing", False)
    kwargs.setdefault("accelerator", "cpu")
    return pl.Trainer(devices=1, enable_progress_bar=False, num_sanity_val_steps=0,
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


# The sparsity each baseline's schedule sets at each of the 3 updates of one epoch (24 utterances
# in batches of 8), from conf/pruning's presets, written out from the formulas in
# pinch/methods: index k is the sparsity from update k on (k = 0: before the first update).
SCHEDULED = {
    "ump": [0.5] * 4,  # one shot, before the first forward
    "global_magnitude": [0.5] * 4,
    # gmp: begin 0, end int(0.75 * 3) = 2, an event every update: Zhu-Gupta's cubic ramp
    # 0.5 * (1 - (1 - k / 2)^3), the first prune at the first update
    "gmp": [0.5 * (1 - (1 - min(k, 2) / 2) ** 3) for k in range(4)],
    # imp: 4 rounds over 3 updates: round min(k * 4 // 3, 3) + 1 keeps (1 - 0.5)^(round / 4),
    # the first round before the first forward
    "imp": [1 - 0.5 ** ((min(k * 4 // 3, 3) + 1) / 4) for k in range(4)],
    # l1: penalty only until prune_at 0.7 -> update int(0.7 * 3) = 2, then the target: l1 does
    # not prune at its first update
    "l1": [0.0, 0.0, 0.5, 0.5],
}


class _GatedSparsity(Callback):
    """The share of exact zeros in the gated weights that each training forward sees (read
    in a pre-hook of the first gated module, so after anything that runs before the forward)
    and that each update leaves behind."""

    def __init__(self):
        self.seen, self.after = [], []

    def _zeros(self, model):
        weights = [t.weight.detach() for t in model.pruner.method.targets]
        return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)

    def on_train_start(self, trainer, model):
        def record(module, args):
            if module.training and len(self.seen) == len(self.after):
                self.seen.append(self._zeros(model))
        model.pruner.method.targets[0].module.register_forward_pre_hook(record)

    def on_train_batch_end(self, trainer, model, *args):
        self.after.append(self._zeros(model))


@pytest.mark.parametrize("method", sorted(SCHEDULED))
def test_every_baseline_trains_in_lightning_at_its_scheduled_sparsity_from_the_first_forward(tiny_model_cfg,
                                                                                             method):
    """NeMo's training_step calls self.forward (no forward hooks on the model): a one-shot
    method must still prune before the first forward, not zero weights its graph holds; each
    later schedule step takes effect at its update."""
    preset = OmegaConf.to_container(OmegaConf.load(PRUNING / f"{method}.yaml"))
    tiny_model_cfg.pruning = {**preset, "target_sparsity": 0.5}
    probe = _GatedSparsity()
    trainer = _trainer(max_epochs=1, callbacks=[probe])
    model = PinchEncDecCTCModelBPE(cfg=tiny_model_cfg, trainer=trainer)
    trainer.fit(model)
    assert int(model.pinch_steps) == trainer.global_step == 3
    wanted = SCHEDULED[method]
    # The tiny Conformer's gated matrices hold >= 1,024 weights: per-matrix rounding < 0.001.
    assert probe.seen == pytest.approx(wanted[:3], abs=0.002), "sparsity each forward saw"
    assert probe.after == pytest.approx(wanted[1:], abs=0.002), "sparsity each update left"
    assert model.pruner.sparsity().gated == pytest.approx(wanted[3], abs=0.002)


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


class _HalfPruned(Callback):
    """Thresholds at each matrix's median magnitude once the gates are on: masks with something
    to decide (three updates of the tiny model's schedule prune under 2%)."""

    def on_train_start(self, trainer, model):
        with torch.no_grad():
            for _, gate in iter_gates(model):
                gate.threshold.fill_(float(gate.weight.abs().median()))


CUDA = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="16-bit CUDA autocast needs a GPU")]


@pytest.mark.parametrize("accelerator,precision", [
    ("cpu", "bf16-mixed"), pytest.param("gpu", "bf16-mixed", marks=CUDA), pytest.param("gpu", "16-mixed", marks=CUDA)])
def test_mixed_precision_training_keeps_the_gates_in_fp32_and_prunes_as_fp32_does(tiny_model_cfg, sspg_block,
                                                                                    accelerator, precision):
    """NeMo's trainer.precision (Lightning's autocast; on the CPU only bf16) around the gates: the
    same three updates as an fp32 run from the same start, parameters (thresholds included) in
    fp32, and the masks the fp32 run keeps, up to weights within 16 bits of a threshold."""
    runs = {}
    for prec in ("32-true", precision):
        tiny_model_cfg.pruning = sspg_block(target_sparsity=0.5)
        torch.manual_seed(0)
        trainer = _trainer(max_epochs=1, accelerator=accelerator, precision=prec, callbacks=[_HalfPruned()])
        model = PinchEncDecCTCModelBPE(cfg=tiny_model_cfg, trainer=trainer)
        trainer.fit(model)
        assert int(model.pinch_steps) == trainer.global_step == 3, prec
        assert all(p.dtype == torch.float32 for p in model.parameters()), prec
        runs[prec] = ({n: g.keep_mask().cpu() for n, g in iter_gates(model)},
                      {n: float(g.threshold.detach()) for n, g in iter_gates(model)}, model.pruner.sparsity().gated)
    (masks32, thresholds32, sparsity32), (masks, thresholds, sparsity) = runs["32-true"], runs[precision]
    assert masks and masks.keys() == masks32.keys()
    agree = sum(int((masks[n] == masks32[n]).sum()) for n in masks) / sum(m.numel() for m in masks.values())
    # Measured on the CPU (bf16-mixed, 49.7% pruned): 0.99983 agree, thresholds within 0.05%
    # of fp32's. Masks decided in 16 bits, or a skipped update, would move thousands of weights.
    assert agree > 0.999, f"{agree:.5f} of the masks agree with fp32's"
    assert sparsity == pytest.approx(sparsity32, abs=0.01)
    for n, t in thresholds32.items():
        assert thresholds[n] == pytest.approx(t, rel=0.01), n
