"""Wire a pinch Pruner into an espnet2 model and optimizer without changing either class.

espnet2's Trainer computes ``loss, stats, weight = model(**batch)`` and steps the
optimizer itself. A forward hook on the model adds the penalty to the loss and the
pruning scalars to the stats (so they reach the training log and TensorBoard); an
optimizer step post-hook advances the schedule. The post-hook fires only when
``optimizer.step()`` really runs: once per ``accum_grad`` batches, never on the steps
the Trainer or AMP's GradScaler skip for non-finite gradients.
"""
import torch
from espnet2.torch_utils.device_funcs import force_gatherable

import pinch


def attach_pruner(model, config, total_steps):
    """Gate ``model`` per ``config`` (a PruningConfig) and hook it into espnet2's forward."""
    pruner = pinch.Pruner.from_config(model, config, total_steps=total_steps)
    model.register_forward_hook(_add_penalty_and_stats)
    return pruner


def step_with_optimizer(pruner, optimizer):
    """Advance the pruning schedule after every real update of ``optimizer``."""
    optimizer.register_step_post_hook(lambda opt, args, kwargs: pruner.step())


def _add_penalty_and_stats(model, args, output):
    """Training: loss += penalty. Validation: loss stays the task loss, so
    ``valid.loss`` still ranks checkpoints (best/averaged models) as for a dense run."""
    if isinstance(output, dict):
        raise TypeError("pinch supports espnet2 models that return (loss, stats, weight)")
    loss, stats, weight = output
    pruner = model._pinch_pruner
    penalty = pruner.penalty()
    stats = dict(stats)
    if model.training:
        loss = loss + penalty
        stats["loss"] = loss.detach()
    stats["loss_sparsity"] = penalty.detach()
    stats.update({k: torch.tensor(float(v)) for k, v in pruner.stats().items()})
    return force_gatherable((loss, stats, weight), loss.device)
