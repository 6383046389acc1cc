"""What each preset gates on models of published size, built from their configurations with
random weights: matrices gated, share of the encoder's matrix weights, share of the model.

    python bench/preset_coverage.py      # prints a table, writes bench/results/preset_coverage.json

Shapes (the configurations, not the checkpoints, which this machine cannot download):
- NeMo Parakeet-TDT-0.6B-shaped: FastConformer encoder, 24 layers, d_model 1024, 8 heads,
  FFN x4, 8x dw_striding subsampling (256 channels), conv kernel 9, 128 mel features; RNNT
  prediction network 2 x LSTM 640, joint 640, 1024 tokens + blank, 5 TDT durations.
- NeMo FastConformer hybrid RNNT-CTC large (examples/asr/conf/fastconformer/hybrid_transducer_ctc):
  17 layers, d_model 512, prediction network 1 x LSTM 640, joint 640, aux CTC, 1024 tokens.
- ESPnet egs2 librispeech_100 E-Branchformer (its conf/tuning/
  train_asr_e_branchformer_size256_mlp1024_linear1024_e12_mactrue_edrop0.0_ddrop0.0.yaml):
  12 blocks, 256, 4 heads, cgMLP 1024, FFN 1024 (macaron), Transformer decoder 6 x 2048,
  5000 tokens; and a Conformer of the same size (12 blocks, 256, FFN 1024, kernel 31) with
  the same decoder.
"""
import argparse
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from common import write_json  # noqa: E402
from pinch.targets import select_targets  # noqa: E402
from pinch.targets.coverage import measure  # noqa: E402
from pinch.targets.selection import gateable_weights  # noqa: E402


def nemo_transducer(n_layers, d_model, pred_layers, durations, aux_ctc, vocab=1024):
    from nemo.collections.asr.modules import ConformerEncoder, ConvASRDecoder, RNNTDecoder, RNNTJoint

    model = nn.Module()
    model.encoder = ConformerEncoder(feat_in=128, n_layers=n_layers, d_model=d_model, n_heads=8,
                                     ff_expansion_factor=4, subsampling="dw_striding", subsampling_factor=8,
                                     subsampling_conv_channels=256, conv_kernel_size=9, self_attention_model="rel_pos")
    model.decoder = RNNTDecoder(prednet={"pred_hidden": 640, "pred_rnn_layers": pred_layers}, vocab_size=vocab,
                                blank_as_pad=True)
    model.joint = RNNTJoint(jointnet={"encoder_hidden": d_model, "pred_hidden": 640, "joint_hidden": 640,
                                      "activation": "relu"}, num_classes=vocab, num_extra_outputs=durations)
    if aux_ctc:
        model.ctc_decoder = ConvASRDecoder(feat_in=d_model, num_classes=vocab)
    return model


def espnet_asr(encoder, encoder_conf):
    import tempfile

    from pinch.espnet.tasks.asr import ASRTask

    tokens = os.path.join(tempfile.mkdtemp(), "tokens.txt")
    with open(tokens, "w") as f:
        f.write("\n".join(["<blank>", "<unk>"] + [f"t{i}" for i in range(4997)] + ["<sos/eos>"]) + "\n")
    conf = [x for k, v in encoder_conf.items() for x in ("--encoder_conf", f"{k}={v}")]
    args = ASRTask.get_parser().parse_args([
        "--token_list", tokens, "--input_size", "80", "--normalize", "none", "--encoder", encoder, *conf,
        "--decoder", "transformer", "--decoder_conf", "attention_heads=4", "--decoder_conf", "linear_units=2048",
        "--decoder_conf", "num_blocks=6", "--model_conf", "ctc_weight=0.3",
    ])
    return ASRTask.build_model(args)


EGS2_COMMON = dict(output_size=256, attention_heads=4, input_layer="conv2d", num_blocks=12,
                   rel_pos_type="latest", pos_enc_layer_type="rel_pos")
MODELS = {
    "NeMo Parakeet-TDT-0.6B-shaped (TDT)": (
        lambda: nemo_transducer(24, 1024, 2, 5, aux_ctc=False), ["conformer"], ["conformer", "rnnt_decoder"]),
    "NeMo FastConformer hybrid RNNT-CTC large": (
        lambda: nemo_transducer(17, 512, 1, 0, aux_ctc=True), ["conformer"], ["conformer", "rnnt_decoder"]),
    "ESPnet egs2 E-Branchformer (librispeech_100)": (
        lambda: espnet_asr("e_branchformer", dict(
            EGS2_COMMON, attention_layer_type="rel_selfattn", cgmlp_linear_units=1024, cgmlp_conv_kernel=31,
            use_linear_after_conv=False, gate_activation="identity", linear_units=1024,
            positionwise_layer_type="linear", use_ffn=True, macaron_ffn=True, merge_conv_kernel=31)),
        ["e_branchformer"], ["conformer"]),
    "ESPnet Conformer, the same size": (
        lambda: espnet_asr("conformer", dict(
            EGS2_COMMON, selfattention_layer_type="rel_selfattn", linear_units=1024, macaron_style=True,
            use_cnn_module=True, cnn_module_kernel=31)),
        ["conformer"]),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    rows = []
    for family, (build, *presets) in MODELS.items():
        torch.manual_seed(0)
        model = build()
        params = sum(p.numel() for p in model.parameters())
        weights = gateable_weights(model)
        for preset in presets:
            try:
                names = [t.qualified_name for t in select_targets(model, preset)]
            except ValueError as err:
                rows.append({"family": family, "preset": preset, "error": str(err)})
                continue
            c = measure(weights, names, params)
            rows.append({"family": family, "preset": preset, "params": params, "matrices": c.matrices,
                         "gated": c.gated, "encoder_share": c.encoder_share, "model_share": c.gated / params,
                         "warning": c.warning()})
        del model
    print("| model | preset | parameters | matrices gated | share of the encoder's matrix weights "
          "| share of all parameters |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        preset = " + ".join(r["preset"])
        if "error" in r:
            print(f"| {r['family']} | {preset} | | error: {r['error']} | | |")
        else:
            print(f"| {r['family']} | {preset} | {r['params'] / 1e6:.1f}M | {r['matrices']} | "
                  f"{r['encoder_share']:.1%}{' (warns)' if r['warning'] else ''} | {r['model_share']:.1%} |")
    print("wrote", write_json(args.out, "preset_coverage", {"rows": rows}))


if __name__ == "__main__":
    main()
