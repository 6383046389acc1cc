"""``python -m pinch.nemo.bin.tts_results``: the NeMo TTS recipe's results (its scoring stage),
with the parameters counted on the models as NeMo restores them from their .nemo files.

``--models DIR:MODEL.nemo ...``, the dense model first. A compressed model's ``DIR`` holds
the report bake wrote beside its .nemo (``model.json``: the pruning block and the measured
sparsity); it is copied to ``DIR/sparsity.json`` in the form the shared results step reads
(method, target_sparsity, ...), as the ESPnet bake writes it.
"""
import argparse
import json
import sys
from pathlib import Path

from pinch.data.atomic import write_json_atomic
from pinch.scoring import tts_results

ENCODER_PREFIX = "fastpitch.encoder."  # FastPitch's text encoder (input_fft), what the preset gates


def named_parameters(model_dir, weights):
    from nemo.collections.tts.models.base import SpectrogramGenerator

    from pinch.nemo.archive import check_nemo_file

    model = SpectrogramGenerator.restore_from(str(check_nemo_file(weights)), map_location="cpu")
    write_sparsity(model_dir, weights)
    return list(model.named_parameters())


def write_sparsity(model_dir, weights):
    """``DIR/sparsity.json`` of a baked model (from bake's report beside its .nemo); None for a dense one."""
    report = Path(weights).with_suffix(".json")
    if not report.is_file():
        return None
    data = json.loads(report.read_text())
    pruning = data.get("pruning")
    if not pruning:  # a dense model's counts (pinch.nemo.bin.train writes them)
        return None
    summary = {"method": pruning["method"], "target_sparsity": pruning["target_sparsity"],
               "sparsity_gated": data["gated"], "sparsity_model": data["model"], "params": data["params"],
               "nonzero": data["nonzero"], "gated_params": data["gated_params"], "layers": data["layers"],
               "pruning": pruning, "nemo_file": str(weights)}
    out = Path(model_dir) / "sparsity.json"
    write_json_atomic(out, summary)
    return out


def main(cmd=None):
    from pinch.offline import forbid_downloads

    forbid_downloads()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tts_results.add_arguments(parser)
    args = parser.parse_args(cmd)
    try:
        tts_results.run(args, named_parameters, ENCODER_PREFIX, "nemo")
    except (ValueError, OSError) as err:
        sys.exit(f"tts_results: {err}")


if __name__ == "__main__":
    main()
