"""Bake a compressed (gated) .nemo into a plain NeMo .nemo.

The input is what ``pinch.nemo.bin.train`` writes after compression: a pinch model
class with thresholds and ``pinch_steps`` in its weights. The output names the
unmodified NeMo class, has no pruning block, and holds the masked weights, so NeMo runs it
without pinch (``ASRModel.restore_from`` + ``transcribe()``, ``FastPitchModel.restore_from``
+ ``generate_spectrogram()``). A JSON report of the measured sparsity (per gated matrix,
over the gated weights, over the model) is written next to it, and the download form
``<out>.gz`` (pinch.deploy.download): the .nemo gzip-compressed, so its zeros cost little to
fetch. NeMo's ``restore_from`` opens it as it is; ``gunzip`` gives back the .nemo byte for byte.
The .nemo itself stays the uncompressed tar NeMo's ``save_to`` writes, which every NeMo
reader opens (``nemo.utils.model_utils.load_config`` reads no gzip tar).

    python -m pinch.nemo.bin.bake --in exp/sspg/gated.nemo --out exp/sspg/model.nemo
"""
import argparse
import dataclasses
import sys
from pathlib import Path

from pinch.data.atomic import write_json_atomic


def download_file(nemo):
    """The download form bake writes beside ``nemo``: the same .nemo, gzip-compressed."""
    return nemo.with_name(nemo.name + ".gz")


def bake_file(src, out):
    """Write the baked ``out`` (.nemo), ``out`` with .json (the sparsity report) and ``out`` + .gz
    (its download form)."""
    from omegaconf import OmegaConf

    from pinch.deploy.download import write_download
    from pinch.nemo import bake_nemo_model, save_nemo
    from pinch.nemo.archive import restore_gated
    from pinch.pruner import STEP_BUFFER

    model = restore_gated(src)
    if model is None:
        raise ValueError(f"{src}: its config has no 'pruning' block; nothing to bake (is it already plain NeMo?)")
    pruning = OmegaConf.to_container(model.cfg.pruning, resolve=True)  # before bake drops the block
    report = model.pruner.sparsity()
    steps = int(getattr(model, STEP_BUFFER))  # before bake removes it
    bake_nemo_model(model)
    out = save_nemo(model, out)
    download = download_file(out)
    summary = {"source": str(src), "nemo_file": str(out), "pruning": pruning, "steps": steps,
               "download_file": str(download), "download_bytes": write_download(out, download)}
    summary.update(dataclasses.asdict(report))
    write_json_atomic(out.with_suffix(".json"), summary)
    return out, report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.bake", description=__doc__.split("\n")[0])
    parser.add_argument("--in", dest="src", required=True, help="gated .nemo written by compression")
    parser.add_argument("--out", required=True, help="plain NeMo .nemo to write")
    args = parser.parse_args(argv)
    if Path(args.src).resolve() == Path(args.out).resolve():
        parser.error("--out must differ from --in (the gated model is kept)")
    try:
        out, report = bake_file(args.src, args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.nemo.bin.bake: error: {err}", file=sys.stderr)
        return 1
    print(report.table())
    print(f"pinch.nemo: gated sparsity {report.gated:.4f}, {report.nonzero:,} of {report.params:,} "
          f"parameters non-zero -> {out} ({out.stat().st_size / 1e6:.2f} MB; download "
          f"{download_file(out).stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
