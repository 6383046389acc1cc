"""Train (dense) or compress (with a pruning block) a NeMo ASR model or FastPitch, NeMo-script style.

The thin equivalent of NeMo's examples/asr/asr_ctc/speech_to_text_ctc_bpe.py (and its RNNT,
hybrid and TDT siblings) and speech_to_text_finetune.py, which the nemo_toolkit wheel does
not ship, and of examples/tts/fastpitch.py. The model class is the one ``model.target``
names (or the .nemo's own), never guessed from config keys (NeMo's FastPitch example
configs have no ``target``: add ``model.target: nemo.collections.tts.models.FastPitchModel``):

    # dense, from scratch
    python -m pinch.nemo.bin.train --config-path conf/nemo/asr --config-name conformer_ctc_bpe ...
    # one-pass compression of a dense .nemo; writes the gated model (bake it with
    # python -m pinch.nemo.bin.bake --in exp/sspg/gated.nemo --out exp/sspg/model.nemo)
    python -m pinch.nemo.bin.train --config-path conf/nemo/asr --config-name conformer_ctc_bpe_sspg \
        init_from_nemo_model=exp/dense/model.nemo pruning_config=conf/pruning/sspg.yaml \
        output_nemo=exp/sspg/gated.nemo

``pruning_config`` names a shared preset (conf/pruning/*.yaml, the file the ESPnet recipe
reads); keys under ``model.pruning`` override it. With ``init_from_nemo_model`` the
network, preprocessor, tokenizer (FastPitch: text tokenizer) and decoding come from the
.nemo, and its training settings as ``keep_model_config`` says (``finetune_settings``):

- ``keep_model_config=false`` (the recipe's own dense model): ``train_ds``, ``validation_ds``,
  ``optim`` and ``pruning`` come from this config, whole (FastPitch's pitch statistics and
  sup_data_path live in its datasets' configs);
- ``keep_model_config=true`` (an ASR model you hold, trained elsewhere): its own loaders and
  optimizer stay (batching, bucketing, workers, augmentor, durations, optimizer, scheduler);
  this config gives only the data (each loader's manifest_filepath, read as plain manifests),
  ``model.optim.lr``, the pruning block and the keys of those three sections set on the
  command line, and ``trainer.max_epochs`` is the pass's length.

Either way every key of the .nemo's config that the pass changes is logged, old -> new, and
written to ``finetune_overrides.yaml`` in the run's dir (``exp_manager.exp_dir``, where the ESPnet
recipe writes its own; exp_manager's log dir below it may carry a dated version folder).

A killed run resumes when rerun into the same ``exp_manager.exp_dir`` (the configs set
``resume_if_exists``): from its last whole checkpoint, weights, thresholds, ``pinch_steps``,
optimizer and schedule included (Lightning restores them over the .nemo's weights), or from
the start where the kill left none. A config error (a misspelt trainer or exp_manager key, no
``output_nemo``) stops before any work with one line that names the key.
"""
import copy
import inspect
import logging
import sys
import zipfile
from pathlib import Path

import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from nemo.core.config import hydra_runner
from nemo.utils.callbacks.nemo_model_checkpoint import NeMoModelCheckpoint
from nemo.utils.exp_manager import ExpManagerConfig, exp_manager, get_log_dir
from nemo.utils.trainer_utils import resolve_trainer_cfg
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from pinch import PruningConfig
from pinch.config_changes import OVERRIDES_FILE, changed_keys, log_changes
from pinch.nemo import nemo_config, pinch_class_for, pruning_config, save_nemo
from pinch.nemo.archive import write_counts
from pinch.nemo.mixin import PRUNING_KEY
from pinch.nemo.rnnt_loss import choose_rnnt_loss

# What a compression config contributes to a model restored from a dense .nemo.
FINETUNE_KEYS = ("train_ds", "validation_ds", "optim", "pruning")
# Where a loader's data is, and the value when this config names none: a held model
# (keep_model_config=true) reads this run's plain manifests, not its own shards or lhotse inputs.
DATA_SOURCE = {"manifest_filepath": None, "is_tarred": False, "tarred_audio_filepaths": None,
               "input_cfg": None, "shar_path": None, "cuts_path": None}


def merged_pruning(cfg):
    """``pruning_config`` file, overridden by the non-null keys of ``model.pruning``; None without either."""
    path = cfg.get("pruning_config")
    block = {}
    if path:
        block = PruningConfig.read_file(path)
    own = cfg.model.get("pruning")
    if own:
        block.update({k: v for k, v in OmegaConf.to_container(own, resolve=True).items() if v is not None})
    if not block:
        return None
    where = f" (from {path})" if path else ""
    try:
        pruning_config({"pruning": block})
    except ValueError as err:
        raise ValueError(f"{err}{where}") from None
    return block


def build_model(cfg, trainer):
    """A fresh model from ``cfg.model``, or the dense .nemo with this pass's training settings.

    ``rnnt_loss_impl`` (auto | nemo | torchaudio) picks who computes a transducer's RNN-T loss:
    auto is torchaudio's on a CPU (pinch.nemo.rnnt_loss says why); a model without one (CTC,
    FastPitch) is left as it is.
    """
    model = _build_model(cfg, trainer)
    choose_rnnt_loss(model, cfg.get("rnnt_loss_impl", "auto"), on_cpu=trainer.strategy.root_device.type == "cpu")
    return model


def _build_model(cfg, trainer):
    pruning = merged_pruning(cfg)
    with open_dict(cfg.model):
        cfg.model.pruning = pruning
        if pruning is None:
            cfg.model.pop("pruning")
    init = cfg.get("init_from_nemo_model")
    keep = cfg.get("keep_model_config", False)
    if keep and init is None:
        raise ValueError("keep_model_config=true needs init_from_nemo_model: the .nemo whose settings are kept")
    if init is None:
        cls = pinch_class_for(cfg.model.get("target"))
    else:
        init_cfg = nemo_config(init)
        if init_cfg.get(PRUNING_KEY) is not None:
            raise ValueError(f"{init}: a compressed model that still has its gates; bake it first "
                             "(python -m pinch.nemo.bin.bake) to start from it")
        cls = pinch_class_for(init_cfg.get("target"))
    cls = cls if pruning is not None else cls.nemo_class
    if init is None:
        return cls(cfg=cfg.model, trainer=trainer)
    model_cfg = cls.restore_from(init, return_config=True, map_location="cpu")
    held = {key: _plain(model_cfg[key]) for key in FINETUNE_KEYS if key in model_cfg}
    # Resolved here: ${model.*} interpolations mean nothing inside the .nemo's config.
    run = {key: _plain(cfg.model[key]) for key in FINETUNE_KEYS if key in cfg.model}
    settings = finetune_settings(held, run, keep, command_line_keys() if keep else ())
    with open_dict(model_cfg):
        model_cfg.update(settings)
    if trainer.is_global_zero:
        run_dir = Path(cfg.get("exp_manager", {}).get("exp_dir") or trainer.default_root_dir)
        log_changes(changed_keys(held, settings), run_dir / OVERRIDES_FILE)
    model = cls.restore_from(init, override_config_path=model_cfg, trainer=trainer, map_location="cpu")
    model.setup_training_data(model.cfg.train_ds)
    model.setup_multiple_validation_data(model.cfg.validation_ds)
    return model


def _plain(node):
    """A config node as plain Python, interpolations resolved."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def finetune_settings(held, run, keep_model_config, given=()):
    """The training settings of a pass from a .nemo: ``held`` (its config's train_ds,
    validation_ds and optim) with ``run``'s (this config's, pruning included).

    keep_model_config false (the recipe's own dense model, trained from this config) takes each
    of ``run``'s sections whole, as NeMo's speech_to_text_finetune.py does. true (a model you
    hold) keeps its own settings and takes from ``run`` only what the pass needs: the data
    (DATA_SOURCE of each loader), optim.lr, the pruning block, and the keys ``given`` on the
    command line (dotted, under train_ds, validation_ds or optim). The .nemo's own
    ``optim.sched.max_steps`` gives way to this pass's length, and NoamAnnealing, whose lr is a
    scale, gets the scale that peaks at that rate. A section the .nemo lacks is ``run``'s.
    """
    if not keep_model_config:
        return {**held, **{key: run[key] for key in FINETUNE_KEYS if key in run}}
    out = copy.deepcopy(held)
    for section in FINETUNE_KEYS[:3]:
        if not out.get(section):
            out[section] = copy.deepcopy(run[section])
    for section in ("train_ds", "validation_ds"):
        for key, default in DATA_SOURCE.items():
            value = run[section].get(key, default)
            if key in out[section] or value != default:
                out[section][key] = value
    out["optim"]["lr"] = run["optim"]["lr"]
    sched = out["optim"].get("sched")
    if sched and sched.get("max_steps") is not None:
        sched["max_steps"] = None  # NeMo then counts this pass's steps from the trainer
    for key in given:
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(_select(run, key))
    if "pruning" in run:
        out["pruning"] = run["pruning"]
    sched = out["optim"].get("sched")
    if sched and sched.get("name") == "NoamAnnealing":
        out["optim"]["lr"] = noam_scale(out["optim"]["lr"], sched)
    return out


def _select(tree, key):
    for part in key.split("."):
        tree = tree[part]
    return tree


def noam_scale(rate, sched):
    """NoamAnnealing's ``optim.lr`` for the peak learning rate ``rate``: it multiplies lr by
    d_model**-0.5 * min(step**-0.5, step * warmup_steps**-1.5), which peaks at step warmup_steps."""
    if sched.get("warmup_steps") is None and sched.get("warmup_ratio") is not None:
        raise ValueError("model.optim.sched: NoamAnnealing with warmup_ratio scales lr by a peak known only "
                         "once training starts; give ++model.optim.sched.warmup_steps=N "
                         "++model.optim.sched.warmup_ratio=null")
    warmup = max(sched.get("warmup_steps") or 1, 1)
    scale = rate * (sched["d_model"] * warmup) ** 0.5
    logging.getLogger("pinch").info("pinch.nemo: optim.lr %s: NoamAnnealing's scale for a peak rate of %s "
                                    "(at step %d)", scale, rate, warmup)
    return scale


def command_line_keys():
    """The keys under model.train_ds, validation_ds and optim that this run's command line sets
    (Hydra's overrides, ``model.`` dropped); none outside a Hydra run."""
    if not HydraConfig.initialized():
        return []
    keys = []
    for override in OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task)):
        root, _, key = override.key_or_group.partition(".")
        if root == "model" and key.split(".")[0] in FINETUNE_KEYS[:3] and not override.is_delete():
            keys.append(key)
    return keys


def build_trainer(cfg):
    """The Lightning trainer of ``cfg.trainer`` under exp_manager, set to resume a killed run."""
    kwargs = resolve_trainer_cfg(cfg.trainer)
    unknown = sorted(set(kwargs) - set(inspect.signature(pl.Trainer.__init__).parameters))
    if unknown:
        raise ValueError(f"trainer.{unknown[0]}: not a Lightning Trainer argument")
    trainer = pl.Trainer(**kwargs)
    manager = exp_manager_config(cfg)
    if manager is not None and manager.resume_if_exists:
        settle_last_checkpoint(checkpoint_dir(trainer, manager))
    exp_manager(trainer, manager)
    return trainer


def exp_manager_config(cfg):
    """``cfg.exp_manager`` on NeMo's schema (None without one); a misspelt key named."""
    block = cfg.get("exp_manager")
    if block is None:
        return None
    try:
        return OmegaConf.merge(OmegaConf.structured(ExpManagerConfig), OmegaConf.to_container(block, resolve=True))
    except OmegaConfBaseException as err:
        raise ValueError(f"exp_manager.{config_error(err)}") from None


def checkpoint_dir(trainer, manager):
    """Where exp_manager looks for the last checkpoint to resume from (NeMo's own get_log_dir)."""
    if manager.checkpoint_callback_params.dirpath:
        return Path(manager.checkpoint_callback_params.dirpath)
    log_dir, *_ = get_log_dir(trainer, exp_dir=manager.exp_dir, name=manager.name, version=manager.version,
                              explicit_log_dir=manager.explicit_log_dir,
                              use_datetime_version=manager.use_datetime_version,
                              resume_if_exists=manager.resume_if_exists)
    return Path(log_dir) / "checkpoints"


def settle_last_checkpoint(folder):
    """Leave exp_manager at most one last checkpoint, a whole one, to resume from.

    NeMo marks a checkpoint ``-unfinished`` while it saves it; exp_manager refuses to resume
    from two last checkpoints (a kill after writing the new one, before deleting the old one) or
    from a single marked one, and passes over a marked one for an older one. Lightning writes a
    checkpoint to a temporary file and moves it into place: a marked one is whole unless that
    move was a copy across file systems that the kill cut short (no zip directory at its end).
    The newest whole one is kept, unmarked; the rest are deleted, so a checkpoint cut short is
    never resumed from. Every process of a data-parallel run does this before exp_manager
    looks: the same files, the same choice.
    """
    lasts = sorted(folder.rglob("*last.ckpt"), key=lambda p: (_mtime(p), p.name))
    whole = [p for p in lasts if zipfile.is_zipfile(p)]
    for path in lasts:
        if path not in whole[-1:]:
            why = "an older last checkpoint" if path in whole else "a checkpoint cut short by a kill"
            logging.getLogger("pinch").warning("pinch.nemo: deleting %s (%s; not resumed from)", path, why)
            path.unlink(missing_ok=True)
        NeMoModelCheckpoint.format_checkpoint_unfinished_marker_path(path).unlink(missing_ok=True)


def _mtime(path):
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # another process of the run deleted it meanwhile
        return 0.0


def config_error(err):
    """An OmegaConf error on one line: the key, then what is wrong with it."""
    what = str(getattr(err, "msg", None) or err).splitlines()[0]
    key = getattr(err, "full_key", None)
    return f"{key}: {what}" if key else what


@hydra_runner(config_path=None, config_name=None)
def main(cfg):
    # pinch's own messages (e.g. the update at which sspg first reached its target) in train.log
    # beside NeMo's, once: not also through the root handler Hydra may have set up.
    pinch_log = logging.getLogger("pinch")
    if not pinch_log.handlers:
        pinch_log.addHandler(logging.StreamHandler())
        pinch_log.setLevel(logging.INFO)
        pinch_log.propagate = False
    pl.seed_everything(cfg.get("seed", 0), workers=True)
    try:
        output = cfg.output_nemo  # asked first: a run without one fails now, not after training
        trainer = build_trainer(cfg)
        model = build_model(cfg, trainer)
    except OmegaConfBaseException as err:
        sys.exit(f"pinch.nemo.bin.train: error: {config_error(err)}")
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"pinch.nemo.bin.train: error: {err}")
    trainer.fit(model, ckpt_path=cfg.get("ckpt_path"))
    pruned = getattr(model, "pruner", None) is not None
    if trainer.is_global_zero:
        out = save_nemo(model, output)
        if not pruned:
            write_counts(model, out)
        print(f"pinch.nemo: wrote {out}")


if __name__ == "__main__":
    main()
