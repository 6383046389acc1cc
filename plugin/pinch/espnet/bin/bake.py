"""``python -m pinch.espnet.bin.bake``: a gated espnet2 checkpoint -> a plain ESPnet model dir.

The output dir holds ``config.yaml`` without pinch's keys and ``model.pth`` with the masks
written into the weights, so unmodified ``espnet2.bin.asr_inference`` (``tts_inference`` for
``--task tts``) runs it with no pinch import. Checkpoints are read as data (weights-only), never unpickled as objects. The
weights are checked by loading them strictly into the model class that espnet2 itself
builds from that config. ``sparsity.json`` records what was measured.
"""
import argparse
import json
import logging
import sys
from pathlib import Path

import torch
import yaml
from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

import pinch
import pinch.espnet.tasks.asr  # noqa: F401  (pinch's encoders, for configs that use them)
from pinch.data.atomic import atomic_output_dir
from pinch.export.checkpoint import load_state_dict
from pinch.espnet.choices import PRUNING_KEYS, resolve_pruning
from pinch.gates.gate import THRESHOLD_SUFFIX
from pinch.targets import select_targets
from pinch.sparsity import report_from_masks

# The unmodified espnet2 task that will read the baked dir, by pinch task name.
TASKS = {"asr": "espnet2.tasks.asr:ASRTask", "asr_transducer": "espnet2.tasks.asr_transducer:ASRTransducerTask",
         "tts": "espnet2.tasks.tts:TTSTask"}

# Averaging a few checkpoints moves sparsity by about a percent; a larger gap means the
# run itself missed the target, which rescaling would hide (it would prune untrained).
MAX_RESCALE_GAP = 0.05


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="asr")
    parser.add_argument("--train_config", required=True, help="config.yaml of the pruning run")
    parser.add_argument("--model_file", required=True, help="checkpoint (e.g. valid.loss.ave.pth)")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument(
        "--target_sparsity",
        type=float,
        default=None,
        help="Rescale sspg thresholds to land exactly on this sparsity (for averaged checkpoints; "
        "both figures are logged and kept in sparsity.json). The recipes bake the pass's last epoch "
        "and never rescale",
    )
    parser.add_argument(
        "--mask_from",
        default=None,
        help="Magnitude methods: take the zeros of this checkpoint (the final epoch) into an "
        "averaged model_file, whose averaged weights are non-zero where any epoch's were",
    )
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing out_dir")
    return parser


def load_task(name):
    module, cls = TASKS[name].split(":")
    return getattr(__import__(module, fromlist=[cls]), cls)


def gated_model(task, config, state_dict):
    """The model a pruning run trained, gates included, with ``state_dict`` (thresholds too) loaded."""
    plain = {k: v for k, v in config.items() if k not in PRUNING_KEYS}
    model = load_task(task).build_model(argparse.Namespace(**plain))
    pruner = pinch.Pruner.from_config(model, resolve_pruning(argparse.Namespace(**{**config, "pruning_config": None})),
                                      total_steps=1)
    model.load_state_dict(state_dict, strict=True)
    return model, pruner


def bake_model_dir(task, train_config, model_file, out_dir, target_sparsity=None, overwrite=False,
                   mask_from=None):
    """Write the baked model dir atomically; returns the sparsity report as a dict."""
    train_config, model_file, out_dir = Path(train_config), Path(model_file), Path(out_dir)
    for path in (train_config, model_file) + ((Path(mask_from),) if mask_from else ()):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (run the compression stage first)")
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass --overwrite to replace it")
    with train_config.open(encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if not config.get("pruning"):
        raise ValueError(f"{train_config}: no 'pruning' method; nothing to bake")
    plain = {k: v for k, v in config.items() if k not in PRUNING_KEYS}

    gated_sd = load_state_dict(str(model_file))  # data only: nothing in the file is executed
    final = load_state_dict(str(mask_from)) if mask_from else None
    gated_names = [k[: -len(THRESHOLD_SUFFIX)] for k in gated_sd if k.endswith(THRESHOLD_SUFFIX)]
    structured = (config.get("pruning_conf") or {}).get("granularity") == "structured"
    group_report = None
    if structured:  # group masks need the gates' layouts: bake the gated model itself
        gated, pruner = gated_model(task, config, gated_sd)
        group_report = pruner.sparsity()  # what shrink removes, not the zeros bake writes
        baked = pinch.bake(gated).state_dict()
    else:
        baked = pinch.bake_state_dict(gated_sd)
    trained = None  # the gated weights' sparsity as the checkpoint's own hard masks have it
    if gated_names and not structured:
        trained = 1.0 - sum(int((baked[n] != 0).sum()) for n in gated_names) / sum(
            baked[n].numel() for n in gated_names)
    if target_sparsity is not None and trained is not None:
        if abs(trained - target_sparsity) <= MAX_RESCALE_GAP:
            baked = pinch.bake_state_dict(gated_sd, target_sparsity=target_sparsity)
            print(f"bake: thresholds rescaled: sparsity {trained:.4f} as trained -> {target_sparsity:.4f} baked")
        else:
            logging.warning(
                f"{model_file} has sparsity {trained:.4f}, too far from the target "
                f"{target_sparsity} to rescale (> {MAX_RESCALE_GAP}); baking it as it is"
            )

    model = load_task(task).build_model(argparse.Namespace(**plain))
    model.load_state_dict(baked, strict=True)  # exactly the unmodified class's keys
    # Gated tensors: the zeros bake wrote; magnitude methods leave no thresholds, so their
    # targets are found again from the preset, as the pruning run did.
    if not gated_names:
        gated_names = [t.qualified_name for t in select_targets(
            model, config["pruning_conf"].get("preset"), config["pruning_conf"].get("targets"))]
        if final is not None:
            for n in gated_names:
                baked[n] = baked[n] * (final[n] != 0).to(baked[n].dtype)
            model.load_state_dict(baked, strict=True)
    elif mask_from:
        raise ValueError("--mask_from is for magnitude methods; sspg thresholds define the masks")
    report = group_report or report_from_masks(
        ((n, baked[n] != 0) for n in gated_names), model.named_parameters()
    )
    summary = {
        "method": config["pruning"],
        "target_sparsity": config["pruning_conf"].get("target_sparsity"),
        "preset": config["pruning_conf"].get("preset", "auto"),
        "sparsity_gated": report.gated,
        # as the pass left it: differs from sparsity_gated only where --target_sparsity rescaled
        "sparsity_trained": report.gated if trained is None else trained,
        "sparsity_model": report.model,
        "params": report.params,
        "nonzero": report.nonzero,
        "gated_params": report.gated_params,
        "layers": report.layers,
    }

    with atomic_output_dir(out_dir) as tmp:
        torch.save(baked, tmp / "model.pth")
        with (tmp / "config.yaml").open("w", encoding="utf-8") as f:
            yaml_no_alias_safe_dump(plain, f, indent=4, sort_keys=False)
        (tmp / "sparsity.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    try:
        summary = bake_model_dir(
            args.task, args.train_config, args.model_file, args.out_dir,
            target_sparsity=args.target_sparsity, overwrite=args.overwrite, mask_from=args.mask_from,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        sys.exit(f"bake: {err}")
    print(
        f"baked {args.model_file} -> {args.out_dir}: sparsity {summary['sparsity_gated']:.4f} "
        f"of gated weights, {summary['sparsity_model']:.4f} of the model "
        f"({summary['nonzero']:,} of {summary['params']:,} parameters non-zero)"
    )


if __name__ == "__main__":
    main()
