"""Hard-forward / soft-backward masking, as one autograd function.

The forward pass uses the hard mask ``Mbar = W^2 >= t^2``; the backward pass is the
paper's straight-through estimator, the gradient of ``W * (Mbar + M - sg(M))`` with the
soft mask ``M = sigmoid((W^2 - t^2) / tau)``: the task gradient reaches a weight through
the *hard* mask (a pruned weight gets none of it), and both ``W`` and ``t`` get the soft
mask's derivative. The same call also returns the L0 count of kept weights, whose
gradient (the sparsity penalty's) shares that derivative, so the sigmoid is computed once
per step and only ``W`` and ``t`` are kept between passes. The elementwise math is fused
by torch.compile where it can be (`pinch.gates.fused`).

A weight is viewed as ``(groups, group_size)``: ``group_size == 1`` is the paper's
unstructured gate; larger groups (rows of an FFN-in matrix, the value rows of one head)
gate on the group's mean squared weight. A group's ``cost`` is what the L0 count charges
for keeping it: its own size by default; for structured groups, every weight its removal
takes away (an FFN unit's row and column, a head's q/k/v rows and out columns, a conv
channel's path), so that the sparsity target and the penalty count the parameters a
shrunk model loses. A group may sit inside a block with its own gate (a whole FFN, attention
or conv branch, sspg's ``block_gates``): it counts only while its block is kept, so the count
is ``sum(cost * kept * kept_block)`` (`charged`), and its gradient reaches both gates.

Two paths compute the same values and gradients (``path`` below; the sspg option
``gate_path``). ``per_matrix`` loops over the tensors inside one compiled graph: no copies,
the fastest on a CPU. On a GPU that loop is launch-bound (kernels per matrix, each launched
from Python: 72 matrices of wav2vec2-base cost 12.5 ms a step against 1.7 ms of GPU work,
docs/evidence.md "Gate overhead"), so ``fused`` stacks the tensors of one shape, e.g. the
48 768x768 attention matrices of wav2vec2-base, into one ``(k, groups, group_size)`` tensor
with its ``k`` thresholds, and runs the same math on the stack: kernels per shape, not per
matrix, at the cost of copying each weight (and its gradient) into the stack. A stack holds
at most ``STACK_ELEMENTS`` weights, which bounds the extra memory of the backward pass.
``auto`` takes ``fused`` on CUDA, ``per_matrix`` elsewhere. The thresholds and the mask
comparison stay in fp32 under autocast on both paths: the math runs with autocast off.
"""
import functools

import torch

from pinch.gates.fused import Fused

GATE_PATHS = ("auto", "fused", "per_matrix")
STACK_ELEMENTS = 2 ** 24  # 64 MB of fp32 weights per stack: a few such copies live in a backward pass


def _scores(w):
    """Each group's score along the last dim: ``(..., groups, 1)``."""
    return w.square() if w.shape[-1] == 1 else w.square().mean(dim=-1, keepdim=True)


def _keep(w, t):
    """The hard mask; ``t`` broadcasts against the scores (a scalar, or ``(k, 1, 1)`` for a stack)."""
    return _scores(w) >= t * t


def _weight_grad_and_slope(w, g, t, tau, grad_group, soft):
    """The weight's gradient and ``a = d loss / d (score - t^2)``, from the masked weight's
    gradient ``g`` and the L0 count's ``grad_group`` per kept group; ``t`` and ``grad_group``
    broadcast as in `_keep`."""
    n = w.shape[-1]
    margin = _scores(w) - t * t  # >= 0 where kept
    m = torch.sigmoid(margin / tau)  # soft mask
    gw = g * w if n == 1 else (g * w).sum(dim=-1, keepdim=True)
    a = (gw + grad_group) * (m * (1 - m) / tau)
    task = g * m if soft else torch.where(margin >= 0, g, 0)
    return task + w * a * (2.0 / n), a


@Fused
def _masked_and_count(w2ds, thresholds):
    keeps = [_keep(w, t) for w, t in zip(w2ds, thresholds)]
    return [torch.where(k, w, 0) for k, w in zip(keeps, w2ds)], torch.stack([k.sum() for k in keeps])


@Fused
def _kept_groups(w2ds, thresholds):
    return torch.stack([_keep(w, t).sum() for w, t in zip(w2ds, thresholds)])


@Fused
def _gradients(w2ds, g2ds, thresholds, tau, grad_groups, soft):
    """``grad_groups``: the L0 count's gradient per kept group of each tensor."""
    grads_w, grads_t = [], []
    for w2d, g2d, threshold, grad_group in zip(w2ds, g2ds, thresholds, grad_groups.unbind()):
        grad_w, a = _weight_grad_and_slope(w2d, g2d, threshold, tau, grad_group, soft)
        grads_w.append(grad_w)
        grads_t.append(-2.0 * threshold * a.sum())
    return grads_w, torch.stack(grads_t)


@Fused
def _stack_masked_and_count(w, t):
    """One stack: ``w`` is ``(k, groups, group_size)``, ``t`` its ``k`` thresholds."""
    keep = _keep(w, t.view(-1, 1, 1))
    return torch.where(keep, w, 0), keep.sum(dim=(1, 2))


@Fused
def _stack_kept_groups(w, t):
    return _keep(w, t.view(-1, 1, 1)).sum(dim=(1, 2))


@Fused
def _stack_gradients(w, g, t, tau, grad_group, soft):
    grad_w, a = _weight_grad_and_slope(w, g, t.view(-1, 1, 1), tau, grad_group.view(-1, 1, 1), soft)
    return grad_w, -2.0 * t * a.sum(dim=(1, 2))


def fused_path(path, device):
    """Whether ``path`` (one of `GATE_PATHS`) stacks the tensors on ``device``."""
    if path not in GATE_PATHS:
        raise ValueError(f"gate path must be one of {list(GATE_PATHS)}, got {path!r}")
    return path == "fused" or (path == "auto" and device.type == "cuda")


@functools.lru_cache(maxsize=16)
def _stacks(shapes, device):
    """How a list of tensors of ``(groups, group_size)`` ``shapes`` stacks: the positions of
    each stack's tensors (those of one shape, at most `STACK_ELEMENTS` weights, at least one
    tensor) and, on ``device``, every position in stack order."""
    by_shape = {}
    for i, shape in enumerate(shapes):
        by_shape.setdefault(shape, []).append(i)
    stacks = []
    for (groups, size), positions in by_shape.items():
        per_stack = max(1, STACK_ELEMENTS // (groups * size))
        stacks += [tuple(positions[i:i + per_stack]) for i in range(0, len(positions), per_stack)]
    return stacks, torch.tensor([i for stack in stacks for i in stack], device=device)


def _fp32(device):
    """Autocast off: the gate's math stays in the parameters' fp32 under mixed precision."""
    return torch.autocast(device.type, enabled=False)


class _Stacked:
    """The fused path's view of a list of tensors: each stack's weights copied into one
    tensor, and per-tensor values (thresholds, costs) reordered to match the stacks."""

    def __init__(self, weights, groups):
        self.shapes = tuple((g, w.numel() // g) for w, g in zip(weights, groups))
        self.stacks, self.order = _stacks(self.shapes, weights[0].device)
        self.sizes = [len(stack) for stack in self.stacks]

    def tensors(self, tensors):
        """Per stack: its tensors (weights or their gradients) in one ``(k, groups, size)`` tensor,
        made as it is asked for, so that one stack's copy lives at a time."""
        for stack in self.stacks:
            yield torch.stack([tensors[i].reshape(self.shapes[i]) for i in stack])

    def values(self, values):
        """Per stack: its entries of a tensor of one value per tensor."""
        return values.index_select(0, self.order).split(self.sizes)

    def original_order(self, values):
        """A tensor of one value per tensor, from stack order back to the original one."""
        return torch.empty_like(values).index_copy_(0, self.order, values)

    def unstack(self, per_stack, like):
        """Tensors of ``like``'s shapes from per-stack results, in the original order."""
        out = [None] * len(like)
        for stack, result in zip(self.stacks, per_stack):
            for i, r in zip(stack, result.unbind()):
                out[i] = r.view_as(like[i])
        return out


def _forward(weights, thresholds, groups, fused):
    """The masked weights and each tensor's count of kept groups."""
    if not fused:
        masked, kept = _masked_and_count([w.reshape(g, -1) for w, g in zip(weights, groups)], list(thresholds))
        return [m.view_as(w) for m, w in zip(masked, weights)], kept
    stacked = _Stacked(weights, groups)
    results = [_stack_masked_and_count(w, t)
               for w, t in zip(stacked.tensors(weights), stacked.values(torch.stack(thresholds)))]
    return stacked.unstack([m for m, _ in results], weights), stacked.original_order(torch.cat([k for _, k in results]))


def _backward(weights, grads, thresholds, groups, tau, grad_groups, soft, fused):
    """Both gradients; ``grad_groups``: the L0 count's gradient per kept group of each tensor."""
    if not fused:
        grads_w, grads_t = _gradients([w.reshape(g, -1) for w, g in zip(weights, groups)],
                                      [g.reshape(k, -1) for g, k in zip(grads, groups)], list(thresholds),
                                      tau, grad_groups, soft)
        return [g.view_as(w) for g, w in zip(grads_w, weights)], grads_t.unbind()
    stacked = _Stacked(weights, groups)
    results = [_stack_gradients(w, g, t, tau, k, soft) for w, g, t, k in zip(
        stacked.tensors(weights), stacked.tensors(grads), stacked.values(torch.stack(thresholds)),
        stacked.values(grad_groups))]
    return (stacked.unstack([w for w, _ in results], weights),
            stacked.unstack([t for _, t in results], thresholds))


class _Pinch(torch.autograd.Function):
    """Every tensor of a list in one call: per-call overhead, not arithmetic, dominated the
    gates' cost when each weight had its own call (docs/evidence.md, "Gate overhead")."""

    @staticmethod
    def forward(ctx, tau, groups, soft_weight_grad, on_backward, fused, *weights_and_thresholds):
        n = len(groups)
        weights, thresholds = weights_and_thresholds[:n], weights_and_thresholds[n:]
        with _fp32(weights[0].device):
            masked, kept = _forward(weights, thresholds, groups, fused)
        ctx.save_for_backward(tau, *weights_and_thresholds)
        ctx.groups, ctx.soft, ctx.on_backward, ctx.fused = groups, soft_weight_grad, on_backward, fused
        return (kept.to(weights[0].dtype), *masked)

    @staticmethod
    def backward(ctx, grad_kept, *grads):
        tau, *weights_and_thresholds = ctx.saved_tensors
        if ctx.on_backward is not None:
            ctx.on_backward()
        n = len(ctx.groups)
        weights, thresholds = weights_and_thresholds[:n], weights_and_thresholds[n:]
        if grad_kept is None:
            grad_kept = torch.zeros(n, dtype=weights[0].dtype, device=weights[0].device)
        # A tensor the forward pass did not use (a branch the loss skipped) gets no task gradient.
        grads = [torch.zeros_like(w) if g is None else g for g, w in zip(grads, weights)]
        with _fp32(weights[0].device):
            grads_w, grads_t = _backward(weights, grads, thresholds, ctx.groups, tau, grad_kept, ctx.soft, ctx.fused)
        return (None, None, None, None, None, *grads_w, *(g.reshape(t.shape) for g, t in zip(grads_t, thresholds)))


def charged(kept, costs, blocks=None):
    """The L0 count: each tensor's kept groups times their cost, a group inside a gated block
    counted only while the block is kept. ``kept``: kept groups per tensor; ``blocks``: per
    tensor, the position of its block's gate (one group), -1 for none. Differentiable in
    ``kept``: a group's count pulls on its block's gate, the block's keep on its groups'."""
    counted = kept * costs.to(kept.dtype)
    if blocks is not None:
        counted = counted * torch.where(blocks >= 0, kept.index_select(0, blocks.clamp_min(0)), torch.ones_like(kept))
    return counted.sum()


def pinch_weights(weights, thresholds, tau, groups, costs, soft_weight_grad=False, on_backward=None, path="auto",
                  blocks=None):
    """`pinch_weight` for many tensors in one call: ``(masked weights, the L0 count)``.

    ``groups``: a tuple of group counts; ``costs``: a tensor of the group costs on the weights'
    device; ``on_backward``: called when the backward pass reaches the gates; ``path``: one of
    `GATE_PATHS` (the module docstring); ``blocks``: as `charged` takes them."""
    tau = torch.as_tensor(tau, dtype=weights[0].dtype, device=weights[0].device)
    fused = fused_path(path, weights[0].device)
    kept, *masked = _Pinch.apply(tau, tuple(groups), soft_weight_grad, on_backward, fused, *weights, *thresholds)
    return masked, charged(kept, costs, blocks)


def group_cost(weight, groups, cost):
    """What a kept group counts: ``cost``, or the group's own size when it is 0/None."""
    return cost or weight.numel() // groups


def pinch_weight(weight, threshold, tau, groups=None, soft_weight_grad=False, cost=None):
    """``(W * hard_mask, ||hard_mask||_0)`` with straight-through gradients to ``W`` and ``t``.

    ``soft_weight_grad`` passes the task gradient to ``W`` through the soft mask (``g * M``)
    instead of the hard one: pruned weights keep part of it and can grow back (sspg's
    ``weight_grad: soft``, measured against the paper's rule in docs/method.md's A/B). The count
    charges ``cost`` per kept group (default: the group's size)."""
    groups = groups or weight.numel()
    costs = torch.tensor([group_cost(weight, groups, cost)], device=weight.device)
    (masked,), kept = pinch_weights([weight], [threshold], tau, [groups], costs, soft_weight_grad)
    return masked, kept


def kept_total(gated, costs=None, path="auto", blocks=None):
    """The L0 count of the hard masks over ``(weight, threshold, groups, cost)`` tuples, as an
    int64 tensor: one fused call for all tensors, as a call per tensor costs more than counting.
    ``costs``: the tuples' costs as a tensor on the weights' device, when the caller keeps one
    (sspg does, so a training step copies nothing from the host); ``path``: as `pinch_weights`'s;
    ``blocks``: as `charged` takes them."""
    groups = [g or w.numel() for w, _, g, _ in gated]
    weights = [w.detach() for w, _, _, _ in gated]
    thresholds = [t.detach() for _, t, _, _ in gated]
    device = weights[0].device
    if costs is None:
        costs = torch.tensor([group_cost(w, g, c) for w, g, (_, _, _, c) in zip(weights, groups, gated)], device=device)
    with _fp32(device):
        if not fused_path(path, device):
            return charged(_kept_groups([w.reshape(g, -1) for w, g in zip(weights, groups)], thresholds), costs, blocks)
        stacked = _Stacked(weights, groups)
        kept = torch.cat([_stack_kept_groups(w, t)
                          for w, t in zip(stacked.tensors(weights), stacked.values(torch.stack(thresholds)))])
        return charged(stacked.original_order(kept), costs, blocks)


def straight_through_pinched(weight, threshold, tau, groups=None, cost=None):
    """The paper's ``W * (Mbar + M - sg(M))`` and soft count, written with plain autograd:
    the reference `pinch_weight`'s gradients are checked against."""
    groups = groups or weight.numel()
    w2d = weight.reshape(groups, -1)
    margin = _scores(w2d) - threshold.square()
    m = torch.sigmoid(margin / tau)
    hard = (margin >= 0).to(weight.dtype)
    return (w2d * (hard + m - m.detach())).view_as(weight), m.sum() * group_cost(weight, groups, cost)


def hard_keep(weight, threshold, groups=None):
    """Boolean keep-mask of the weight's shape."""
    w2d = weight.reshape(groups or weight.numel(), -1)
    return (_scores(w2d) >= threshold.square()).expand_as(w2d).reshape(weight.shape)
