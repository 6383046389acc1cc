"""Distillation inside espnet2's forward: the teacher is the model the pass starts from (the
weights espnet2 loads after building it), runs the encoder on the student's encoder input and
the CTC head on its output, and loss_distill joins the training loss and the reporter."""
from pathlib import Path

import pytest
import torch

from espnet_tiny import batch, parse_tiny
from pinch.espnet.tasks.asr import ASRTask
from test_espnet_training import train_epoch

PRESET = Path(__file__).resolve().parents[2] / "conf" / "pruning" / "sspg_structured.yaml"
# The shared structured preset; no dropout and no conv module (its BatchNorm normalises a
# training forward with the batch's statistics, the teacher's with its running ones), so the
# student's first training forward is the teacher's.
ARGS = ["--pruning_config", str(PRESET), "--pruning_conf", "target_sparsity=0.5", "--pruning_conf", "eta=200.0",
        "--encoder_conf", "use_cnn_module=false", "--encoder_conf", "dropout_rate=0.0",
        "--encoder_conf", "positional_dropout_rate=0.0", "--encoder_conf", "attention_dropout_rate=0.0",
        "--optim", "adam", "--optim_conf", "lr=0.01"]
DISTILL = ["--pruning_conf", "distill_weight=1.0", "--pruning_conf", "distill_layers=[0,-1]"]


def build(tmp_path, *extra):
    args = parse_tiny(tmp_path, *ARGS, *extra)
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    return args, model, ASRTask.build_optimizers(args, model)


def test_espnet_model_distils_from_the_weights_the_pass_starts_from(tmp_path):
    args, model, optimizers = build(tmp_path, *DISTILL)
    distiller = model._pinch_pruner.distiller
    assert distiller.entries == ("encoder", "ctc") and distiller.output == "ctc.ctc_lo"
    assert distiller.layers == ["encoder.encoders.0", "encoder.encoders.1"]
    with torch.no_grad():  # what --init_param does after build_model: the dense model arrives
        for name, param in model.named_parameters():
            if not name.endswith("_threshold"):
                param.mul_(1.1)
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    inputs = {"student": [], "teacher": []}
    model.encoder.register_forward_pre_hook(lambda m, a: inputs["student"].append(a[0]))
    distiller.teacher.encoder.register_forward_pre_hook(lambda m, a: inputs["teacher"].append(a[0]))

    model.train()
    loss, stats, _ = model(**batch())
    assert inputs["teacher"][0] is inputs["student"][0]  # the student's features, after SpecAugment
    assert float(stats["distill_kl"]) < 1e-8 and float(stats["distill_hidden"]) < 1e-5
    assert torch.allclose(loss, stats["loss_ctc"] + stats["loss_distill"] + stats["loss_sparsity"])

    reporter = train_epoch(args, model, optimizers, 4)
    for key in ("loss_distill", "distill_kl", "distill_hidden"):
        assert reporter.get_value("train", key) > 0, key
    teacher = distiller.teacher.state_dict()
    assert teacher.keys() == {k for k in dense if k.split(".")[0] in ("encoder", "ctc") and "_threshold" not in k}
    assert all(torch.equal(value, dense[name]) for name, value in teacher.items())
    assert not torch.equal(model.ctc.ctc_lo.weight, dense["ctc.ctc_lo.weight"])

    model.eval()  # validation: the task loss, no teacher run
    with torch.no_grad():
        loss, stats, _ = model(**batch())
    assert "loss_distill" not in stats and torch.allclose(loss, stats["loss_ctc"])


def test_distill_weight_zero_leaves_the_loss_as_it_was(tmp_path):
    losses = []
    for extra in ([], ["--pruning_conf", "distill_weight=0.0", "--pruning_conf", "distill_layers=[0]"]):
        _, model, _ = build(tmp_path, *extra)
        assert model._pinch_pruner.distiller is None
        model.train()
        loss, stats, _ = model(**batch())
        assert not {"loss_distill", "distill_kl"} & set(stats)
        losses.append(loss)
    assert torch.equal(*losses)


def test_a_model_whose_forward_runs_no_ctc_distils_hidden_layers_only(tmp_path):
    attention_only = ["--model_conf", "ctc_weight=0.0", "--decoder", "transformer", "--decoder_conf", "num_blocks=1",
                      "--decoder_conf", "linear_units=16", "--decoder_conf", "attention_heads=2"]
    with pytest.raises(SystemExit, match="ASRTask: pruning: distill_outputs needs per-frame output log-probs .* "
                                         "in ESPnetASRModel: set distill_outputs: false"):
        build(tmp_path, *DISTILL, *attention_only)
    _, model, _ = build(tmp_path, *DISTILL, *attention_only, "--pruning_conf", "distill_outputs=false")
    assert model._pinch_pruner.distiller.entries == ("encoder",) and model._pinch_pruner.distiller.output is None
