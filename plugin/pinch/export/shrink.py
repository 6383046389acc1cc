"""Turn structured masks into a smaller dense model: fewer FFN units, fewer heads."""
import re

import torch
from torch import nn

from pinch.export.bake import bake


def shrink(model):
    """Remove the FFN units and attention heads that structured gates pruned.

    The result is a dense model of the same classes, with smaller matrices and fewer
    heads, whose outputs equal the masked model's. Returns ``model``.
    """
    pruner = model.__dict__.get("_pinch_pruner")
    if pruner is None or pruner.config.granularity != "structured":
        raise ValueError("shrink needs a model gated by a structured sspg Pruner (granularity: structured)")
    keeps = {id(g.module): g.group_keep().reshape(-1).nonzero().reshape(-1) for g in pruner.method.gates}
    ffns = [f for spec in pruner.presets for f in spec.ffn]
    attentions = [a for spec in pruner.presets for a in spec.attention]
    bake(model)
    with torch.no_grad():
        for name, module in model.named_modules():
            for ffn in ffns:
                if re.fullmatch(ffn.parent, name):
                    keep = keeps[id(getattr(module, ffn.inner))]
                    _take_rows(getattr(module, ffn.inner), keep)
                    _take_columns(getattr(module, ffn.outer), keep)
            for att in attentions:
                if re.fullmatch(att.parent, name):
                    _shrink_heads(module, att, keeps[id(getattr(module, att.value))])
    return model


def _shrink_heads(module, att, heads):
    d_k = getattr(module, att.head_dim_attr)
    rows = (heads[:, None] * d_k + torch.arange(d_k)).reshape(-1)
    for part in (att.query, att.key, att.value, att.position):
        if isinstance(getattr(module, part, None), nn.Module):
            _take_rows(getattr(module, part), rows)
    _take_columns(getattr(module, att.out), rows)
    for pname in att.head_params:
        param = getattr(module, pname, None)
        if isinstance(param, nn.Parameter):
            setattr(module, pname, nn.Parameter(param.detach()[heads].clone()))
    setattr(module, att.heads_attr, len(heads))


def _take_rows(layer, index):
    layer.weight = nn.Parameter(layer.weight.detach()[index].clone())
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.detach()[index].clone())
    _set_size(layer, "out", len(index))


def _take_columns(layer, index):
    layer.weight = nn.Parameter(layer.weight.detach()[:, index].clone())
    _set_size(layer, "in", len(index))


def _set_size(layer, side, size):
    if isinstance(layer, nn.Linear):
        setattr(layer, f"{side}_features", size)
    elif isinstance(layer, nn.Conv1d) and layer.groups == 1:
        setattr(layer, f"{side}_channels", size)
    else:
        raise ValueError(f"cannot shrink {type(layer).__name__}: only Linear and ungrouped Conv1d")
