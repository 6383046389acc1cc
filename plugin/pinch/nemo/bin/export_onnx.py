"""Export a NeMo ASR model to ONNX for onnxruntime and sherpa-onnx, in fp32 and int8 (dynamic;
and static, calibrated on utterances of a ``--calibration_dir``): a CTC model as one graph, a
transducer (RNNT, TDT) in sherpa-onnx's NeMo transducer layout. A hybrid exports the head it
decodes with (NeMo's ``cur_decoder``: the RNNT head unless changed), the one the recipe's
PyTorch transcription scores; ``--branch ctc`` exports its CTC head.

Every graph comes from NeMo's own exporter (``export()`` of the model, or of its encoder,
prediction network and joint), checked against the same module in PyTorch (outputs within
``TOLERANCE``). Each carries the preprocessor's config, with which
``pinch.nemo.bin.onnx_transcribe`` computes the same features for onnxruntime, and the
metadata sherpa-onnx reads. ``tokens.txt`` is sherpa-onnx's token table (blank last).

- CTC: ``model.onnx`` (metadata: vocab_size, normalize_type, subsampling_factor, model_type).
- Transducer: ``encoder.onnx``, ``decoder.onnx`` (the LSTM prediction network, one token and
  its states in, its output and states out) and ``joiner.onnx``; the encoder's metadata is
  what sherpa-onnx's offline NeMo transducer reads: vocab_size (without the blank),
  normalize_type, subsampling_factor, model_type, pred_rnn_layers and pred_hidden (the
  shape of the zero states it starts from), feat_dim, and for TDT ``url: tdt``: sherpa-onnx
  2.0.1 knows a TDT model by "tdt" in that key and no other, and takes a duration to be
  its index, so only durations 0, 1, ..., n-1 are exported. int8: the three files'
  dynamic form; static int8 is the encoder's (where the time goes) beside the decoder's and
  joiner's dynamic form (``pinch.deploy.table.TRANSDUCER_FORMS``).

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
from pinch.deploy.table import TRANSDUCER_FORMS

PREPROCESSOR_KEY = "pinch_preprocessor"  # metadata: the NeMo preprocessor config (JSON)
# Largest output difference (log-probabilities, encodings, logits) allowed between onnxruntime
# and PyTorch (fp32): float reordering in fused kernels gives about 1e-5 here.
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


def decodes_with_transducer(model, branch=None):
    """Whether to export a transducer (RNNT, TDT): a hybrid's ``branch`` ("rnnt" or "ctc"), by
    default the head it decodes with; any other model's only head."""
    from nemo.collections.asr.models import EncDecRNNTModel

    if hasattr(model, "ctc_decoder"):
        return (branch or model.cur_decoder) == "rnnt"
    if branch is not None:
        raise ValueError(f"{type(model).__name__} has one head; --branch picks a hybrid's")
    return isinstance(model, EncDecRNNTModel)


def ctc_vocabulary(model):
    """The CTC head's vocabulary; a hybrid decoding with CTC exports its CTC branch."""
    if hasattr(model, "ctc_decoder"):
        model.set_export_config({"decoder_type": "ctc"})
        return list(model.ctc_decoder.vocabulary)
    from nemo.collections.asr.models import EncDecCTCModel

    if isinstance(model, EncDecCTCModel):  # a shrunk model keeps its pinch class
        return list(model.decoder.vocabulary)
    raise ValueError(f"{type(model).__name__}: ONNX export here covers CTC models and transducers (RNNT, TDT, "
                     "hybrids)")


def flat(outputs):
    """A module's (nested) outputs as the graph's flat list of outputs."""
    if isinstance(outputs, (tuple, list)):
        return [t for out in outputs for t in flat(out)]
    return [outputs]


def graph_feeds(path, inputs):
    """``inputs`` (arrays in the graph's input order) by the names NeMo's export gave them."""
    return dict(zip((item.name for item in onnx_session(path).get_inputs()), inputs))


def export_checked(module, path, inputs, reference):
    """NeMo's export of ``module`` (a model, or its encoder, prediction network or joint) to ``path``,
    refused unless onnxruntime gives ``reference``'s outputs on ``inputs`` (arrays in the graph's
    input order). ``reference`` runs after the export: NeMo switches modules to their export
    behaviour (the joint to logits, the prediction network to no start token)."""
    from nemo.core.classes.common import typecheck

    module.export(path)
    with torch.no_grad(), typecheck.disable_checks():
        expected = [t.numpy() for t in flat(reference(*(torch.from_numpy(x) for x in inputs)))]
    got = onnx_session(path).run(None, graph_feeds(path, inputs))
    shapes = [(g.shape, e.shape) for g, e in zip(got, expected) if g.shape != e.shape]
    if len(got) != len(expected) or shapes:
        diff = f"shape {shapes[0][0]} vs {shapes[0][1]}" if shapes else f"{len(got)} outputs vs {len(expected)}"
    else:
        diff = max(float(np.abs(g - e).max()) for g, e in zip(got, expected))
        if diff <= TOLERANCE:
            return
    raise ValueError(f"the ONNX graph of {type(module).__name__} does not reproduce PyTorch's outputs ({diff})")


def tdt_durations(model):
    """A TDT model's durations (none for RNNT), refused unless they are 0, 1, ..., n-1: sherpa-onnx
    takes the joint's best duration output to be its index."""
    extra = getattr(model.joint, "num_extra_outputs", 0)
    if not extra:
        return []
    durations = list(model.cfg.decoding.get("durations") or [])
    if durations != list(range(extra)):
        raise ValueError(f"{type(model).__name__}: TDT durations {durations} for {extra} duration outputs; "
                         f"sherpa-onnx decodes only durations {list(range(extra))}")
    return durations


def check_prediction_states(decoder):
    """Refuse a prediction network whose states are not the two (layers, batch, pred_hidden)
    zero tensors sherpa-onnx starts its NeMo transducer search from."""
    from nemo.collections.asr.modules import RNNTDecoder

    if isinstance(decoder, RNNTDecoder):
        shape = (decoder.pred_rnn_layers, 1, decoder.pred_hidden)
        if [tuple(s.shape) for s in decoder.initialize_state(torch.zeros(1, 1))] == [shape, shape]:
            return
    raise ValueError(f"{type(decoder).__name__}: sherpa-onnx's NeMo transducer needs an LSTM prediction network "
                     "(RNNTDecoder) with two (pred_rnn_layers, batch, pred_hidden) states")


def export_ctc(model, out_dir, feeds, metadata, calibration):
    """``model.onnx``, ``model.int8.onnx`` and, given ``calibration``, ``model.int8_static.onnx``."""
    vocab = ctc_vocabulary(model)
    inputs = [feeds["audio_signal"], feeds["length"]]
    fp32 = replace_atomically(out_dir / "model.onnx",
                              lambda tmp: export_checked(model, tmp, inputs, model.forward_for_export))
    set_metadata(fp32, {**metadata, "vocab_size": len(vocab) + 1, "model_type": "EncDecCTCModelBPE"})
    write_tokens(out_dir, vocab)
    written = [fp32, quantize_int8(fp32, out_dir / "model.int8.onnx", feeds)]
    if calibration is not None:
        written.append(quantize_int8(fp32, out_dir / "model.int8_static.onnx", feeds, calibration=calibration))
    return written


def export_transducer(model, out_dir, feeds, metadata, calibration):
    """The encoder, decoder and joiner of every form of ``TRANSDUCER_FORMS`` (static int8 given
    ``calibration``), encoder.int8_static.onnx last."""
    decoder, joint = model.decoder, model.joint
    check_prediction_states(decoder)
    durations = tdt_durations(model)
    vocab = list(joint.vocabulary)
    metadata = {**metadata, "vocab_size": len(vocab), "pred_rnn_layers": decoder.pred_rnn_layers,
                "pred_hidden": decoder.pred_hidden, "feat_dim": feeds["audio_signal"].shape[1],
                "model_type": "EncDecHybridRNNTCTCBPEModel" if hasattr(model, "ctc_decoder") else "EncDecRNNTBPEModel",
                **({"url": "tdt"} if durations else {})}
    rng = np.random.default_rng(0)
    states = [rng.standard_normal((decoder.pred_rnn_layers, 1, decoder.pred_hidden), dtype=np.float32)
              for _ in range(2)]
    parts = [  # (module, inputs in the graph's order, the module as exported, metadata)
        (model.encoder, [feeds["audio_signal"], feeds["length"]], model.encoder.forward_for_export, metadata),
        (decoder, [np.array([[1]], dtype=np.int32), np.array([1], dtype=np.int32), *states],
         lambda targets, length, *states: decoder(targets, length, list(states)), None),
        (joint, [rng.standard_normal((1, joint.encoder_hidden, 7), dtype=np.float32),
                 rng.standard_normal((1, joint.pred_hidden, 1), dtype=np.float32)], joint, None),
    ]
    written = []
    for (module, inputs, reference, part_metadata), fp32_name, int8_name in zip(
            parts, TRANSDUCER_FORMS["fp32"], TRANSDUCER_FORMS["int8"]):
        fp32 = replace_atomically(out_dir / fp32_name, lambda tmp: export_checked(module, tmp, inputs, reference))
        if part_metadata:
            set_metadata(fp32, part_metadata)
        written += [fp32, quantize_int8(fp32, out_dir / int8_name, graph_feeds(fp32, inputs))]
    write_tokens(out_dir, vocab)
    if calibration is not None:
        static = out_dir / TRANSDUCER_FORMS["int8_static"][0]
        written.append(quantize_int8(written[0], static, feeds, calibration=calibration))
    return written


def write_tokens(out_dir, vocab):
    """sherpa-onnx's ``tokens.txt``: ``piece id`` lines, the blank last."""
    write_text_atomic(out_dir / "tokens.txt", "".join(f"{t} {i}\n" for i, t in enumerate(vocab))
                      + f"<blk> {len(vocab)}\n")


def export(model_path, out_dir, shrink=False, calibration_dir=None, branch=None):
    """Write the ONNX files of every form and ``tokens.txt`` into ``out_dir``: ``model.onnx``,
    ``model.int8.onnx`` and, given ``calibration_dir``, ``model.int8_static.onnx`` for a CTC
    model; ``TRANSDUCER_FORMS``' files for a transducer. ``branch``: a hybrid's head ("rnnt",
    "ctc"; by default the one it decodes with)."""
    from omegaconf import OmegaConf

    from nemo.collections.asr.parts.submodules.multi_head_attention import RelPositionalEncoding

    model = load_model(model_path, shrink)
    transducer = decodes_with_transducer(model, branch)
    check_ungated(model)
    model.eval()
    swap_modules(model, RelPositionalEncoding, ComputedRelPositions)
    out_dir = Path(out_dir)
    preprocessor = OmegaConf.to_container(model.cfg.preprocessor, resolve=True)
    frames = 300
    feeds = {"audio_signal": np.random.default_rng(0).standard_normal((1, preprocessor["features"], frames),
                                                                       dtype=np.float32),
             "length": np.array([frames], dtype=np.int64)}
    normalize = preprocessor.get("normalize", "")
    metadata = {"normalize_type": "" if normalize == "NA" else normalize,
                "subsampling_factor": model.cfg.encoder.get("subsampling_factor", 4),
                "version": 1, "model_author": "NeMo", "comment": f"exported by pinch from {Path(model_path).name}"
                + (" (shrunk)" if shrink else ""), PREPROCESSOR_KEY: json.dumps(preprocessor)}
    calibration = None if calibration_dir is None else calibration_feeds(model.preprocessor, calibration_dir)
    if transducer:
        return export_transducer(model, out_dir, feeds, metadata, calibration)
    return export_ctc(model, out_dir, feeds, metadata, calibration)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.export_onnx", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="plain .nemo, or a structured gated one with --shrink")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--shrink", action="store_true", help="remove the groups a structured gated model pruned")
    parser.add_argument("--calibration_dir", help="data dir of utterances (the dev set) to calibrate static int8 on")
    parser.add_argument("--branch", choices=("rnnt", "ctc"),
                        help="a hybrid's head to export (default: the one it decodes with, its RNNT head unless changed)")
    args = parser.parse_args(argv)
    try:
        paths = export(args.model, args.out_dir, args.shrink, args.calibration_dir, args.branch)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.nemo.bin.export_onnx: error: {err}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"pinch.nemo: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
