"""Hard-forward / soft-backward masking, as autograd functions.

The forward pass uses the hard mask ``W^2 >= t^2``; the backward pass differentiates the
soft mask ``sigmoid((W^2 - t^2) / tau)`` (straight-through). Writing the backward by hand
keeps only ``W`` and ``t`` alive between passes instead of four weight-sized temporaries,
which is what keeps gated training close to ungated speed.

A weight is viewed as ``(groups, group_size)``: ``group_size == 1`` is the paper's
unstructured gate; larger groups (rows of an FFN-in matrix, the value rows of one head)
gate on the group's mean squared weight.
"""
import torch


def _scores(w2d):
    return w2d.square() if w2d.shape[1] == 1 else w2d.square().mean(dim=1, keepdim=True)


def _soft_slope(scores, threshold, tau):
    m = torch.sigmoid((scores - threshold.square()) / tau)
    return m, m * (1 - m) / tau


class _Pinched(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, threshold, tau, groups):
        w2d = weight.reshape(groups, -1)
        keep = _scores(w2d) >= threshold.square()
        ctx.save_for_backward(weight, threshold)
        ctx.tau, ctx.groups = tau, groups
        return (w2d * keep).view_as(weight)

    @staticmethod
    def backward(ctx, grad):
        weight, threshold = ctx.saved_tensors
        w2d = weight.reshape(ctx.groups, -1)
        g2d = grad.reshape(ctx.groups, -1)
        m, slope = _soft_slope(_scores(w2d), threshold, ctx.tau)
        gw_sum = (g2d * w2d).sum(dim=1, keepdim=True)  # d loss / d m, per group
        n = w2d.shape[1]
        grad_w = g2d * m + (2.0 / n) * w2d * (gw_sum * slope)
        grad_t = -2.0 * threshold * (gw_sum * slope).sum()
        return grad_w.view_as(weight), grad_t.reshape(threshold.shape), None, None


class _KeptCount(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, threshold, tau, groups):
        w2d = weight.reshape(groups, -1)
        ctx.save_for_backward(weight, threshold)
        ctx.tau, ctx.groups = tau, groups
        kept = (_scores(w2d) >= threshold.square()).sum() * w2d.shape[1]
        return kept.to(weight.dtype)

    @staticmethod
    def backward(ctx, grad):
        weight, threshold = ctx.saved_tensors
        w2d = weight.reshape(ctx.groups, -1)
        _, slope = _soft_slope(_scores(w2d), threshold, ctx.tau)
        grad_w = grad * 2.0 * w2d * slope
        grad_t = grad * -2.0 * threshold * slope.sum() * w2d.shape[1]
        return grad_w.view_as(weight), grad_t.reshape(threshold.shape), None, None


def pinched(weight, threshold, tau, groups=None):
    """``W * hard_mask`` with straight-through gradients to ``W`` and ``t``."""
    return _Pinched.apply(weight, threshold, float(tau), groups or weight.numel())


def kept_count(weight, threshold, tau, groups=None):
    """``||hard_mask||_0`` (in weights), with the gradient of the soft mask's sum."""
    return _KeptCount.apply(weight, threshold, float(tau), groups or weight.numel())


def soft_pinched(weight, threshold, tau, groups=None):
    """The differentiable surrogate whose gradient `pinched` uses (for checks)."""
    w2d = weight.reshape(groups or weight.numel(), -1)
    m = torch.sigmoid((_scores(w2d) - threshold.square()) / tau)
    return (w2d * m).view_as(weight)


def hard_keep(weight, threshold, groups=None):
    """Boolean keep-mask of the weight's shape."""
    w2d = weight.reshape(groups or weight.numel(), -1)
    return (_scores(w2d) >= threshold.square()).expand_as(w2d).reshape(weight.shape)
