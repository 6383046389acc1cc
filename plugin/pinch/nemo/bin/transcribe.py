"""Transcribe a data directory with a .nemo model into a Kaldi-style hypothesis file.

Greedy CTC decoding through NeMo's own ``ASRModel.restore_from`` + ``transcribe()``
(the same calls a user without pinch makes), on the split's manifest.json; utterance
ids come from the split's wav.scp so the output scores against its ``text``:

    python -m pinch.nemo.bin.transcribe --model exp/sspg/model.nemo \
        --data_dir data/test_clean --out exp/sspg/decode_test_clean/hyp.txt
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

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


def transcribe(model_path, data_dir, out, batch_size=16):
    """Write ``out`` (``utt_id words`` lines, sorted); returns the number of utterances."""
    from nemo.collections.asr.models import ASRModel

    from pinch.nemo.archive import check_nemo_file

    utts = utterances(data_dir)
    model = ASRModel.restore_from(str(check_nemo_file(model_path)), map_location="cpu")
    model.eval()
    hyps = model.transcribe([audio for _, audio in utts], batch_size=batch_size, verbose=False)
    texts = [h.text if hasattr(h, "text") else str(h) for h in hyps]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for (utt, _), text in sorted(zip(utts, texts)):
            f.write(f"{utt} {' '.join(text.split())}\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return len(utts)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.transcribe", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help=".nemo file")
    parser.add_argument("--data_dir", required=True, help="split folder with manifest.json and wav.scp")
    parser.add_argument("--out", required=True, help="hypothesis text file (Kaldi 'utt words')")
    parser.add_argument("--batch_size", type=int, default=16)
    args = parser.parse_args(argv)
    try:
        n = transcribe(args.model, args.data_dir, args.out, args.batch_size)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.nemo.bin.transcribe: error: {err}", file=sys.stderr)
        return 1
    print(f"pinch.nemo: {n} utterances -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
