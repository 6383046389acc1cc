"""ESPnet's encoder families compress with their own presets (``preset: auto`` picks it),
say what they gate, warn when a preset misses most of an encoder, and bake to plain
espnet2 models that decode the same in a process that never imports pinch."""
import json
import logging
import os
import subprocess
import sys

import pytest
import torch
import yaml

from espnet_tiny import TOKENS, batch, save_and_bake, train_steps
from pinch.espnet.choices import resolve_pruning
from pinch.espnet.tasks.asr import ASRTask

# egs2 layouts (librispeech_100 conf/tuning/train_asr_{e_branchformer,branchformer}*.yaml), tiny.
COMMON = ["output_size=16", "attention_heads=2", "num_blocks=2", "input_layer=conv2d", "cgmlp_linear_units=32",
          "cgmlp_conv_kernel=3", "use_linear_after_conv=false", "gate_activation=identity",
          "rel_pos_type=latest", "pos_enc_layer_type=rel_pos", "attention_layer_type=rel_selfattn"]
ENCODERS = {
    "e_branchformer": COMMON + ["linear_units=32", "positionwise_layer_type=linear", "use_ffn=true",
                                "macaron_ffn=true", "merge_conv_kernel=3", "layer_drop_rate=0.0"],
    "branchformer": COMMON + ["merge_method=concat", "cgmlp_weight=0.5", "attn_branch_drop_rate=0.0"],
}
BLOCK_KINDS = {
    "e_branchformer": {"attn.linear_q", "attn.linear_k", "attn.linear_v", "attn.linear_out",
                       "cgmlp.channel_proj1.0", "cgmlp.channel_proj2", "merge_proj",
                       "feed_forward.w_1", "feed_forward.w_2", "feed_forward_macaron.w_1", "feed_forward_macaron.w_2"},
    "branchformer": {"attn.linear_q", "attn.linear_k", "attn.linear_v", "attn.linear_out",
                     "cgmlp.channel_proj1.0", "cgmlp.channel_proj2", "merge_proj"},
}


def parse(tmp_path, encoder, *pruning):
    token_list = tmp_path / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n")
    conf = [x for item in ENCODERS[encoder] for x in ("--encoder_conf", item)]
    args = ASRTask.get_parser().parse_args([
        "--token_list", str(token_list), "--input_size", "20", "--normalize", "none", "--encoder", encoder, *conf,
        "--model_conf", "ctc_weight=1.0", "--optim", "adam", "--optim_conf", "lr=0.01", *pruning,
    ])
    resolve_pruning(args)
    return args


def kinds(names):
    """``encoder.encoders.1.attn.linear_q.weight`` -> ``attn.linear_q``."""
    return {n.split(".", 3)[3].rsplit(".", 1)[0] for n in names}


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_auto_picks_the_family_preset_and_gates_every_block_matrix(tmp_path, encoder, caplog):
    args = parse(tmp_path, encoder, "--pruning", "sspg", "--pruning_conf", "preset=auto")
    with caplog.at_level(logging.INFO, logger="pinch"):
        model = ASRTask.build_model(args)
    assert f"preset auto: '{encoder}'" in caplog.text
    gated = [n[: -len("_threshold")] for n, _ in model.named_parameters() if n.endswith("_threshold")]
    assert kinds(gated) == BLOCK_KINDS[encoder]
    coverage = model._pinch_pruner.coverage
    assert coverage.encoder == "encoder." and coverage.encoder_share > 0.5
    assert f"gates {2 * len(BLOCK_KINDS[encoder])} matrices" in caplog.text  # 2 blocks
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "cover only" in r.message]


def test_a_preset_that_misses_most_of_the_encoder_warns_naming_what_it_missed(tmp_path, caplog):
    args = parse(tmp_path, "e_branchformer", "--pruning", "sspg", "--pruning_conf", "preset=conformer")
    with caplog.at_level(logging.INFO, logger="pinch"):
        model = ASRTask.build_model(args)
    assert kinds(model._pinch_pruner.sparsity().layers) == {
        "feed_forward.w_1", "feed_forward.w_2", "feed_forward_macaron.w_1", "feed_forward_macaron.w_2"}
    warning = [r.message for r in caplog.records if r.levelno == logging.WARNING and "cover only" in r.message]
    assert warning, caplog.text
    assert "encoders.*.attn.linear_q" in warning[0] and "encoders.*.merge_proj" in warning[0]


def test_branchformer_with_the_conformer_preset_is_an_error_naming_it(tmp_path):
    args = parse(tmp_path, "branchformer", "--pruning", "sspg", "--pruning_conf", "preset=conformer")
    with pytest.raises(SystemExit, match="preset 'conformer' matches no Linear/Conv/RNN layer of ESPnetASRModel"):
        ASRTask.build_model(args)


NO_PINCH = """
import json, sys, torch
from espnet2.bin.asr_inference import Speech2Text
speech = torch.load(sys.argv[3])
s2t = Speech2Text(asr_train_config=sys.argv[1], asr_model_file=sys.argv[2], beam_size=1, ctc_weight=1.0,
                  lm_weight=0.0)
print("RESULT " + json.dumps({"tokens": [s2t(x)[0][2] for x in speech],
                              "pinch_imported": any(m == "pinch" or m.startswith("pinch.") for m in sys.modules)}))
"""


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_family_compresses_to_target_and_decodes_the_same_in_plain_espnet(tmp_path, encoder, monkeypatch):
    import espnet2.bin.asr_inference as asr_inference

    args = parse(tmp_path, encoder, "--pruning", "sspg", "--pruning_conf", "preset=auto",
                 "--pruning_conf", "target_sparsity=0.5", "--pruning_conf", "eta=2000.0")
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    model._pinch_pruner.clock.total_steps = 40
    optimizer = ASRTask.build_optimizers(args, model)[0]
    train_steps(model, optimizer, [batch(frames=40, seed=step) for step in range(40)])
    assert model._pinch_pruner.sparsity().gated == pytest.approx(0.5, abs=0.01)
    exp, _ = save_and_bake("asr", args, model, tmp_path)
    assert "pruning" not in yaml.safe_load((tmp_path / "baked" / "config.yaml").read_text())

    speech = [batch(n=1, frames=40, seed=99 + i)["speech"][0] for i in range(3)]
    torch.save(speech, tmp_path / "speech.pt")
    proc = subprocess.run([sys.executable, "-c", NO_PINCH, str(tmp_path / "baked" / "config.yaml"),
                           str(tmp_path / "baked" / "model.pth"), str(tmp_path / "speech.pt")],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1][len("RESULT "):])
    assert result["pinch_imported"] is False
    # The gated model: Speech2Text building it through pinch's task from the training config.
    monkeypatch.setattr(asr_inference, "ASRTask", ASRTask)
    s2t = asr_inference.Speech2Text(asr_train_config=str(exp / "config.yaml"), asr_model_file=str(exp / "model.pth"),
                                    beam_size=1, ctc_weight=1.0, lm_weight=0.0)
    assert [s2t(x)[0][2] for x in speech] == result["tokens"]
