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
network, preprocessor and tokenizer (FastPitch: text tokenizer) come from the .nemo and
only ``train_ds``, ``validation_ds``, ``optim`` and ``pruning`` come from this config
(FastPitch's pitch statistics and sup_data_path live in its datasets' configs).
"""
import logging

import lightning.pytorch as pl
from nemo.core.config import hydra_runner
from nemo.utils.exp_manager import exp_manager
from nemo.utils.trainer_utils import resolve_trainer_cfg
from omegaconf import OmegaConf, open_dict

from pinch import PruningConfig
from pinch.nemo import nemo_config, pinch_class_for, pruning_config, save_nemo
from pinch.nemo.archive import write_counts
from pinch.nemo.mixin import PRUNING_KEY
from pinch.nemo.rnnt_loss import choose_rnnt_loss

# What a compression config contributes to a model restored from a dense .nemo.
FINETUNE_KEYS = ("train_ds", "validation_ds", "optim", "pruning")


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
    """A fresh model from ``cfg.model``, or the dense .nemo with this run's data/optim/pruning.

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
    with open_dict(model_cfg):
        for key in FINETUNE_KEYS:
            if key in cfg.model:
                # Resolved here: ${model.*} interpolations mean nothing inside the .nemo's config.
                model_cfg[key] = OmegaConf.to_container(cfg.model[key], resolve=True)
    model = cls.restore_from(init, override_config_path=model_cfg, trainer=trainer, map_location="cpu")
    model.setup_training_data(model.cfg.train_ds)
    model.setup_multiple_validation_data(model.cfg.validation_ds)
    return model


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
    trainer = pl.Trainer(**resolve_trainer_cfg(cfg.trainer))
    exp_manager(trainer, cfg.get("exp_manager"))
    model = build_model(cfg, trainer)
    trainer.fit(model, ckpt_path=cfg.get("ckpt_path"))
    pruned = getattr(model, "pruner", None) is not None
    if trainer.is_global_zero:
        out = save_nemo(model, cfg.output_nemo)
        if not pruned:
            write_counts(model, out)
        print(f"pinch.nemo: wrote {out}")


if __name__ == "__main__":
    main()
