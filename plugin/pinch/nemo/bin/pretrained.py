"""Take a user's pretrained .nemo as the recipe's dense model (``run.sh --pretrained``).

Checks that the file is a NeMo ASR model pinch can compress (a class ``pinch.nemo``
derives, no gates left in it), links it as ``<dense_dir>/model.nemo`` and writes the
parameter counts the results table reads. The network, preprocessor and tokenizer all
come from the .nemo: the recipe's data are transcribed with the model's own tokenizer.

    python -m pinch.nemo.bin.pretrained --nemo /models/parakeet.nemo --dense_dir exp/pretrained_parakeet
"""
import argparse
import os
import sys
from pathlib import Path


def place(nemo, dense_dir):
    from pinch.nemo import nemo_config, pinch_class_for
    from pinch.nemo.archive import write_counts
    from pinch.nemo.mixin import PRUNING_KEY

    nemo = Path(nemo).resolve()
    cfg = nemo_config(nemo)
    if cfg.get(PRUNING_KEY) is not None:
        raise ValueError(f"{nemo}: a compressed model that still has its gates; bake it first "
                         "(python -m pinch.nemo.bin.bake)")
    cls = pinch_class_for(cfg.get("target")).nemo_class
    if cfg.get("tokenizer") is None and not cfg.get("labels"):
        raise ValueError(f"{nemo}: its config has neither a tokenizer nor labels: not an ASR model pinch can "
                         "score")
    model = cls.restore_from(str(nemo), map_location="cpu")
    dense_dir = Path(dense_dir)
    dense_dir.mkdir(parents=True, exist_ok=True)
    link = dense_dir / "model.nemo"
    tmp = dense_dir / ".model.nemo.link"
    tmp.unlink(missing_ok=True)
    os.symlink(nemo, tmp)
    write_counts(model, link)
    os.replace(tmp, link)  # the link last: the stage counts as done only when both exist
    return link, cls


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.pretrained", description=__doc__.split("\n")[0])
    parser.add_argument("--nemo", required=True, help="the pretrained .nemo file")
    parser.add_argument("--dense_dir", required=True, help="the recipe's dense model directory")
    args = parser.parse_args(argv)
    try:
        link, cls = place(args.nemo, args.dense_dir)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.nemo.bin.pretrained: error: {err}", file=sys.stderr)
        return 1
    print(f"pinch.nemo: {link} -> {args.nemo} ({cls.__name__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
