"""Export an espnet2 CTC ASR model's normalization, encoder and CTC head to ONNX, fp32 and int8
(dynamic; and static, calibrated on utterances of a ``--calibration_scp``).

Why not the whole model or espnet_onnx: torch.onnx cannot trace espnet2's STFT frontend
(torch.stft's reflect padding fails in the exporter), and espnet_onnx 0.2.1 (2024) predates
the pinned espnet. So the graph starts at the features: ``pinch.espnet.bin.onnx_decode``
computes them with the model's own espnet2 frontend, built from the config this file
stores in the ONNX metadata. The graph is checked against PyTorch on two lengths
(log-probabilities within ``TOLERANCE``); ``tokens.txt`` holds the token list (blank first,
as espnet2 orders it).

The input is a plain model dir (dense, or baked: config.yaml and a .pth), or, with
``--shrink``, a structured pruning run's config.yaml and gated checkpoint: its pruned FFN
units, heads and conv channels are removed first. espnet2's encoder configs size every
block alike, so the shrunk model's deployable form is this ONNX file.

    python -m pinch.espnet.bin.export_onnx --asr_train_config exp/sspg/baked/config.yaml \
        --asr_model_file exp/sspg/baked/model.pth --out_dir exp/sspg/baked/onnx \
        --calibration_scp dump/raw/dev/wav.scp
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

from pinch.data.atomic import write_text_atomic
from pinch.data.kaldi import read_table
from pinch.deploy import check_ungated, onnx_session, quantize_int8, set_metadata
from pinch.deploy.onnx_files import CALIBRATION_UTTERANCES, replace_atomically
from pinch.deploy.positions import ComputedRelPositions, swap_modules

FRONTEND_KEY = "pinch_frontend"  # metadata: {"frontend": ..., "frontend_conf": ..., "fs": ...}
TOLERANCE = 1e-3  # largest |log-prob| difference from PyTorch (fp32); about 1e-5 measured
FEATURES = ("feats", "feats_lengths")


def compute_rel_positions(encoder):
    """The encoder with its positional table computed in the graph (`pinch.deploy.positions`)."""
    from espnet.nets.pytorch_backend.transformer.embedding import RelPositionalEncoding

    return swap_modules(encoder, RelPositionalEncoding, ComputedRelPositions)


class EncoderCTC(torch.nn.Module):
    """Features -> normalization -> encoder -> CTC log-probabilities, and the output lengths."""

    def __init__(self, model):
        super().__init__()
        self.normalize, self.encoder, self.ctc = model.normalize, compute_rel_positions(model.encoder), model.ctc

    def forward(self, feats, feats_lengths):
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        encoded, lengths, _ = self.encoder(feats, feats_lengths)
        return self.ctc.log_softmax(encoded), lengths


def wav_features(frontend, audio_path):
    """The graph's inputs for one recording, from the model's espnet2 frontend (None: raw input)."""
    audio, _ = sf.read(audio_path, dtype="float32")
    speech = torch.from_numpy(audio)[None]
    lengths = torch.tensor([speech.shape[1]])
    with torch.no_grad():
        feats, lengths = frontend(speech, lengths) if frontend is not None else (speech, lengths)
    return {"feats": feats.numpy(), "feats_lengths": lengths.numpy()}


def calibration_feeds(frontend, wav_scp):
    """The graph's inputs for the first utterances of ``wav_scp`` (by id): static int8's calibration."""
    wavs = read_table(Path(wav_scp))
    return [wav_features(frontend, wavs[utt]) for utt in sorted(wavs)[:CALIBRATION_UTTERANCES]]


def load_model(config_path, model_path, shrink):
    import pinch
    from espnet2.tasks.asr import ASRTask

    from pinch.espnet.bin.bake import gated_model
    from pinch.export.checkpoint import load_state_dict

    for path in (config_path, model_path):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    if config.get("pruning"):
        if not shrink:
            raise ValueError(f"{config_path}: a pruning run's model still has its gates; bake it first "
                             "(python -m pinch.espnet.bin.bake), or --shrink a structured one")
        return pinch.shrink(gated_model("asr", config, load_state_dict(str(model_path)))[0]), config
    if shrink:
        raise ValueError(f"{config_path}: a plain model has no structured gates to shrink; drop --shrink")
    model, _ = ASRTask.build_model_from_file(str(config_path), str(model_path), "cpu")
    return model, config


def export_checked(module, path, feat_dim):
    example = (torch.randn(1, 1200, feat_dim), torch.tensor([1200]))
    torch.onnx.export(module, example, path, input_names=list(FEATURES), output_names=["logprobs", "lengths"],
                      dynamic_axes={"feats": {0: "batch", 1: "time"}, "feats_lengths": {0: "batch"},
                                    "logprobs": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}},
                      opset_version=17, dynamo=False)
    session = onnx_session(path)
    for frames in (300, 700):
        feats = torch.randn(1, frames, feat_dim)
        with torch.no_grad():
            expected = module(feats, torch.tensor([frames]))[0].numpy()
        got = session.run(None, {"feats": feats.numpy(), "feats_lengths": np.array([frames])})[0]
        if got.shape != expected.shape or not np.abs(got - expected).max() <= TOLERANCE:
            diff = np.abs(got - expected).max() if got.shape == expected.shape else f"shape {got.shape}"
            raise ValueError(f"the ONNX graph does not reproduce PyTorch's outputs at {frames} frames ({diff})")


def export(config_path, model_path, out_dir, shrink=False, calibration_scp=None):
    """Write ``model.onnx``, ``model.int8.onnx``, ``tokens.txt`` and, given ``calibration_scp``,
    ``model.int8_static.onnx`` into ``out_dir``."""
    if calibration_scp is not None and not Path(calibration_scp).is_file():
        raise FileNotFoundError(f"{calibration_scp}: no such file (the calibration utterances' wav.scp)")
    model, config = load_model(config_path, model_path, shrink)
    check_ungated(model)
    if model.ctc is None or getattr(model, "ctc_weight", 1.0) == 0.0:
        raise ValueError(f"{config_path}: the model has no CTC head to decode with")
    model.eval()
    module = EncoderCTC(model).eval()
    feat_dim = model.frontend.output_size() if model.frontend is not None else config["input_size"]
    out_dir = Path(out_dir)
    fp32 = replace_atomically(out_dir / "model.onnx", lambda tmp: export_checked(module, tmp, feat_dim))
    frontend = {"frontend": config.get("frontend"), "frontend_conf": config.get("frontend_conf") or {},
                "fs": (config.get("frontend_conf") or {}).get("fs", 16000)}
    set_metadata(fp32, {FRONTEND_KEY: json.dumps(frontend), "blank_id": 0,
                        "comment": f"exported by pinch from {Path(model_path).name}" + (" (shrunk)" if shrink else "")})
    tokens = config["token_list"]
    if isinstance(tokens, str):  # a path, as in a config written before training
        tokens = Path(tokens).read_text(encoding="utf-8").split()
    write_text_atomic(out_dir / "tokens.txt", "".join(f"{t} {i}\n" for i, t in enumerate(tokens)))
    feeds = {"feats": np.random.default_rng(0).standard_normal((1, 300, feat_dim), dtype=np.float32),
             "feats_lengths": np.array([300])}
    written = [fp32, quantize_int8(fp32, out_dir / "model.int8.onnx", feeds)]
    if calibration_scp is not None:
        calibration = calibration_feeds(model.frontend, calibration_scp)
        written.append(quantize_int8(fp32, out_dir / "model.int8_static.onnx", feeds, calibration=calibration))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.espnet.bin.export_onnx", description=__doc__.split("\n")[0])
    parser.add_argument("--asr_train_config", required=True)
    parser.add_argument("--asr_model_file", required=True)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--shrink", action="store_true", help="remove the groups a structured pruning run pruned")
    parser.add_argument("--calibration_scp", help="wav.scp of utterances (the dev set) to calibrate static int8 on")
    args = parser.parse_args(argv)
    try:
        paths = export(args.asr_train_config, args.asr_model_file, args.out_dir, args.shrink, args.calibration_scp)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.espnet.bin.export_onnx: error: {err}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"pinch.espnet: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
