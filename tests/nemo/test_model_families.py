"""NeMo's transducer families compress through the same ``model.pruning`` block as CTC:
the pinch class is derived from the config's ``target``, trained by Lightning, baked back
to exactly that class, and restored by NeMo in a process that never imports pinch."""
import json
import os
import subprocess
import sys

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import OmegaConf

from families import TARGETS, family_cfg
from pinch.nemo import pinch_class_for, save_nemo
from pinch.nemo.bin.bake import bake_file
from pinch.nemo.bin.train import build_model
from pinch.nemo.rnnt_loss import TorchaudioRNNTLoss, choose_rnnt_loss

# What a model computes on fixed input, through every head it has; run here on the gated
# model and in a fresh interpreter on the baked one.
OUTPUTS = """
import torch

def outputs(model):
    model.eval()
    g = torch.Generator().manual_seed(0)
    audio, lengths = torch.randn(2, 16000, generator=g), torch.tensor([16000, 12000])
    targets, target_lengths = torch.randint(1, 10, (2, 4), generator=g), torch.tensor([4, 3])
    with torch.no_grad():
        encoded = model.forward(input_signal=audio, input_signal_length=lengths)[0]
        out = {"forward": encoded}
        if hasattr(model, "joint"):
            decoded = model.decoder(targets=targets, target_length=target_lengths)[0]
            out["joint"] = model.joint(encoder_outputs=encoded, decoder_outputs=decoded)
        if hasattr(model, "ctc_decoder"):
            out["ctc"] = model.ctc_decoder(encoder_output=encoded)
    return {k: v.tolist() for k, v in out.items()}
"""
NO_PINCH = OUTPUTS + """
import json, sys
from nemo.collections.asr.models import ASRModel
model = ASRModel.restore_from(sys.argv[1], map_location="cpu")
print("RESULT " + json.dumps({"class": type(model).__name__, "outputs": outputs(model),
                              "pinch_imported": any(m == "pinch" or m.startswith("pinch.") for m in sys.modules)}))
"""
namespace = {}
exec(OUTPUTS, namespace)
outputs = namespace["outputs"]


def restored_without_pinch(path):
    proc = subprocess.run([sys.executable, "-c", NO_PINCH, str(path)], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1][len("RESULT "):])
    assert result["pinch_imported"] is False
    return result


def assert_same_outputs(gated, baked):
    assert gated.keys() == baked.keys()
    for head in gated:
        torch.testing.assert_close(torch.tensor(baked[head]), torch.tensor(gated[head]), atol=1e-5, rtol=1e-4,
                                   msg=lambda m, head=head: f"{head}: {m}")


def bake_and_compare(model, tmp_path):
    gated_outputs = outputs(model)
    gated = save_nemo(model, tmp_path / "gated.nemo")
    baked, report = bake_file(gated, tmp_path / "model.nemo")
    result = restored_without_pinch(baked)
    assert result["class"] == model.nemo_class.__name__
    assert_same_outputs(gated_outputs, result["outputs"])
    return report


@pytest.mark.parametrize("family", ["rnnt", "hybrid"])
def test_transducer_family_compresses_to_target_and_bakes_to_its_class(family, tmp_path, tiny_model_cfg):
    model_cfg = family_cfg(tiny_model_cfg, family)
    model_cfg.optim.lr = 0.05
    model_cfg.optim.pop("sched")
    # Both presets: the encoder's and the transducer's prediction and joint networks.
    model_cfg.pruning = {"method": "sspg", "target_sparsity": 0.5, "preset": ["conformer", "rnnt_decoder"],
                         "eta": 3000.0}
    cfg = OmegaConf.create({"model": model_cfg, "init_from_nemo_model": None})
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=9, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, num_sanity_val_steps=0, limit_val_batches=0,
                         enable_model_summary=False, log_every_n_steps=1)
    model = build_model(cfg, trainer)  # the train entry point's own class choice
    assert type(model) is pinch_class_for(TARGETS[family]) and model.nemo_class.__name__ in TARGETS[family]
    assert isinstance(model.loss._loss, TorchaudioRNNTLoss)  # rnnt_loss_impl auto, on a CPU
    trainer.fit(model)

    assert trainer.callback_metrics["loss_sparsity"] >= 0 and "sparsity" in trainer.callback_metrics
    layers = model.pruner.sparsity().layers
    assert any(n.startswith("decoder.prediction.dec_rnn.lstm.") for n in layers)
    assert any(n.startswith("joint.") for n in layers)
    report = bake_and_compare(model, tmp_path)
    assert report.gated == pytest.approx(0.5, abs=0.01)


def test_tdt_gates_and_bakes_on_cpu(tmp_path, tiny_model_cfg):
    """TDT's loss is CUDA-only in nemo_toolkit 3.0: here the gates and the bake, on CPU."""
    model_cfg = family_cfg(tiny_model_cfg, "tdt")
    model_cfg.pruning = {"method": "sspg", "target_sparsity": 0.5, "preset": ["auto", "rnnt_decoder"]}
    model = pinch_class_for(model_cfg.target)(cfg=model_cfg)
    assert type(model.loss._loss).__name__ == "TDTLossNumba" and model.joint.num_extra_outputs == 5
    model.attach_pruner(total_steps=10)
    with torch.no_grad():  # prune each matrix at its median magnitude
        for name, threshold in model.named_parameters():
            if name.endswith("_threshold"):
                weight = model.get_parameter(name[: -len("_threshold")])
                threshold.fill_(float(weight.abs().median()))
    report = bake_and_compare(model, tmp_path)
    assert report.gated == pytest.approx(0.5, abs=0.02)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="TDT's loss runs on CUDA only in nemo_toolkit 3.0")
def test_tdt_training_step_on_gpu(tiny_model_cfg):
    model_cfg = family_cfg(tiny_model_cfg, "tdt")
    model_cfg.pruning = {"method": "sspg", "target_sparsity": 0.5, "preset": ["conformer", "rnnt_decoder"]}
    trainer = pl.Trainer(accelerator="gpu", devices=1, max_steps=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, num_sanity_val_steps=0, limit_val_batches=0,
                         log_every_n_steps=1)
    model = pinch_class_for(model_cfg.target)(cfg=model_cfg, trainer=trainer)
    trainer.fit(model)
    assert int(model.pinch_steps) == 2 and torch.isfinite(trainer.callback_metrics["train_loss"])


def test_torchaudio_rnnt_loss_equals_nemos(tiny_model_cfg):
    """The swapped function gives NeMo's loss and gradient; the config still names NeMo's loss."""
    model = pinch_class_for(TARGETS["rnnt"]).nemo_class(cfg=family_cfg(tiny_model_cfg, "rnnt"))
    g = torch.Generator().manual_seed(0)
    joint = torch.randn(3, 7, 5, model.joint.num_classes_with_blank, generator=g).log_softmax(-1)
    args = {"targets": torch.randint(0, model.joint.num_classes_with_blank - 1, (3, 4), generator=g),
            "input_lengths": torch.tensor([7, 6, 4]), "target_lengths": torch.tensor([4, 2, 3])}

    def loss_and_grad():
        x = joint.clone().requires_grad_()
        loss = model.loss(log_probs=x, **args)
        loss.backward()
        return loss.detach(), x.grad

    nemo_loss, nemo_grad = loss_and_grad()
    assert choose_rnnt_loss(model, "torchaudio", on_cpu=True) == "torchaudio"
    ta_loss, ta_grad = loss_and_grad()
    torch.testing.assert_close(ta_loss, nemo_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ta_grad, nemo_grad, rtol=1e-4, atol=1e-6)
    assert model.cfg.loss.loss_name == "default"


def test_rnnt_loss_choice(tiny_model_cfg):
    def model(family):
        return pinch_class_for(TARGETS[family]).nemo_class(cfg=family_cfg(tiny_model_cfg, family))

    rnnt = model("rnnt")
    assert choose_rnnt_loss(rnnt, "auto", on_cpu=False) == "nemo"  # a GPU keeps NeMo's
    assert choose_rnnt_loss(rnnt, "nemo", on_cpu=True) == "nemo"
    assert type(rnnt.loss._loss).__name__ == "RNNTLossNumba"
    assert choose_rnnt_loss(model("ctc"), "auto", on_cpu=True) == "nemo"
    tdt = model("tdt")
    assert choose_rnnt_loss(tdt, "auto", on_cpu=True) == "nemo"  # TDT is another loss
    with pytest.raises(ValueError, match="uses NeMo's 'tdt' loss, which torchaudio does not compute"):
        choose_rnnt_loss(tdt, "torchaudio", on_cpu=True)
    with pytest.raises(ValueError, match="rnnt_loss_impl must be one of auto, nemo, torchaudio, not 'numba'"):
        choose_rnnt_loss(rnnt, "numba", on_cpu=True)
    cfg = family_cfg(tiny_model_cfg, "rnnt")
    cfg.loss.warprnnt_numba_kwargs = {"fastemit_lambda": 0.001}
    fastemit = pinch_class_for(TARGETS["rnnt"]).nemo_class(cfg=cfg)
    with pytest.raises(ValueError, match="torchaudio's loss has no fastemit_lambda"):
        choose_rnnt_loss(fastemit, "torchaudio", on_cpu=True)


def test_a_config_without_target_is_refused_not_guessed(tiny_model_cfg):
    model_cfg = OmegaConf.create(OmegaConf.to_container(tiny_model_cfg))
    model_cfg.pop("target", None)
    with pytest.raises(ValueError, match="names no class: set 'target' to the NeMo model class"):
        build_model(OmegaConf.create({"model": model_cfg, "init_from_nemo_model": None}), trainer=None)


@pytest.mark.parametrize("target,message", [
    ("nemo.collections.asr.modules.ConformerEncoder", "compresses NeMo ASR models .*ConformerEncoder"),
    ("nemo.collections.asr.models.NoSuchModel", "cannot be imported"),
])
def test_a_class_pinch_cannot_compress_is_named(target, message):
    with pytest.raises(ValueError, match=message):
        pinch_class_for(target)


def test_configs_may_name_derived_classes():
    import pinch.nemo.models as models
    from nemo.collections.asr.models import EncDecHybridRNNTCTCBPEModel

    cls = models.PinchEncDecHybridRNNTCTCBPEModel
    assert cls is pinch_class_for("pinch.nemo.models.PinchEncDecHybridRNNTCTCBPEModel")
    assert cls.nemo_class is EncDecHybridRNNTCTCBPEModel and issubclass(cls, EncDecHybridRNNTCTCBPEModel)
    with pytest.raises(AttributeError):
        models.PinchNoSuchModel
