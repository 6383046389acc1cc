"""``python -m pinch.nemo.bin.tts_results``: the NeMo TTS recipe's results (its scoring stage),
with the parameters counted on the models as NeMo restores them from their .nemo files.

``--models DIR:MODEL.nemo ...``, the dense model first.
"""
import argparse
import json
import sys
from pathlib import Path

from pinch.scoring import tts_results

ENCODER_PREFIX = "fastpitch.encoder."  # FastPitch's text encoder (input_fft), what the preset gates


def load(model_dir, weights):
    """The model as NeMo restores it, and for a compressed one the pruning bake's report
    beside its .nemo names (``model.json``: a dense model's report has no pruning block)."""
    from nemo.collections.tts.models.base import SpectrogramGenerator

    from pinch.nemo.archive import check_nemo_file

    model = SpectrogramGenerator.restore_from(str(check_nemo_file(weights)), map_location="cpu")
    report = Path(weights).with_suffix(".json")
    pruning = None
    if report.is_file():
        baked = json.loads(report.read_text())
        if baked.get("pruning"):
            pruning = {**baked["pruning"], "gated_params": baked.get("gated_params")}
    return list(model.named_parameters()), pruning


def main(cmd=None):
    from pinch.offline import forbid_downloads

    forbid_downloads()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tts_results.add_arguments(parser)
    args = parser.parse_args(cmd)
    try:
        tts_results.run(args, load, ENCODER_PREFIX, "nemo")
    except (ValueError, OSError) as err:
        sys.exit(f"tts_results: {err}")


if __name__ == "__main__":
    main()
