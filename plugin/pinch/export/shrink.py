"""Turn structured masks into a smaller dense model: fewer FFN units, heads and conv channels."""
import re

import torch
from torch import nn

from pinch.export.bake import bake


def shrink(model):
    """Remove the FFN units, attention heads and convolution channels that structured gates pruned.

    The result is a dense model of the same classes, with smaller matrices, fewer heads and
    narrower convolution modules, whose outputs equal the masked model's in eval mode (a
    pruned conv channel leaves a constant behind its BatchNorm's running statistics, which
    goes into ``pointwise2``'s bias). A gate that pruned every group keeps one, zeroed, so
    no tensor is empty; so does a pruned block (``block_gates``), whose output matrix and
    bias bake zeroes: the branch then adds nothing. Returns ``model``.
    """
    pruner = model.__dict__.get("_pinch_pruner")
    if pruner is None or pruner.config.granularity != "structured":
        raise ValueError("shrink needs a model gated by a structured sspg Pruner (granularity: structured)")
    keeps = {id(g.module): _kept_groups(g) for g in pruner.method.gates}
    blocks = [(kind, block) for spec in pruner.presets
              for kind, found in (("ffn", spec.ffn), ("attention", spec.attention), ("conv", spec.conv))
              for block in found]
    bake(model)
    with torch.no_grad():
        for name, module in model.named_modules():
            for kind, block in blocks:
                if not re.fullmatch(block.parent, name):
                    continue
                if kind == "ffn":
                    keep = keeps[id(getattr(module, block.inner))]
                    _take_rows(getattr(module, block.inner), keep)
                    _take_columns(getattr(module, block.outer), keep)
                elif kind == "attention":
                    _shrink_heads(module, block, keeps[id(getattr(module, block.value))])
                elif id(getattr(module, block.depthwise)) in keeps:  # ungated where its norm is not a BatchNorm
                    _shrink_channels(module, block, keeps[id(getattr(module, block.depthwise))])
    return model


def _kept_groups(gate):
    keep = gate.kept_groups().clone()
    if not keep.any():
        keep[0] = True  # bake zeroes it, so the outputs stay the masked model's
    return keep.nonzero().reshape(-1)


def _shrink_heads(module, att, heads):
    d_k = getattr(module, att.head_dim_attr)
    rows = (heads[:, None] * d_k + torch.arange(d_k)).reshape(-1)
    for part in (att.query, att.key, att.value, att.position):
        if part and isinstance(getattr(module, part, None), nn.Module):
            _take_rows(getattr(module, part), rows)
    _take_columns(getattr(module, att.out), rows)
    for pname in att.head_params:
        param = getattr(module, pname, None)
        if isinstance(param, nn.Parameter):
            setattr(module, pname, nn.Parameter(param.detach()[heads].clone()))
    setattr(module, att.heads_attr, len(heads))


def _shrink_channels(module, conv, keep):
    """A Conformer conv module's kept channels: GLU halves, depthwise conv, norm, pointwise2 inputs."""
    depthwise, norm = getattr(module, conv.depthwise), getattr(module, conv.norm)
    pointwise1, pointwise2 = getattr(module, conv.pointwise1), getattr(module, conv.pointwise2)
    channels = depthwise.weight.shape[0]
    dropped = torch.ones(channels, dtype=torch.bool)
    dropped[keep] = False
    if dropped.any():
        if pointwise2.bias is None:
            raise ValueError(f"cannot shrink {type(module).__name__}: {conv.pointwise2} has no bias to take "
                             "the pruned channels' constant output")
        # A pruned channel's depthwise output is 0 (weight and bias masked): after the norm's
        # running statistics and the activation it is a constant, whatever the input.
        constant = getattr(module, conv.activation)(
            (-norm.running_mean[dropped] / torch.sqrt(norm.running_var[dropped] + norm.eps))
            * (norm.weight[dropped] if norm.affine else 1) + (norm.bias[dropped] if norm.affine else 0))
        pointwise2.bias.add_(pointwise2.weight[:, dropped].sum(dim=-1) @ constant)
    _take_rows(pointwise1, torch.cat([keep, keep + channels]))
    _take_rows(depthwise, keep)
    depthwise.groups = len(keep)
    for pname in ("weight", "bias"):
        param = getattr(norm, pname)
        if isinstance(param, nn.Parameter):
            setattr(norm, pname, nn.Parameter(param.detach()[keep].clone()))
    norm.running_mean = norm.running_mean[keep].clone()
    norm.running_var = norm.running_var[keep].clone()
    norm.num_features = len(keep)
    _take_columns(pointwise2, keep)


def _take_rows(layer, index):
    layer.weight = nn.Parameter(layer.weight.detach()[index].clone())
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.detach()[index].clone())
    _set_size(layer, "out", len(index))
    if isinstance(layer, nn.Conv1d) and layer.groups > 1:  # depthwise: one input channel per output
        layer.in_channels = len(index)


def _take_columns(layer, index):
    layer.weight = nn.Parameter(layer.weight.detach()[:, index].clone())
    _set_size(layer, "in", len(index))


def _set_size(layer, side, size):
    if isinstance(layer, nn.Linear):
        setattr(layer, f"{side}_features", size)
    elif isinstance(layer, nn.Conv1d):
        setattr(layer, f"{side}_channels", size)
    else:
        raise ValueError(f"cannot shrink {type(layer).__name__}: only Linear and Conv1d")
