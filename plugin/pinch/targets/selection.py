"""Resolve presets and name patterns to the weight tensors of a concrete model."""
import re
from dataclasses import dataclass

from torch import nn

from pinch.gates.gate import GateLayout
from pinch.targets.presets import PRESETS

# Parameters worth gating: matrices (and conv kernels), never biases or norms.
_GATEABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.RNNBase)


@dataclass(frozen=True)
class Target:
    module_name: str
    param_name: str
    module: nn.Module
    layout: GateLayout = GateLayout()

    @property
    def qualified_name(self):
        return f"{self.module_name}.{self.param_name}" if self.module_name else self.param_name

    @property
    def weight(self):
        return self.module._parameters[self.param_name]


def weight_names(module):
    if isinstance(module, nn.RNNBase):
        return [n for n in module._flat_weights_names if n.startswith("weight")]
    return ["weight"]


def resolve_patterns(preset=None, targets=None):
    """The regular expressions a preset and/or explicit patterns stand for."""
    if preset is None and not targets:
        raise ValueError("give a preset or target patterns: nothing to prune otherwise")
    patterns = list(targets or [])
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(sorted(PRESETS))}")
        patterns += PRESETS[preset].modules
    try:
        return [re.compile(p) for p in patterns]
    except re.error as err:
        raise ValueError(f"target pattern is not a valid regular expression: {err}") from None


def select_targets(model, preset=None, targets=None):
    """Every gateable weight whose module name fully matches a pattern.

    Patterns are regular expressions (``encoder\\..*`` style); a glob like ``encoder.*``
    also works since ``.*`` matches the rest of the name.
    """
    patterns = resolve_patterns(preset, targets)
    found = [
        Target(name, param, module)
        for name, module in model.named_modules()
        if isinstance(module, _GATEABLE) and any(p.fullmatch(name) for p in patterns)
        for param in weight_names(module)
    ]
    if not found:
        what = f"preset {preset!r}" if preset else f"targets {list(targets)}"
        raise ValueError(f"{what} matches no Linear/Conv/RNN layer of {type(model).__name__}")
    return found


def select_structured(model, preset):
    """Row targets on the preset's FFN-in matrices, head targets on its value projections."""
    if preset is None or preset not in PRESETS:
        raise ValueError(f"structured granularity needs a known preset naming FFN/attention blocks, got {preset!r}")
    spec = PRESETS[preset]
    found = []
    for name, module in model.named_modules():
        for ffn in spec.ffn:
            if re.fullmatch(ffn.parent, name):
                found.append(Target(f"{name}.{ffn.inner}", "weight", getattr(module, ffn.inner), GateLayout("row")))
        for att in spec.attention:
            if re.fullmatch(att.parent, name):
                heads = GateLayout("head", getattr(module, att.heads_attr))
                found.append(Target(f"{name}.{att.value}", "weight", getattr(module, att.value), heads))
    if not found:
        raise ValueError(f"preset {preset!r} matches no FFN or attention block of {type(model).__name__}")
    return found
