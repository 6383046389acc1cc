"""``python -m pinch.espnet.bin.tts_results``: the TTS recipe's results (stage 10), with the
parameters counted on the models as espnet2 builds them."""
import argparse
import json
import sys

import yaml

from pinch.espnet.bin.bake import load_task
from pinch.export.checkpoint import load_state_dict
from pinch.offline import forbid_downloads
from pinch.scoring import tts_results


# The text encoder, what preset auto gates: Tacotron2's ``enc``; FastSpeech(2)'s and Transformer-TTS's ``encoder``.
ENCODER_PREFIXES = ("tts.enc.", "tts.encoder.")


def load(model_dir, weights):
    """The model's parameters and, for a baked model dir, the pruning its bake report names."""
    # Not espnet2's build_model_from_file, which unpickles the weights file.
    with open(model_dir / "config.yaml", encoding="utf-8") as f:
        model = load_task("tts").build_model(argparse.Namespace(**yaml.safe_load(f)))
    model.load_state_dict(load_state_dict(str(weights)), strict=True)
    report = model_dir / "sparsity.json"  # pinch.espnet.bin.bake writes it
    return model.named_parameters(), json.loads(report.read_text()) if report.is_file() else None


def main(cmd=None):
    forbid_downloads()  # espnet2's TTS task imports g2p_en, which fetches NLTK data
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tts_results.add_arguments(parser)
    args = parser.parse_args(cmd)
    try:
        tts_results.run(args, load, ENCODER_PREFIXES, "espnet")
    except (ValueError, OSError) as err:
        sys.exit(f"tts_results: {err}")


if __name__ == "__main__":
    main()
