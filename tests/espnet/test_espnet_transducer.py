"""espnet2's transducer task (asr_transducer_train) with the pruning choice: the transducer
encoder's blocks gated (``preset: auto``), trained, baked to a plain espnet2 transducer
model that loads strictly and computes what the gated one does.

espnet2 computes the transducer loss with warp-transducer (``warprnnt_pytorch``), which
espnet's tools/installers build from source and PyPI does not have: here torchaudio's
RNN-T loss stands in for it, with the same inputs (logits, blank 0, mean over the batch).
"""
import argparse

import pytest
import torch
import torchaudio
import yaml

from espnet_tiny import TOKENS, batch, save_and_bake, train_steps
from pinch.espnet.choices import resolve_pruning
from pinch.espnet.tasks.asr_transducer import ASRTransducerTask

CONFIG = {  # egs2 librispeech_100's transducer layout (conformer body), tiny
    "encoder_conf": {"main_conf": {}, "input_conf": {},
                     "body_conf": [{"block_type": "conformer", "hidden_size": 16, "linear_size": 32, "heads": 2,
                                    "conv_mod_kernel_size": 3, "num_blocks": 2}]},
    "decoder": "rnn", "decoder_conf": {"embed_size": 8, "hidden_size": 8},
    "joint_network_conf": {"joint_space_size": 8},
}


class TorchaudioRNNTLoss(torch.nn.Module):
    """warprnnt_pytorch.RNNTLoss's call, computed by torchaudio."""

    def forward(self, logits, targets, logit_lengths, target_lengths):
        return torchaudio.functional.rnnt_loss(logits, targets.int(), logit_lengths.int(), target_lengths.int(),
                                               blank=0, reduction="mean")


def parse(tmp_path, *pruning):
    (tmp_path / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(CONFIG))
    args = ASRTransducerTask.get_parser().parse_args([
        "--config", str(tmp_path / "train.yaml"), "--token_list", str(tmp_path / "tokens.txt"),
        "--input_size", "20", "--normalize", "none", "--optim", "adam", "--optim_conf", "lr=0.01", *pruning])
    resolve_pruning(args)
    return args


def test_transducer_encoder_compresses_bakes_and_loads_in_plain_espnet2(tmp_path):
    from espnet2.tasks.asr_transducer import ASRTransducerTask as PlainTask

    args = parse(tmp_path, "--pruning", "sspg", "--pruning_conf", "preset=auto",
                 "--pruning_conf", "target_sparsity=0.5", "--pruning_conf", "eta=2000.0")
    torch.manual_seed(0)
    model = ASRTransducerTask.build_model(args)
    pruner = model._pinch_pruner
    assert [p.name for p in pruner.presets] == ["espnet_transducer"]
    gated = [n for n, _ in model.named_parameters() if n.endswith("_threshold")]
    assert len(gated) == 2 * 10 and all(n.startswith("encoder.encoders.blocks.") for n in gated)
    pruner.clock.total_steps = 30
    model.criterion_transducer = TorchaudioRNNTLoss()
    optimizer = ASRTransducerTask.build_optimizers(args, model)[0]
    stats = train_steps(model, optimizer, [batch(frames=40, seed=step) for step in range(30)])
    assert "loss_sparsity" in stats and pruner.sparsity().gated == pytest.approx(0.5, abs=0.01)

    _, baked = save_and_bake("asr_transducer", args, model, tmp_path)
    config = yaml.safe_load((baked / "config.yaml").read_text())
    assert "pruning" not in config
    plain = PlainTask.build_model(argparse.Namespace(**config))
    plain.load_state_dict(torch.load(baked / "model.pth"), strict=True)
    model.eval()
    plain.eval()
    speech = batch(n=2, frames=40, seed=99)
    with torch.no_grad():
        gated_out = model.encode(speech["speech"], speech["speech_lengths"])[0]
        plain_out = plain.encode(speech["speech"], speech["speech_lengths"])[0]
    torch.testing.assert_close(plain_out, gated_out)
