"""Train the recipe's sentencepiece tokenizer with NeMo's own builder.

The same call NeMo's scripts/tokenizers/process_asr_text_tokenizer.py makes (that script
is not in the wheel): ``create_spt_model`` on the training transcripts. The output folder
holds tokenizer.model and vocab.txt, what ``model.tokenizer.dir`` (type bpe) expects.

    python -m pinch.nemo.bin.tokenizer --manifest data/train/manifest.json \
        --vocab_size 128 --out data/tokenizer
"""
import argparse
import shutil
import sys
from pathlib import Path

from pinch.data.atomic import atomic_output_dir
from pinch.data.manifest import read_manifest


def build_tokenizer(manifests, out, vocab_size, tokenizer_type="unigram"):
    """Write the tokenizer folder ``out`` (complete or not at all); returns its path."""
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import create_spt_model

    if vocab_size < 2:
        raise ValueError(f"--vocab_size must be at least 2, got {vocab_size}")
    texts = [entry["text"] for path in manifests for entry in read_manifest(path)]
    if not texts:
        raise ValueError(f"no transcripts in {', '.join(map(str, manifests))}")
    with atomic_output_dir(Path(out)) as tmp:
        corpus = tmp / "text_corpus.txt"
        corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
        model_path, _ = create_spt_model(
            str(corpus), vocab_size, sample_size=-1, do_lower_case=False,
            tokenizer_type=tokenizer_type, output_dir=str(tmp / "spt"),
        )
        spt = Path(model_path).parent
        for name in ("tokenizer.model", "tokenizer.vocab", "vocab.txt"):
            shutil.move(str(spt / name), tmp / name)
        shutil.rmtree(spt)
        corpus.unlink()
    return Path(out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.tokenizer", description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True, nargs="+", help="NeMo manifest(s) with the training text")
    parser.add_argument("--out", required=True, help="output tokenizer folder")
    parser.add_argument("--vocab_size", type=int, default=128)
    parser.add_argument("--type", default="unigram", choices=["unigram", "bpe"], help="sentencepiece model type")
    args = parser.parse_args(argv)
    try:
        out = build_tokenizer(args.manifest, args.out, args.vocab_size, args.type)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"pinch.nemo.bin.tokenizer: error: {err}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
