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
shrunk model loses.
"""
import torch

from pinch.gates.fused import Fused


def _scores(w2d):
    return w2d.square() if w2d.shape[1] == 1 else w2d.square().mean(dim=1, keepdim=True)


@Fused
def _masked_and_count(w2d, threshold):
    keep = _scores(w2d) >= threshold * threshold
    return torch.where(keep, w2d, 0), keep.sum()


@Fused
def _kept_groups(w2ds, thresholds):
    return torch.stack([(_scores(w) >= t * t).sum() for w, t in zip(w2ds, thresholds)])


@Fused
def _gradients(w2d, g2d, threshold, tau, grad_group, soft):
    """``grad_group``: the count's gradient per kept group (its gradient times the group's cost)."""
    n = w2d.shape[1]
    margin = _scores(w2d) - threshold * threshold  # >= 0 where kept
    m = torch.sigmoid(margin / tau)  # soft mask
    # a = d loss / d (score - t^2): from the masked weight and from the L0 count
    gw = g2d * w2d if n == 1 else (g2d * w2d).sum(dim=1, keepdim=True)
    a = (gw + grad_group) * (m * (1 - m) / tau)
    task = g2d * m if soft else torch.where(margin >= 0, g2d, 0)
    return task + w2d * a * (2.0 / n), -2.0 * threshold * a.sum()


class _Pinch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, threshold, tau, groups, soft_weight_grad, cost):
        masked, kept = _masked_and_count(weight.reshape(groups, -1), threshold)
        ctx.save_for_backward(weight, threshold, tau)
        ctx.groups, ctx.soft, ctx.cost = groups, soft_weight_grad, cost
        return masked.view_as(weight), kept.to(weight.dtype) * cost

    @staticmethod
    def backward(ctx, grad, grad_kept):
        weight, threshold, tau = ctx.saved_tensors
        if grad_kept is None:
            grad_kept = torch.zeros((), dtype=weight.dtype, device=weight.device)
        grad_w, grad_t = _gradients(weight.reshape(ctx.groups, -1), grad.reshape(ctx.groups, -1), threshold,
                                    tau, grad_kept * ctx.cost, ctx.soft)
        return grad_w.view_as(weight), grad_t.reshape(threshold.shape), None, None, None, None


def group_cost(weight, groups, cost):
    """What a kept group counts: ``cost``, or the group's own size when it is 0/None."""
    return cost or weight.numel() // groups


def pinch_weight(weight, threshold, tau, groups=None, soft_weight_grad=False, cost=None):
    """``(W * hard_mask, ||hard_mask||_0)`` with straight-through gradients to ``W`` and ``t``.

    ``soft_weight_grad`` passes the task gradient to ``W`` through the soft mask (``g * M``)
    instead of the hard one: pruned weights keep part of it and can grow back (sspg's
    ``weight_grad: soft``, measured against the paper's rule in README's A/B). The count
    charges ``cost`` per kept group (default: the group's size)."""
    tau = torch.as_tensor(tau, dtype=weight.dtype, device=weight.device)
    groups = groups or weight.numel()
    return _Pinch.apply(weight, threshold, tau, groups, soft_weight_grad, group_cost(weight, groups, cost))


def kept_total(gated, costs=None):
    """The L0 count of the hard masks over ``(weight, threshold, groups, cost)`` tuples, as an
    int64 tensor: one fused call for all tensors, as a call per tensor costs more than counting.
    ``costs``: the tuples' costs as a tensor on the weights' device, when the caller keeps one
    (sspg does, so a training step copies nothing from the host)."""
    groups = [g or w.numel() for w, _, g, _ in gated]
    w2ds = [w.detach().reshape(g, -1) for (w, _, _, _), g in zip(gated, groups)]
    if costs is None:
        costs = torch.tensor([group_cost(w, g, c) for (w, _, _, c), g in zip(gated, groups)], device=w2ds[0].device)
    return (_kept_groups(w2ds, [t.detach() for _, t, _, _ in gated]) * costs).sum()


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
