"""A gate attached to one weight tensor of one module.

The module keeps its original parameter (same name, same object), so the model's
state_dict keys stay those of the unmodified model plus ``<name>_threshold``. During the
module's forward the masked weight is substituted by a pair of forward hooks: through
the instance ``__dict__`` for ordinary modules (attribute lookup finds it before
``_parameters``), through ``_flat_weights`` for RNNs, which read their weights from there.
In a training forward the masked weight comes from the method's `GateBank`, which masks
every gate of the model in one call.
"""
from dataclasses import dataclass

import torch
from torch import nn

from pinch.gates.masking import group_cost, hard_keep, pinch_weight

THRESHOLD_SUFFIX = "_threshold"
INIT_THRESHOLD = 1e-5


@dataclass(frozen=True)
class GateLayout:
    """How a weight splits into gated groups: single weights, output rows, heads, or the whole
    tensor as one block.

    ``cost``: the weights a pruned group removes from the model, counted by the sparsity
    target and the L0 penalty (0: the group's own size). Structured groups govern more than
    the rows they sit on (`pinch.targets.selection.select_structured` sets it). A block gate
    sits on a branch's output matrix and costs nothing of its own: what its removal takes is
    its groups' cost, which counts only while it is kept.
    """

    kind: str = "element"  # element | row | head | block
    heads: int = 1
    cost: int = 0

    def charge(self, weight, groups):
        """The weights one group counts: a block gate's nothing, any other's ``cost``."""
        return 0 if self.kind == "block" else group_cost(weight, groups, self.cost)

    def groups(self, weight):
        if self.kind == "element":
            return weight.numel()
        if self.kind == "row":
            return weight.shape[0]
        if self.kind == "block":
            return 1
        if self.kind == "head":
            if weight.shape[0] % self.heads:
                raise ValueError(f"{weight.shape[0]} output rows do not split into {self.heads} heads")
            return self.heads
        raise ValueError(f"unknown gate layout {self.kind!r}")


class Gate:
    """One learnable threshold shared by every weight (or group) of one tensor."""

    def __init__(self, module, name, layout=GateLayout(), clock=None, bias_name=None, block=None):
        """``block``: the gate of the block this gate's groups lie in (their count and their
        removal follow it), or None."""
        weight = module._parameters.get(name)
        if weight is None:
            raise ValueError(f"{type(module).__name__} has no parameter {name!r} to gate")
        if name + THRESHOLD_SUFFIX in module._parameters:
            raise ValueError(f"{type(module).__name__}.{name} is already gated")
        self.module, self.name, self.layout, self.clock = module, name, layout, clock
        self.groups = layout.groups(weight)
        self.cost = layout.charge(weight, self.groups)
        self.block = block
        self.bias_name = bias_name if layout.kind != "element" else None
        module.register_parameter(
            name + THRESHOLD_SUFFIX,
            nn.Parameter(torch.full((), INIT_THRESHOLD, dtype=weight.dtype, device=weight.device)),
        )
        self.bank = None  # the GateBank that masks this gate with the others while training
        _install(module, self)

    @property
    def weight(self):
        return self.module._parameters[self.name]

    @property
    def threshold(self):
        return self.module._parameters[self.name + THRESHOLD_SUFFIX]

    @property
    def numel(self):
        """The weights this gate governs: what its sparsity is a share of."""
        return self.groups * self.cost

    def masked_weight(self):
        if self.bank is not None and self.bank.active():
            return self.bank.masked(self)
        return pinch_weight(self.weight, self.threshold, self.clock.tau, self.groups, self.clock.soft_weight_grad,
                            self.cost)[0]

    def masked_bias(self):
        bias = self.module._parameters.get(self.bias_name) if self.bias_name else None
        if bias is None:
            return None
        # Hard mask only: a pruned group's bias must not leak through its activation.
        keep = self.group_keep().to(bias.dtype)
        return (bias.view(self.groups, -1) * keep).view_as(bias)

    def group_keep(self):
        w2d = self.weight.detach().reshape(self.groups, -1)
        return hard_keep(w2d, self.threshold.detach(), self.groups)[:, :1]

    def kept_groups(self):
        """Which groups stay, their block's gate included: what shrink keeps, one bool each."""
        keep = self.group_keep().reshape(-1)
        return keep if self.block is None else keep & self.block.group_keep().reshape(())

    def keep_mask(self):
        return hard_keep(self.weight.detach(), self.threshold.detach(), self.groups)

    def remove(self, apply_mask=True):
        """Detach the gate; with ``apply_mask`` the hard mask is written into the weights."""
        with torch.no_grad():
            if apply_mask:
                bias = self.masked_bias()
                self.weight.mul_(self.keep_mask())
                if bias is not None:
                    self.module._parameters[self.bias_name].copy_(bias)
        del self.module._parameters[self.name + THRESHOLD_SUFFIX]
        _uninstall(self.module, self)


def gates_of(module):
    """The gates on one module, by parameter name."""
    return getattr(module, "_pinch_gates", {})


def iter_gates(model):
    """``(qualified parameter name, gate)`` for every gate in ``model``."""
    for mod_name, module in model.named_modules():
        for name, gate in gates_of(module).items():
            yield (f"{mod_name}.{name}" if mod_name else name), gate


def _substitute(module, args):
    gates = module._pinch_gates
    if isinstance(module, nn.RNNBase):
        flat = list(module._flat_weights)
        for name, gate in gates.items():
            flat[module._flat_weights_names.index(name)] = gate.masked_weight()
        module._flat_weights = flat
        return
    for name, gate in gates.items():
        module.__dict__[name] = gate.masked_weight()
        bias = gate.masked_bias()
        if bias is not None:
            module.__dict__[gate.bias_name] = bias


def _restore(module, args, output):
    if isinstance(module, nn.RNNBase):
        module._init_flat_weights()
        return
    for name, gate in module._pinch_gates.items():
        module.__dict__.pop(name, None)
        if gate.bias_name:
            module.__dict__.pop(gate.bias_name, None)


def _install(module, gate):
    if not hasattr(module, "_pinch_gates"):
        module._pinch_gates = {}
        module._pinch_hooks = (
            module.register_forward_pre_hook(_substitute),
            module.register_forward_hook(_restore, always_call=True),
        )
    module._pinch_gates[gate.name] = gate


def _uninstall(module, gate):
    module._pinch_gates.pop(gate.name)
    if not module._pinch_gates:
        for handle in module._pinch_hooks:
            handle.remove()
        del module._pinch_gates, module._pinch_hooks
