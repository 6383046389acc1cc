"""Transcribe data directories with a .nemo model into Kaldi-style hypothesis files.

The model's own greedy decoding (CTC; RNNT for transducers and hybrids) through NeMo's
``ASRModel.restore_from`` + ``transcribe()`` (the same calls a user without pinch makes), on
each split's manifest.json; utterance ids come from the split's wav.scp so the output scores
against its ``text``. One
process serves several splits (``--set`` repeated): NeMo's import and the model load
are paid once.

    python -m pinch.nemo.bin.transcribe --model exp/sspg/model.nemo \
        --set data/test_clean exp/sspg/decode_test_clean/hyp.txt \
        --set data/test_other exp/sspg/decode_test_other/hyp.txt
"""
import argparse
import sys
from pathlib import Path

from pinch.data.atomic import write_text_atomic
from pinch.data.kaldi import read_table
from pinch.data.manifest import MANIFEST, read_manifest
from pinch.data.validate import check_audio


def utterances(data_dir):
    """``(utt_id, audio_path)`` in manifest order; errors name file and line."""
    data_dir = Path(data_dir)
    manifest = data_dir / MANIFEST
    entries = read_manifest(manifest)
    ids = {path: utt for utt, path in read_table(data_dir / "wav.scp").items()}
    out = []
    for lineno, entry in enumerate(entries, 1):
        audio = entry["audio_filepath"]
        check_audio(audio, None, f"{manifest}:{lineno}")
        if audio not in ids:
            raise ValueError(f"{manifest}:{lineno}: {audio} is not in {data_dir / 'wav.scp'}")
        out.append((ids[audio], audio))
    if not out:
        raise ValueError(f"{manifest}: no utterances")
    return out


def transcribe(model_path, sets, batch_size=16):
    """For each ``(data_dir, out)`` write ``out``; returns the utterance counts."""
    from nemo.collections.asr.models import ASRModel

    from pinch.nemo.archive import check_nemo_file

    checked = [(utterances(data_dir), out) for data_dir, out in sets]  # all inputs before the model
    model = ASRModel.restore_from(str(check_nemo_file(model_path)), map_location="cpu")
    model.eval()
    return [write_hypotheses(model, utts, out, batch_size) for utts, out in checked]


def write_hypotheses(model, utts, out, batch_size):
    """Transcribe ``utts`` into ``out``."""
    hyps = model.transcribe([audio for _, audio in utts], batch_size=batch_size, verbose=False)
    return write_hyp_file(out, utts, [h.text if hasattr(h, "text") else str(h) for h in hyps])


def write_hyp_file(out, utts, texts):
    """``utt_id words`` lines, sorted, complete or not at all."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, "".join(f"{utt} {' '.join(text.split())}\n" for (utt, _), text in sorted(zip(utts, texts))))
    return len(utts)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.transcribe", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help=".nemo file")
    parser.add_argument("--set", nargs=2, action="append", required=True, metavar=("DATA_DIR", "OUT"),
                        help="split folder (manifest.json, wav.scp) and the hypothesis file to write")
    parser.add_argument("--batch_size", type=int, default=16)
    args = parser.parse_args(argv)
    try:
        counts = transcribe(args.model, args.set, args.batch_size)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.nemo.bin.transcribe: error: {err}", file=sys.stderr)
        return 1
    for n, (_, out) in zip(counts, args.set):
        print(f"pinch.nemo: {n} utterances -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
