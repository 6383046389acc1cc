"""Distillation inside Lightning: the teacher runs NeMo's encoder on the student's encoder input
and the CTC head (a CTC model's decoder, a hybrid's ctc_decoder) on its output; loss_distill
joins the loss training_step returns and is logged beside loss_sparsity."""
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

import pinch
from families import TARGETS, family_cfg
from pinch.nemo import PinchEncDecCTCModelBPE, pinch_class_for

PRESET = Path(__file__).resolve().parents[2] / "conf" / "pruning" / "sspg_structured.yaml"


def structured_preset(**overrides):
    """The shared structured preset file, as both toolkits read it, with overrides."""
    return {**pinch.PruningConfig.read_file(PRESET), "target_sparsity": 0.5, "eta": 200.0, **overrides}


class _Watch(Callback):
    """The input of the student's and the teacher's encoder, and the loss each training_step
    returned with the scalars logged beside it."""

    def __init__(self):
        self.inputs, self.steps = {"student": [], "teacher": []}, []

    def on_train_start(self, trainer, model):
        for side, encoder in (("student", model.encoder), ("teacher", model.pruner.distiller.teacher.encoder)):
            encoder.register_forward_pre_hook(
                lambda m, args, kwargs, side=side: self.inputs[side].append(kwargs["audio_signal"]), with_kwargs=True)

    def on_train_batch_end(self, trainer, model, outputs, batch, batch_idx):
        self.steps.append((float(outputs["loss"]), {k: float(v) for k, v in trainer.callback_metrics.items()}))


def fit(model_cfg, max_steps):
    watch = _Watch()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=max_steps, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, num_sanity_val_steps=0, limit_val_batches=0,
                         enable_model_summary=False, log_every_n_steps=1, callbacks=[watch])
    model = PinchEncDecCTCModelBPE(cfg=model_cfg, trainer=trainer)
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.fit(model)
    return model, dense, watch


def test_ctc_model_distils_its_decoder_and_encoder_layers_in_lightning(tiny_model_cfg):
    tiny_model_cfg.encoder.n_layers = 2
    # A BatchNorm normalises a training forward by the batch, the teacher's (eval) by its running
    # statistics: with a LayerNorm instead, the student's first forward is the teacher's.
    tiny_model_cfg.encoder.conv_norm_type = "layer_norm"
    # interCTC registers encoder outputs under the model's guid: the teacher's copies must not.
    tiny_model_cfg.interctc = {"loss_weights": [0.3], "apply_at_layers": [0]}
    tiny_model_cfg.pruning = structured_preset(distill_weight=1.0, distill_layers=[-1, r"encoder\.layers\.0"])
    model, dense, watch = fit(tiny_model_cfg, max_steps=3)

    distiller = model.pruner.distiller
    assert distiller.entries == ("encoder", "decoder") and distiller.output == "decoder"
    assert distiller.layers == ["encoder.layers.1", "encoder.layers.0"]
    # One teacher run per training step, on the very tensor the student's encoder got.
    student, teacher = watch.inputs["student"], watch.inputs["teacher"]
    assert len(teacher) == len(student) == 3 and all(t is s for t, s in zip(teacher, student))
    assert all(torch.equal(value, dense[name]) for name, value in distiller.teacher.state_dict().items())
    assert not torch.equal(model.decoder.decoder_layers[0].weight, dense["decoder.decoder_layers.0.weight"])
    assert not any(getattr(m, "_registry", None) for m in distiller.teacher.modules())

    first, last = watch.steps[0][1], watch.steps[-1][1]
    assert first["distill_kl"] < 1e-8 and first["distill_hidden"] < 1e-5  # the student is the teacher at start
    assert last["distill_kl"] > 0 and last["distill_hidden"] > 0
    loss, logged = watch.steps[-1]
    assert loss == pytest.approx(logged["train_loss"] + logged["loss_sparsity"] + logged["loss_distill"], rel=1e-5)


def test_hybrid_distils_its_ctc_head_and_a_transducer_only_hidden_layers(tiny_model_cfg):
    hybrid = family_cfg(tiny_model_cfg, "hybrid")
    hybrid.pruning = structured_preset(distill_weight=1.0)
    model = pinch_class_for(hybrid.target)(cfg=hybrid)
    distiller = model.attach_pruner(total_steps=10).distiller
    assert distiller.entries == ("encoder", "ctc_decoder") and distiller.output == "ctc_decoder"

    rnnt = family_cfg(tiny_model_cfg, "rnnt")
    rnnt.pruning = structured_preset(distill_weight=1.0)
    with pytest.raises(ValueError, match="distill_outputs needs per-frame output log-probs .* in "
                                         "PinchEncDecRNNTBPEModel: set distill_outputs: false"):
        pinch_class_for(TARGETS["rnnt"])(cfg=rnnt).attach_pruner(total_steps=10)
    rnnt.pruning = structured_preset(distill_weight=1.0, distill_outputs=False, distill_layers=[0])
    distiller = pinch_class_for(TARGETS["rnnt"])(cfg=rnnt).attach_pruner(total_steps=10).distiller
    assert distiller.entries == ("encoder",) and distiller.output is None and distiller.layers == ["encoder.layers.0"]


def test_a_nemo_config_takes_the_distill_keys_under_model_pruning(tiny_model_cfg):
    tiny_model_cfg.pruning = OmegaConf.create(structured_preset(distill_weight=0.5, distill_layers=[0]))
    config = PinchEncDecCTCModelBPE(cfg=tiny_model_cfg)._pinch_config
    assert config.distill_weight == 0.5 and config.distill_layers == [0]
    tiny_model_cfg.pruning.distill_temperature = 0
    with pytest.raises(ValueError, match="model.pruning: pruning key 'distill_temperature' must be a number > 0"):
        PinchEncDecCTCModelBPE(cfg=tiny_model_cfg)
