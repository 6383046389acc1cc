"""All gates of one model masked in one call per training forward.

A gated Conformer has 60 gated matrices; one autograd call per matrix cost three times the
arithmetic in per-call overhead (Python autograd nodes, compiled-graph guards), so the bank
masks every matrix when the first gated module of a forward asks, and hands the others
the results. The L0 count for the penalty comes from the same call.

A masked weight computed for one forward is reused while it is still what a new call
would compute and still backpropagates: the bank computes again when a gated weight or
threshold changed (an optimizer step, a loaded state dict, a move to another device),
after the backward pass reached the gates, and when grad mode changed. A module that runs
several times in one forward (a shared layer, a recurrent cell unrolled over time) reuses
it within the graph, as it would reuse a plain weight.

Outside it, the gate computes its own mask, per call: without gradients (evaluation,
inference: nothing to batch for and no copy of every weight to hold), and inside a
backward pass (a reentrant activation checkpoint recomputing a forward, whose nested
backward must not run the bank's shared node).
"""
import torch

from pinch.gates.masking import kept_total, pinch_weights


class GateBank:
    def __init__(self, gates, tau, soft_weight_grad, path="auto"):
        """``tau``: a callable giving the soft mask's temperature now (it follows a schedule);
        ``path``: how the math runs over the gates, one of `pinch.gates.masking.GATE_PATHS`
        (auto: stacked by shape on CUDA, a loop over the matrices elsewhere)."""
        self.gates, self.tau, self.soft, self.path = list(gates), tau, soft_weight_grad, path
        self.index = {id(g): i for i, g in enumerate(self.gates)}
        device = self.gates[0].weight.device
        self.costs = torch.tensor([g.cost for g in self.gates], device=device)
        # Each gate's block gate, as a position in the bank (-1: none): see `pinch.gates.masking.charged`.
        blocks = [self.index[id(g.block)] if g.block is not None else -1 for g in self.gates]
        self.blocks = torch.tensor(blocks, device=device) if max(blocks) >= 0 else None
        self.groups = tuple(g.groups for g in self.gates)
        self._masked = self._kept = self._state = None

    @staticmethod
    def active():
        """Whether a forward now batches: it builds a graph, outside a backward pass."""
        return torch.is_grad_enabled() and torch._C._current_graph_task_id() == -1

    def masked(self, gate):
        i = self.index[id(gate)]
        if self._masked is None or self._state[i] != _state(gate):
            self._compute()
        return self._masked[i]

    def kept(self):
        """This forward's differentiable L0 count (cost-weighted, over every gate); without
        gradients (validation), the count alone."""
        if not self.active():
            return self.kept_count().to(self.gates[0].weight.dtype)
        if self._kept is None or self._state != [_state(g) for g in self.gates]:
            self._compute()
        return self._kept

    def kept_count(self):
        """The cost-weighted L0 count of the hard masks now, as an int64 tensor (no graph)."""
        return kept_total([(g.weight, g.threshold, g.groups, g.cost) for g in self.gates], self.costs_on_device(),
                          self.path, self.blocks)

    def costs_on_device(self):
        """The group costs where the weights are now (the model may have moved since); the
        block positions follow them."""
        device = self.gates[0].weight.device
        if self.costs.device != device:
            self.costs = self.costs.to(device)
            self.blocks = None if self.blocks is None else self.blocks.to(device)
        return self.costs

    def clear(self):
        self._masked = self._kept = self._state = None

    def _compute(self):
        self._masked, self._kept = pinch_weights(
            [g.weight for g in self.gates], [g.threshold for g in self.gates], self.tau(), self.groups,
            self.costs_on_device(), self.soft, on_backward=self.clear, path=self.path, blocks=self.blocks)
        self._state = [_state(g) for g in self.gates]


def _state(gate):
    """What decides whether a masked weight is current: each tensor's storage and version."""
    w, t = gate.weight, gate.threshold
    return w.data_ptr(), w._version, t.data_ptr(), t._version
