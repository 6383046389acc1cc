"""Transcribe NeMo manifests (or data directories) with a .nemo model.

The model's own decoding (greedy CTC; greedy RNNT/TDT for transducers, the RNNT head of a
hybrid; beam where its config's ``decoding`` says so: nothing here changes it, so a dense model
and its compressed ones decode alike) through NeMo's ``ASRModel.restore_from`` +
``transcribe()``, the calls a user without pinch makes, fed a manifest as NeMo's
``examples/asr/transcribe_speech.py`` feeds it: relative audio paths resolved against the
manifest's folder, an entry's ``offset`` and ``duration`` reading that segment of a longer
recording (a whole file is read whole), wav, flac or any format soundfile reads.

As transcribe_speech.py (Hydra-style ``key=value``): the manifest's lines as written, each
with its ``pred_text``, in ``output_filename`` (default: the manifest's name with the model's
appended, beside it); ``cuda`` as there: unset, CUDA device 0 if there is one, else the CPU; a
negative number, the CPU; N, CUDA device N (an error if there is none):

    python -m pinch.nemo.bin.transcribe model_path=model.nemo dataset_manifest=test.json \
        output_filename=test_pred.json batch_size=32 cuda=0

The recipes' form: Kaldi-style ``uttid words`` hypothesis files, one per ``--set`` (a
manifest, or a data dir with manifest.json; utterance ids as ``pinch.data.manifest`` gives
them, so they score against the references it writes or the data dir's ``text``). One process
serves every set: NeMo's import and the model load are paid once.

    python -m pinch.nemo.bin.transcribe --model exp/sspg/model.nemo --cuda 0 \
        --set data/test_clean exp/sspg/decode_test_clean/hyp.txt \
        --set my/test.json exp/sspg/decode_test/hyp.txt
"""
import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pinch.data.atomic import check_outputs, write_text_atomic
from pinch.data.manifest import MANIFEST, check_segment, manifest_entries

PROG = "python -m pinch.nemo.bin.transcribe"
# transcribe_speech.py's keys that this entry point takes, with their defaults.
KEYS = {"model_path": None, "dataset_manifest": None, "output_filename": None, "batch_size": 32, "cuda": None}
WHOLE_FILE = 100000  # the duration NeMo's transcribe() gives a plain audio path: read to the end


def manifest_of(source):
    """The manifest of a ``--set``: the file itself, or a data dir's manifest.json."""
    source = Path(source)
    return source / MANIFEST if source.is_dir() else source


def checked_entries(source):
    """The utterances of a manifest or data dir, every audio file readable and every segment
    inside its file; errors name the manifest and line."""
    entries = manifest_entries(manifest_of(source))
    for entry in entries:
        check_segment(entry)
    return entries


_segments_dir = None


def _segment_file(entry):
    """A wav of ``entry``'s segment, cut as NeMo's AudioSegment reads it, in a folder removed
    when the process ends."""
    global _segments_dir
    import soundfile as sf

    if _segments_dir is None:
        _segments_dir = tempfile.mkdtemp(prefix="pinch_segments_")
        atexit.register(shutil.rmtree, _segments_dir, True)
    with sf.SoundFile(entry.audio) as f:
        rate = f.samplerate
        f.seek(int(entry.offset * rate))
        audio = f.read(int(entry.duration * rate), dtype="float32")
    path = os.path.join(_segments_dir, f"{entry.utt_id}.wav")
    sf.write(path, audio, rate, subtype="FLOAT")
    return path


def utterances(source):
    """``(utt_id, audio_path)`` in manifest order, for decoders that read whole files (the
    ONNX runtimes): a segment (``offset``) comes as a temporary file holding just it."""
    return [(e.utt_id, _segment_file(e) if e.offset is not None else e.audio) for e in checked_entries(source)]


def inference_device(cuda=None):
    """transcribe_speech.py's ``cuda``: None, CUDA device 0 where there is one, else the CPU; a
    negative number, the CPU; N, CUDA device N. Asked for before any work, so a missing GPU is
    one line, not a failure inside NeMo."""
    import torch

    count = torch.cuda.device_count()
    if cuda is None:
        return torch.device("cuda:0" if count else "cpu")
    if cuda < 0:
        return torch.device("cpu")
    if cuda >= count:
        raise ValueError(f"cuda={cuda}: no CUDA device {cuda} on this machine (torch sees {count})")
    return torch.device(f"cuda:{cuda}")


def load_model(model_path, device):
    """The .nemo on ``device``, in eval mode, with the decoding its config names."""
    from nemo.collections.asr.models import ASRModel

    from pinch.nemo.archive import check_nemo_file

    model = ASRModel.restore_from(str(check_nemo_file(model_path)), map_location=device)
    model.eval()
    decoding = model.cfg.get("decoding") or {}
    print(f"pinch.nemo: {model_path}: {type(model).__name__} on {device}, "
          f"its own decoding ({decoding.get('strategy', 'default')})")
    return model


def transcribe_entries(model, entries, batch_size):
    """The model's text of each entry, in order: NeMo's ``transcribe()`` on a manifest of the
    resolved paths (a segment with its offset and duration, a whole file as NeMo reads a path)."""
    with tempfile.TemporaryDirectory(prefix="pinch_transcribe_") as tmp:
        manifest = Path(tmp) / "manifest.json"
        with open(manifest, "w", encoding="utf-8") as f:
            for e in entries:
                line = {"audio_filepath": e.audio, "text": ""}
                if e.offset is None:
                    line["duration"] = WHOLE_FILE
                else:
                    line.update(offset=e.offset, duration=e.duration)
                f.write(json.dumps(line) + "\n")
        hyps = model.transcribe(str(manifest), batch_size=batch_size, verbose=False)
    if isinstance(hyps, tuple):  # (best, all) of older transducer APIs
        hyps = hyps[0]
    texts = [h.text if hasattr(h, "text") else str(h) for h in hyps]
    if len(texts) != len(entries):
        raise RuntimeError(f"transcribe() returned {len(texts)} hypotheses for {len(entries)} utterances")
    return texts


def transcribe(model_path, sets, batch_size=16, cuda=None):
    """For each ``(source, out)`` (a manifest or data dir, a Kaldi hypothesis file) write
    ``out``; returns the utterance counts."""
    device = inference_device(cuda)
    check_outputs({f"--set's OUT {out}": Path(out) for _, out in sets},
                  {f"--set {src}": manifest_of(src) for src, _ in sets})
    checked = [(checked_entries(src), out) for src, out in sets]  # all inputs before the model
    model = load_model(model_path, device)
    return [write_hyp_file(out, [(e.utt_id, e.audio) for e in entries],
                           transcribe_entries(model, entries, batch_size)) for entries, out in checked]


def write_hyp_file(out, utts, texts):
    """``utt_id words`` lines, sorted, complete or not at all."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, "".join(f"{utt} {' '.join(text.split())}\n" for (utt, _), text in sorted(zip(utts, texts))))
    return len(utts)


def transcribe_manifest(model_path, dataset_manifest, output_filename=None, batch_size=32, cuda=None):
    """transcribe_speech.py's output: each line of ``dataset_manifest`` as written, with its
    ``pred_text``, in ``output_filename``; returns that path and the utterance count."""
    device = inference_device(cuda)
    manifest = Path(dataset_manifest)
    if output_filename is None:
        output_filename = str(manifest).replace(".json", f"_{Path(model_path).stem}.json")
        if output_filename == str(manifest):
            output_filename = f"{manifest}_{Path(model_path).stem}.json"
    out = Path(output_filename)
    check_outputs({"output_filename": out}, {"dataset_manifest": manifest, "model_path": Path(model_path)})
    entries = checked_entries(manifest)
    texts = transcribe_entries(load_model(model_path, device), entries, batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, "".join(json.dumps({**e.raw, "pred_text": t}, ensure_ascii=False) + "\n"
                                   for e, t in zip(entries, texts)))
    return out, len(entries)


def parse_overrides(argv):
    """transcribe_speech.py's ``key=value`` arguments, checked; errors name the argument."""
    cfg = dict(KEYS)
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq:
            raise ValueError(f"expected key=value (as transcribe_speech.py), not {arg!r}")
        if key not in KEYS:
            raise ValueError(f"unknown key {key!r}: this entry point takes {', '.join(KEYS)}")
        cfg[key] = value
    for key in ("model_path", "dataset_manifest"):
        if not cfg[key]:
            raise ValueError(f"{key}= is required")
    size = str(cfg["batch_size"])
    if not size.isdigit() or int(size) == 0:
        raise ValueError(f"batch_size must be a positive integer, not {size!r}")
    cfg["batch_size"] = int(size)
    if cfg["cuda"] is not None:
        try:
            cfg["cuda"] = int(cfg["cuda"])
        except ValueError:
            raise ValueError(f"cuda must be an integer (a CUDA device; negative: the CPU), not {cfg['cuda']!r}") from None
    return cfg


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and not any(a.startswith("-") for a in argv):
        try:
            out, n = transcribe_manifest(**parse_overrides(argv))
        except (ValueError, FileNotFoundError) as err:
            print(f"pinch.nemo.bin.transcribe: error: {err}", file=sys.stderr)
            return 1
        print(f"pinch.nemo: {n} utterances -> {out}")
        return 0
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                     epilog="Or as transcribe_speech.py: model_path=M dataset_manifest=D "
                                            "[output_filename=O] [batch_size=N] [cuda=N]")
    parser.add_argument("--model", required=True, help=".nemo file")
    parser.add_argument("--set", nargs=2, action="append", required=True, metavar=("MANIFEST_OR_DIR", "OUT"),
                        help="a NeMo manifest (or a data dir holding manifest.json) and the hypothesis file to write")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--cuda", type=int, default=None,
                        help="CUDA device (transcribe_speech.py's cuda): unset, device 0 if any, else the CPU; "
                             "negative: the CPU")
    args = parser.parse_args(argv)
    try:
        counts = transcribe(args.model, args.set, args.batch_size, args.cuda)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.nemo.bin.transcribe: error: {err}", file=sys.stderr)
        return 1
    for n, (_, out) in zip(counts, args.set):
        print(f"pinch.nemo: {n} utterances -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
