"""Wire a pinch Pruner into an espnet2 model and optimizer without changing either class.

espnet2's Trainer computes ``loss, stats, weight = model(**batch)`` and steps the
optimizer itself. A forward hook on the model adds the penalty (and, with distillation,
``loss_distill``) to the loss and the pruning scalars to the stats (so they reach the
training log and TensorBoard); an optimizer step post-hook advances the schedule. The
post-hook fires only when ``optimizer.step()`` really runs: once per ``accum_grad``
batches, never on the steps the Trainer or AMP's GradScaler skip for non-finite gradients.
"""
import torch
from espnet2.torch_utils.device_funcs import force_gatherable

import pinch
from pinch.distill import DistillSites, encoder_name


def attach_pruner(model, config, total_steps):
    """Gate ``model`` per ``config`` (a PruningConfig) and hook it into espnet2's forward."""
    sites = distill_sites(model) if config.distill_weight > 0 else None
    pruner = pinch.Pruner.from_config(model, config, total_steps=total_steps, distill_sites=sites)
    model.register_forward_hook(_add_penalty_and_stats)
    return pruner


def distill_sites(model):
    """The teacher runs the encoder (and a postencoder), then the CTC head on their output: the
    output distilled is ``ctc.ctc_lo``'s per-frame logits in the forward's first CTC call (the
    final layer's; intermediate CTC is not distilled). Where the training forward runs no
    ``ctc`` (transducers, ``ctc_weight: 0``, TTS) only hidden layers can be distilled."""
    entries = (encoder_name(model),)
    if getattr(model, "postencoder", None) is not None:
        entries += ("postencoder",)
    if hasattr(getattr(model, "ctc", None), "ctc_lo") and getattr(model, "ctc_weight", 0.0) != 0.0:
        return DistillSites(entries + ("ctc",), "ctc.ctc_lo")
    return DistillSites(entries, None)


def step_with_optimizer(pruner, optimizer):
    """Advance the pruning schedule after every real update of ``optimizer``."""
    optimizer.register_step_post_hook(lambda opt, args, kwargs: pruner.step())


def _add_penalty_and_stats(model, args, output):
    """Training: loss += distillation + penalty. Validation: loss stays the task loss, so
    ``valid.loss`` still ranks checkpoints (best/averaged models) as for a dense run."""
    if isinstance(output, dict):
        raise TypeError("pinch supports espnet2 models that return (loss, stats, weight)")
    loss, stats, weight = output
    pruner = model._pinch_pruner
    penalty = pruner.penalty()
    stats = dict(stats)
    if model.training:
        distilled = pruner.distillation()
        if distilled is not None:
            loss = loss + distilled[0]
            stats.update(distilled[1])
        loss = loss + penalty
        stats["loss"] = loss.detach()
    stats["loss_sparsity"] = penalty.detach()
    stats.update({k: torch.tensor(float(v)) for k, v in pruner.stats().items()})
    return force_gatherable((loss, stats, weight), loss.device)
