"""What a NeMo model class needs to compress itself while Lightning trains it.

The pruning block lives in the model config (``model.pruning``), so it travels inside
every checkpoint and .nemo written during compression. The gates are attached in
``setup("fit")``: Lightning calls it after the trainer knows how many optimizer updates
the run has (``estimated_stepping_batches``, which counts ``accumulate_grad_batches``),
before it restores a checkpoint (so thresholds and ``pinch_steps`` load into the gates)
and before ``configure_optimizers`` (so the optimizer owns the thresholds).
"""
import torch
from nemo.collections.asr.losses import CTCLoss
from omegaconf import DictConfig, OmegaConf

import pinch
from pinch.distill import DistillSites, encoder_name
from pinch.optim import thresholds_without_weight_decay

PRUNING_KEY = "pruning"
# The teacher's copies of NeMo modules carry the student's model_guid, under which interCTC
# registers encoder outputs (reset on the student's modules only): under this one, they do not.
TEACHER_GUID = "pinch-distill-teacher"


def pruning_config(model_cfg):
    """The ``model.pruning`` block as a PruningConfig, or None; errors name the key."""
    block = model_cfg.get(PRUNING_KEY) if model_cfg is not None else None
    if block is None:
        return None
    if not isinstance(block, (DictConfig, dict)):
        raise ValueError(f"model.{PRUNING_KEY} must be a mapping of pruning keys, got {block!r}")
    data = OmegaConf.to_container(block, resolve=True) if isinstance(block, DictConfig) else dict(block)
    try:
        return pinch.PruningConfig.from_dict(data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"model.{PRUNING_KEY}: {err}") from None


def distill_sites(model):
    """The teacher runs the encoder on the student's encoder input, then the CTC head on its
    output: ``ctc_decoder`` of hybrids (while ``ctc_loss_weight > 0``), ``decoder`` of models
    whose loss is CTC; the output distilled is that head's log-probs. Transducer joints (frames
    x tokens x vocabulary per utterance) and attention decoders: hidden layers only."""
    entries = (encoder_name(model),)
    if isinstance(getattr(model, "ctc_loss", None), CTCLoss) and getattr(model, "ctc_loss_weight", 0) > 0:
        return DistillSites(entries + ("ctc_decoder",), "ctc_decoder")
    if isinstance(getattr(model, "loss", None), CTCLoss):
        return DistillSites(entries + ("decoder",), "decoder")
    return DistillSites(entries, None)


class PinchMixin:
    """Adds the penalty (and distillation, ``pinch.distill``) to the training loss, logs the
    pruning scalars, steps the schedule.

    Mixed in before a NeMo ASR model or TTS spectrogram generator class (``nemo_class``).
    The penalty joins the loss that ``training_step`` returns, which every such class has,
    rather than an auxiliary-loss hook, which not all have (CTC, RNNT, TDT and hybrid steps
    call ``add_auxiliary_losses``; the multitask AED step and FastPitch's, which returns a
    bare loss tensor, do not). NeMo's logged task loss (``train_loss``, FastPitch's
    ``t_loss``) stays the task loss and ``loss_sparsity`` (``loss_distill``) is logged beside it.
    """

    nemo_class = None  # the unmodified NeMo class a baked model is saved as

    def __init__(self, cfg, trainer=None):
        # Validate before NeMo builds the network: a typo fails in a second, not after it.
        self._pinch_config = pruning_config(cfg)
        super().__init__(cfg=cfg, trainer=trainer)

    @property
    def pruner(self):
        """The attached pinch.Pruner, or None before ``setup('fit')`` / without pruning."""
        return self.__dict__.get("_pinch_pruner")

    def attach_pruner(self, total_steps):
        """Gate the model per ``model.pruning``; the optimizer must be built after this."""
        config = self._pinch_config
        if config is None:
            raise ValueError(f"{type(self).__name__} has no model.{PRUNING_KEY} block to attach")
        sites = distill_sites(self) if config.distill_weight > 0 else None
        pruner = pinch.Pruner.from_config(self, config, total_steps=total_steps, distill_sites=sites)
        if pruner.distiller is not None:
            for module in pruner.distiller.teacher.modules():
                if hasattr(module, "model_guid"):
                    module.model_guid = TEACHER_GUID
        return pruner

    def setup(self, stage=None):
        super().setup(stage)
        if stage == "fit" and self._pinch_config is not None and self.pruner is None:
            total = self.trainer.estimated_stepping_batches
            if total == float("inf"):
                raise ValueError("pruning needs a run of known length: set trainer.max_steps (trainer.max_epochs "
                                 "counts no steps for a loader without a length, such as lhotse's)")
            self.attach_pruner(int(total))

    def setup_optimizer_param_groups(self):
        """NeMo's groups (``optim_param_groups`` included), thresholds without weight decay."""
        super().setup_optimizer_param_groups()
        if self.pruner is not None and self._optimizer_param_groups is not None:
            self._optimizer_param_groups = thresholds_without_weight_decay(self._optimizer_param_groups, self)

    def training_step(self, batch, batch_nb):
        pruner = self.pruner
        if pruner is not None:
            # NeMo's training_step calls self.forward, not self(): the pruner's pre-forward hook
            # never fires, and a one-shot method started later (at the penalty) would zero
            # weights that the step's graph already holds.
            pruner.start()
        out = super().training_step(batch, batch_nb)
        if pruner is None:
            return out
        penalty = pruner.penalty()
        stats = {k: float(v) for k, v in pruner.stats().items()}
        stats["loss_sparsity"] = float(penalty.detach())
        added = penalty
        distilled = pruner.distillation()
        if distilled is not None:
            added = distilled[0] + penalty
            stats.update({k: float(v) for k, v in distilled[1].items()})
        # The pruning scalars are the same on every rank (thresholds are all-reduced like any
        # parameter); the distillation terms, like NeMo's train_loss, are each rank's own.
        self.log_dict(stats, on_step=True, on_epoch=False, prog_bar=False, batch_size=1)
        if isinstance(out, dict) and "loss" in out:
            return {**out, "loss": out["loss"] + added}
        if isinstance(out, torch.Tensor):
            return out + added
        raise TypeError(f"{type(self).__name__}.training_step returned {type(out).__name__}, not a loss "
                        "or a dict with 'loss': pinch cannot add the pruning penalty to it")

    def optimizer_step(self, *args, **kwargs):
        """Lightning calls this once per real update, never on accumulation micro-batches."""
        super().optimizer_step(*args, **kwargs)
        if self.pruner is not None:
            self.pruner.step()
