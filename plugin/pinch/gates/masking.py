"""Hard-forward / soft-backward masking, as one autograd function.

The forward pass uses the hard mask ``Mbar = W^2 >= t^2``; the backward pass is the
paper's straight-through estimator, the gradient of ``W * (Mbar + M - sg(M))`` with the
soft mask ``M = sigmoid((W^2 - t^2) / tau)``: the task gradient reaches a weight through
the *hard* mask (a pruned weight gets none of it), and both ``W`` and ``t`` get the soft
mask's derivative. The same call also returns the L0 count of kept weights, whose
gradient (the sparsity penalty's) shares that derivative, so the sigmoid is computed once
per step and only ``W`` and ``t`` are kept between passes: this is what keeps gated
training close to dense speed.

A weight is viewed as ``(groups, group_size)``: ``group_size == 1`` is the paper's
unstructured gate; larger groups (rows of an FFN-in matrix, the value rows of one head)
gate on the group's mean squared weight.
"""
import torch


def _scores(w2d):
    return w2d.square() if w2d.shape[1] == 1 else w2d.square().mean(dim=1, keepdim=True)


class _Pinch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, threshold, tau, groups, soft_weight_grad):
        w2d = weight.reshape(groups, -1)
        keep = _scores(w2d) >= threshold.square()
        ctx.save_for_backward(weight, threshold)
        ctx.tau, ctx.groups, ctx.soft = tau, groups, soft_weight_grad
        kept = keep.sum() * w2d.shape[1]
        return torch.where(keep, w2d, 0).view_as(weight), kept.to(weight.dtype)

    @staticmethod
    def backward(ctx, grad, grad_kept):
        weight, threshold = ctx.saved_tensors
        w2d = weight.reshape(ctx.groups, -1)
        g2d = grad.reshape(ctx.groups, -1)
        n = w2d.shape[1]
        margin = _scores(w2d).sub_(threshold.square())  # score - t^2; >= 0 where kept
        keep = margin >= 0
        m = margin.div_(ctx.tau).sigmoid_()  # soft mask
        slope = m.neg().add_(1).mul_(m).div_(ctx.tau)  # d m / d (score - t^2)
        # a = d loss / d (score - t^2): from the masked weight and from the L0 count
        a = (g2d * w2d) if n == 1 else (g2d * w2d).sum(dim=1, keepdim=True)
        a.add_(grad_kept * n).mul_(slope)
        task = (g2d * m) if ctx.soft else torch.where(keep, g2d, 0)
        grad_w = task.addcmul_(w2d, a, value=2.0 / n)
        grad_t = a.sum().mul_(-2.0).mul_(threshold)
        return grad_w.view_as(weight), grad_t.reshape(threshold.shape), None, None, None


def pinch_weight(weight, threshold, tau, groups=None, soft_weight_grad=False):
    """``(W * hard_mask, ||hard_mask||_0)`` with straight-through gradients to ``W`` and ``t``.

    ``soft_weight_grad`` passes the task gradient to ``W`` through the soft mask (``g * M``)
    instead of the hard one: pruned weights keep part of it and can grow back (sspg's
    ``weight_grad: soft``, measured against the paper's rule in README's A/B)."""
    return _Pinch.apply(weight, threshold, float(tau), groups or weight.numel(), soft_weight_grad)


def straight_through_pinched(weight, threshold, tau, groups=None):
    """The paper's ``W * (Mbar + M - sg(M))`` and soft count, written with plain autograd:
    the reference `pinch_weight`'s gradients are checked against."""
    w2d = weight.reshape(groups or weight.numel(), -1)
    margin = _scores(w2d) - threshold.square()
    m = torch.sigmoid(margin / tau)
    hard = (margin >= 0).to(weight.dtype)
    return (w2d * (hard + m - m.detach())).view_as(weight), m.sum() * w2d.shape[1]


def hard_keep(weight, threshold, groups=None):
    """Boolean keep-mask of the weight's shape."""
    w2d = weight.reshape(groups or weight.numel(), -1)
    return (_scores(w2d) >= threshold.square()).expand_as(w2d).reshape(weight.shape)
