"""Resolve presets and name patterns to the weight tensors of a concrete model."""
import logging
import re
from dataclasses import dataclass, replace
from typing import Optional

from torch import nn

from pinch.gates.gate import GateLayout
from pinch.targets.presets import AUTO, AUTO_PRESETS, PRESETS

log = logging.getLogger(__name__)

# Parameters worth gating: matrices (and conv kernels), never biases or norms.
_GATEABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.RNNBase, nn.RNNCellBase)


@dataclass(frozen=True)
class Target:
    module_name: str
    param_name: str
    module: nn.Module
    layout: GateLayout = GateLayout()
    block: Optional[str] = None  # the qualified name of the block target its groups lie in

    @property
    def qualified_name(self):
        return f"{self.module_name}.{self.param_name}" if self.module_name else self.param_name

    @property
    def weight(self):
        return self.module._parameters[self.param_name]


def weight_names(module):
    if isinstance(module, nn.RNNBase):
        return [n for n in module._flat_weights_names if n.startswith("weight")]
    if isinstance(module, nn.RNNCellBase):  # e.g. Tacotron2's decoder LSTMCells, called once per frame
        return ["weight_ih", "weight_hh"]
    return ["weight"]


def gateable_weights(model):
    """``{qualified weight name: size}`` of every matrix pinch could gate."""
    return {
        f"{name}.{param}" if name else param: getattr(module, param).numel()
        for name, module in model.named_modules() if isinstance(module, _GATEABLE)
        for param in weight_names(module)
    }


def preset_names(preset):
    """A ``preset`` key (None, a name or a list of names) as a list; unknown names are an error."""
    names = [] if preset is None else [preset] if isinstance(preset, str) else list(preset)
    for name in names:
        if name != AUTO and name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))} "
                             f"(or {AUTO!r})")
    return names


def auto_preset(model):
    """The preset for ``model``'s network, found by class: the model's, then its children's,
    shallowest first, a module named like an encoder before its siblings."""
    modules = sorted(model.named_modules(), key=lambda m: (m[0].count(".") + bool(m[0]),
                                                         not m[0].rpartition(".")[2].endswith("encoder")))
    for name, module in modules:
        for cls in type(module).__mro__:
            found = AUTO_PRESETS.get(cls.__name__) or AUTO_PRESETS.get(f"{cls.__module__}.{cls.__qualname__}")
            if found:
                log.info("pinch: preset auto: %r for %s%s", found, cls.__name__, f" ({name})" if name else "")
                return found
    raise ValueError(f"preset 'auto' knows no preset for {type(model).__name__} or its modules; name one "
                     f"of: {', '.join(sorted(PRESETS))}, or give target patterns")


def resolve_presets(model, preset):
    """The Preset objects a ``preset`` key stands for on ``model`` ('auto' resolved)."""
    return [PRESETS[auto_preset(model) if name == AUTO else name] for name in preset_names(preset)]


def resolve_patterns(presets=(), targets=None):
    """The regular expressions of resolved presets and explicit patterns."""
    if not presets and not targets:
        raise ValueError("give a preset or target patterns: nothing to prune otherwise")
    patterns = list(targets or []) + [p for spec in presets for p in spec.modules]
    try:
        return [re.compile(p) for p in patterns]
    except re.error as err:
        raise ValueError(f"target pattern is not a valid regular expression: {err}") from None


def select_targets(model, preset=None, targets=None):
    """Every gateable weight whose module name fully matches a pattern.

    Patterns are regular expressions (``encoder\\..*`` style); a glob like ``encoder.*``
    also works since ``.*`` matches the rest of the name.
    """
    patterns = resolve_patterns(resolve_presets(model, preset), targets)
    found = [
        Target(name, param, module)
        for name, module in model.named_modules()
        if isinstance(module, _GATEABLE) and any(p.fullmatch(name) for p in patterns)
        for param in weight_names(module)
    ]
    if not found:
        names = preset_names(preset)
        what = (f"preset {', '.join(map(repr, names))}" if names else "") + (
            f"{' and ' if names else ''}targets {list(targets)}" if targets else "")
        raise ValueError(f"{what} matches no Linear/Conv/RNN layer of {type(model).__name__}")
    return found


def select_structured(model, preset, blocks=False):
    """Row targets on the preset's FFN-in matrices, head targets on its value projections,
    channel targets on its convolution modules' depthwise kernels; each group's cost is every
    weight its removal takes from the model (`pinch.export.shrink` removes them). With
    ``blocks``, each such branch also gets a block target on its output matrix (FFN-out,
    attention out, the conv module's second pointwise conv), whose gate removes the branch."""
    specs = resolve_presets(model, preset)
    if not specs:
        raise ValueError("structured granularity needs a preset naming FFN/attention blocks, got none")
    ffns = [f for spec in specs for f in spec.ffn]
    attentions = [a for spec in specs for a in spec.attention]
    convs = [c for spec in specs for c in spec.conv]
    found = []
    for name, module in model.named_modules():
        for ffn in ffns:
            if re.fullmatch(ffn.parent, name):
                inner, outer = getattr(module, ffn.inner), getattr(module, ffn.outer)
                cost = inner.weight[0].numel() + outer.weight[:, 0].numel()
                found += _in_block(Target(f"{name}.{ffn.inner}", "weight", inner, GateLayout("row", cost=cost)),
                                   name, module, ffn.outer, blocks)
        for att in attentions:
            if re.fullmatch(att.parent, name):
                found += _in_block(_head_target(name, module, att), name, module, att.out, blocks)
        for conv in convs:
            if re.fullmatch(conv.parent, name):
                target = _channel_target(name, module, conv)
                if target is not None:
                    found += _in_block(target, name, module, conv.pointwise2, blocks)
    if not found:
        raise ValueError(f"preset {', '.join(map(repr, preset_names(preset)))} matches no FFN or attention "
                         f"block of {type(model).__name__}")
    return found


def _in_block(target, name, module, out, blocks):
    """``target``, and with ``blocks`` the block target on the branch's output ``out`` before it."""
    if not blocks:
        return [target]
    block = Target(f"{name}.{out}", "weight", getattr(module, out), GateLayout("block"))
    return [block, replace(target, block=block.qualified_name)]


def _head_target(name, module, att):
    heads = getattr(module, att.heads_attr)
    rows = [getattr(module, p) for p in (att.query, att.key, att.value, att.position) if p]
    per_head = sum(r.weight.numel() for r in rows if isinstance(r, nn.Module))
    per_head += getattr(module, att.out).weight.numel()
    return Target(f"{name}.{att.value}", "weight", getattr(module, att.value),
                  GateLayout("head", heads, cost=per_head // heads))


def _channel_target(name, module, conv):
    """The depthwise kernel's rows as channels, or None (with a warning) where removing a
    channel is not exact: only a BatchNorm turns a pruned channel into a constant."""
    norm = getattr(module, conv.norm, None)
    if not isinstance(norm, nn.modules.batchnorm._BatchNorm):
        log.warning("pinch: structured: %s.%s is %s, not a BatchNorm: its conv channels stay ungated",
                    name, conv.norm, type(norm).__name__)
        return None
    depthwise = getattr(module, conv.depthwise)
    pointwise1, pointwise2 = getattr(module, conv.pointwise1), getattr(module, conv.pointwise2)
    channels = depthwise.weight.shape[0]
    if depthwise.groups != channels or pointwise1.weight.shape[0] != 2 * channels:
        raise ValueError(f"{name}: structured conv channels need a depthwise {conv.depthwise} after a GLU "
                         f"{conv.pointwise1}; got groups={depthwise.groups} for {channels} channels and "
                         f"{pointwise1.weight.shape[0]} {conv.pointwise1} outputs")
    cost = 2 * pointwise1.weight[0].numel() + depthwise.weight[0].numel() + pointwise2.weight[:, 0].numel()
    return Target(f"{name}.{conv.depthwise}", "weight", depthwise, GateLayout("row", cost=cost))
