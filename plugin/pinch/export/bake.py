"""Write masks into the weights and remove every trace of pinch from a model."""
import torch

from pinch.gates import iter_gates
from pinch.gates.gate import THRESHOLD_SUFFIX
from pinch.methods.sspg import ETA_BUFFER, common_threshold_scale
from pinch.pruner import STEP_BUFFER

PINCH_BUFFERS = (STEP_BUFFER, ETA_BUFFER)


def bake(model):
    """Masks applied, gates, thresholds and pinch buffers removed; returns ``model``.

    Its state_dict then has exactly the keys of the unmodified model class.
    """
    pruner = model.__dict__.pop("_pinch_pruner", None)
    if pruner is not None:
        pruner._start_hook.remove()
        if pruner.distiller is not None:
            pruner.distiller.remove()
        pruner.method.finish()
    for _, gate in list(iter_gates(model)):
        gate.remove(apply_mask=True)
    for name in PINCH_BUFFERS:
        model._buffers.pop(name, None)
    return model


@torch.no_grad()
def bake_state_dict(state_dict, target_sparsity=None):
    """``bake`` on a plain state dict (unstructured gates), e.g. after checkpoint averaging.

    Averaging thresholds and weights of several checkpoints moves the sparsity off the
    target; with ``target_sparsity`` all thresholds are first scaled by one common factor
    (keeping the learned per-layer allocation) so the result lands on it.
    """
    gated = [k[: -len(THRESHOLD_SUFFIX)] for k in state_dict if k.endswith(THRESHOLD_SUFFIX)]
    missing = [k for k in gated if k not in state_dict]
    if missing:
        raise ValueError(f"thresholds without their weights in the state dict: {missing}")
    thresholds = {k: state_dict[k + THRESHOLD_SUFFIX].float() for k in gated}
    if target_sparsity is not None and gated:
        scale = common_threshold_scale(
            [state_dict[k].float().reshape(-1, 1) for k in gated], [thresholds[k] for k in gated], target_sparsity
        )
        thresholds = {k: t * scale for k, t in thresholds.items()}
    out = {}
    for key, value in state_dict.items():
        if key.endswith(THRESHOLD_SUFFIX) or key.split(".")[-1] in PINCH_BUFFERS:
            continue
        if key in thresholds:
            value = value * (value.float().square() >= thresholds[key].square()).to(value.dtype)
        out[key] = value
    return out
