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
def _masked_and_count(w2ds, thresholds):
    keeps = [_scores(w) >= t * t for w, t in zip(w2ds, thresholds)]
    return [torch.where(k, w, 0) for k, w in zip(keeps, w2ds)], torch.stack([k.sum() for k in keeps])


@Fused
def _kept_groups(w2ds, thresholds):
    return torch.stack([(_scores(w) >= t * t).sum() for w, t in zip(w2ds, thresholds)])


@Fused
def _gradients(w2ds, g2ds, thresholds, tau, grad_kept, costs, soft):
    """``grad_kept * costs``: the count's gradient per kept group of each tensor."""
    grads_w, grads_t = [], []
    for w2d, g2d, threshold, grad_group in zip(w2ds, g2ds, thresholds, (grad_kept * costs).unbind()):
        n = w2d.shape[1]
        margin = _scores(w2d) - threshold * threshold  # >= 0 where kept
        m = torch.sigmoid(margin / tau)  # soft mask
        # a = d loss / d (score - t^2): from the masked weight and from the L0 count
        gw = g2d * w2d if n == 1 else (g2d * w2d).sum(dim=1, keepdim=True)
        a = (gw + grad_group) * (m * (1 - m) / tau)
        task = g2d * m if soft else torch.where(margin >= 0, g2d, 0)
        grads_w.append(task + w2d * a * (2.0 / n))
        grads_t.append(-2.0 * threshold * a.sum())
    return grads_w, torch.stack(grads_t)


class _Pinch(torch.autograd.Function):
    """Every tensor of a list in one call: per-call overhead, not arithmetic, dominated the
    gates' cost when each weight had its own call (docs/evidence.md, "Gate overhead")."""

    @staticmethod
    def forward(ctx, tau, groups, costs, soft_weight_grad, on_backward, *weights_and_thresholds):
        n = len(groups)
        weights, thresholds = weights_and_thresholds[:n], weights_and_thresholds[n:]
        masked, kept = _masked_and_count([w.reshape(g, -1) for w, g in zip(weights, groups)], list(thresholds))
        ctx.save_for_backward(tau, costs, *weights_and_thresholds)
        ctx.groups, ctx.soft, ctx.on_backward = groups, soft_weight_grad, on_backward
        total = (kept.to(costs.dtype) * costs).sum().to(weights[0].dtype)
        return (total, *(m.view_as(w) for m, w in zip(masked, weights)))

    @staticmethod
    def backward(ctx, grad_kept, *grads):
        tau, costs, *weights_and_thresholds = ctx.saved_tensors
        if ctx.on_backward is not None:
            ctx.on_backward()
        n = len(ctx.groups)
        weights, thresholds = weights_and_thresholds[:n], weights_and_thresholds[n:]
        if grad_kept is None:
            grad_kept = torch.zeros((), dtype=weights[0].dtype, device=weights[0].device)
        # A tensor the forward pass did not use (a branch the loss skipped) gets no task gradient.
        grads = [torch.zeros_like(w) if g is None else g for g, w in zip(grads, weights)]
        grads_w, grads_t = _gradients([w.reshape(g, -1) for w, g in zip(weights, ctx.groups)],
                                      [g.reshape(k, -1) for g, k in zip(grads, ctx.groups)], list(thresholds),
                                      tau, grad_kept, costs.to(grad_kept.dtype), ctx.soft)
        return (None, None, None, None, None, *(g.view_as(w) for g, w in zip(grads_w, weights)),
                *(g.reshape(t.shape) for g, t in zip(grads_t.unbind(), thresholds)))


def pinch_weights(weights, thresholds, tau, groups, costs, soft_weight_grad=False, on_backward=None):
    """`pinch_weight` for many tensors in one call: ``(sum of the L0 counts, masked weights)``.

    ``groups``: a tuple of group counts; ``costs``: a tensor of the group costs on the weights'
    device; ``on_backward``: called when the backward pass reaches the gates."""
    tau = torch.as_tensor(tau, dtype=weights[0].dtype, device=weights[0].device)
    total, *masked = _Pinch.apply(tau, tuple(groups), costs, soft_weight_grad, on_backward, *weights, *thresholds)
    return masked, total


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
