"""Export a NeMo CTC (or hybrid, its CTC branch) model to ONNX for onnxruntime and sherpa-onnx,
in fp32 and int8 (dynamic; and static, calibrated on utterances of a ``--calibration_dir``).

The graph comes from NeMo's own exporter (``model.export``), checked against the model's
``forward_for_export`` in PyTorch on 3 s of features (log-probabilities within
``TOLERANCE``); the file carries the metadata sherpa-onnx reads for
NeMo CTC models (vocab_size, normalize_type, subsampling_factor, model_type) and the
preprocessor's config, with which ``pinch.nemo.bin.onnx_transcribe`` computes the same
features for onnxruntime. ``tokens.txt`` is sherpa-onnx's token table (blank last).

The input is a plain (dense or baked) .nemo, or, with ``--shrink``, a structured gated .nemo
from compression: its pruned FFN units, heads and conv channels are removed first. A
NeMo config cannot state per-layer sizes, so the shrunk model's deployable form is this
ONNX file (its .nemo stays the baked, masked one).

    python -m pinch.nemo.bin.export_onnx --model exp/sspg/model.nemo --out_dir exp/sspg/onnx \
        --calibration_dir data/dev
    python -m pinch.nemo.bin.export_onnx --model exp/sspg_structured/gated.nemo --shrink \
        --out_dir exp/sspg_structured/onnx_shrunk
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from pinch.data.atomic import write_text_atomic
from pinch.deploy import check_ungated, onnx_session, quantize_int8, set_metadata
from pinch.deploy.onnx_files import CALIBRATION_UTTERANCES, replace_atomically
from pinch.deploy.positions import ComputedRelPositions, swap_modules

PREPROCESSOR_KEY = "pinch_preprocessor"  # metadata: the NeMo preprocessor config (JSON)
# Largest |log-prob| difference allowed between onnxruntime and PyTorch (fp32): float
# reordering in fused kernels gives about 1e-5 here.
TOLERANCE = 1e-3


def load_model(path, shrink):
    """The model to export: plain as saved, or a structured gated one shrunk."""
    import pinch
    from nemo.collections.asr.models import ASRModel

    from pinch.nemo.archive import check_nemo_file, restore_gated

    gated = restore_gated(check_nemo_file(path))
    if gated is None:
        if shrink:
            raise ValueError(f"{path}: a plain model has no structured gates to shrink; drop --shrink")
        return ASRModel.restore_from(str(path), map_location="cpu")
    if not shrink:
        raise ValueError(f"{path}: a compressed model that still has its gates; bake it first "
                         "(python -m pinch.nemo.bin.bake), or --shrink a structured one")
    return pinch.shrink(gated)


def audio_features(preprocessor, audio_path):
    """The graph's inputs for one recording, from NeMo's preprocessor."""
    audio, _ = sf.read(audio_path, dtype="float32")
    with torch.no_grad():
        feats, length = preprocessor(input_signal=torch.from_numpy(audio)[None], length=torch.tensor([len(audio)]))
    return {"audio_signal": feats.numpy(), "length": length.numpy()}


def calibration_feeds(preprocessor, data_dir):
    """The graph's inputs for the first utterances of ``data_dir`` (by id): static int8's calibration."""
    from pinch.nemo.bin.transcribe import utterances

    utts = sorted(utterances(data_dir))[:CALIBRATION_UTTERANCES]
    return [audio_features(preprocessor, audio) for _, audio in utts]


def ctc_vocabulary(model):
    """The CTC head's vocabulary; hybrids export their CTC branch."""
    if hasattr(model, "ctc_decoder"):
        model.set_export_config({"decoder_type": "ctc"})
        return list(model.ctc_decoder.vocabulary)
    from nemo.collections.asr.models import EncDecCTCModel

    if isinstance(model, EncDecCTCModel):  # a shrunk model keeps its pinch class
        return list(model.decoder.vocabulary)
    raise ValueError(f"{type(model).__name__}: ONNX decoding here covers CTC models and hybrids' CTC branch")


def export_checked(model, path, feeds):
    """NeMo's export to ``path``, refused unless onnxruntime gives PyTorch's outputs on ``feeds``."""
    model.export(path)
    with torch.no_grad():
        expected = model.forward_for_export(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    expected = (expected[0] if isinstance(expected, (tuple, list)) else expected).numpy()
    got = onnx_session(path).run(None, feeds)[0]
    if got.shape != expected.shape or not np.abs(got - expected).max() <= TOLERANCE:
        diff = np.abs(got - expected).max() if got.shape == expected.shape else f"shape {got.shape} vs {expected.shape}"
        raise ValueError(f"the ONNX graph of {type(model).__name__} does not reproduce PyTorch's outputs ({diff})")


def export(model_path, out_dir, shrink=False, calibration_dir=None):
    """Write ``model.onnx``, ``model.int8.onnx``, ``tokens.txt`` and, given ``calibration_dir``,
    ``model.int8_static.onnx`` into ``out_dir``."""
    from omegaconf import OmegaConf

    from nemo.collections.asr.parts.submodules.multi_head_attention import RelPositionalEncoding

    model = load_model(model_path, shrink)
    check_ungated(model)
    model.eval()
    swap_modules(model, RelPositionalEncoding, ComputedRelPositions)
    vocab = ctc_vocabulary(model)
    out_dir = Path(out_dir)
    preprocessor = OmegaConf.to_container(model.cfg.preprocessor, resolve=True)
    frames = 300
    feeds = {"audio_signal": np.random.default_rng(0).standard_normal((1, preprocessor["features"], frames),
                                                                       dtype=np.float32),
             "length": np.array([frames], dtype=np.int64)}
    fp32 = replace_atomically(out_dir / "model.onnx", lambda tmp: export_checked(model, tmp, feeds))
    normalize = preprocessor.get("normalize", "")
    set_metadata(fp32, {
        "vocab_size": len(vocab) + 1, "normalize_type": "" if normalize == "NA" else normalize,
        "subsampling_factor": model.cfg.encoder.get("subsampling_factor", 4), "model_type": "EncDecCTCModelBPE",
        "version": 1, "model_author": "NeMo", "comment": f"exported by pinch from {Path(model_path).name}"
        + (" (shrunk)" if shrink else ""), PREPROCESSOR_KEY: json.dumps(preprocessor)})
    write_text_atomic(out_dir / "tokens.txt", "".join(f"{t} {i}\n" for i, t in enumerate(vocab))
                      + f"<blk> {len(vocab)}\n")
    written = [fp32, quantize_int8(fp32, out_dir / "model.int8.onnx", feeds)]
    if calibration_dir is not None:
        calibration = calibration_feeds(model.preprocessor, calibration_dir)
        written.append(quantize_int8(fp32, out_dir / "model.int8_static.onnx", feeds, calibration=calibration))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.export_onnx", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="plain .nemo, or a structured gated one with --shrink")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--shrink", action="store_true", help="remove the groups a structured gated model pruned")
    parser.add_argument("--calibration_dir", help="data dir of utterances (the dev set) to calibrate static int8 on")
    args = parser.parse_args(argv)
    try:
        paths = export(args.model, args.out_dir, args.shrink, args.calibration_dir)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.nemo.bin.export_onnx: error: {err}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"pinch.nemo: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
