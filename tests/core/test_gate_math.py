import pytest
import torch

from pinch.gates.masking import hard_keep, kept_total, pinch_weight, pinch_weights, straight_through_pinched
from pinch.schedules import cosine, cubic_sparsity


def test_hard_mask_and_forward_on_hand_computed_case():
    w = torch.tensor([[0.5, -0.1], [0.2, -0.05]])
    t = torch.tensor(0.15)
    # w^2 = [.25 .01; .04 .0025] vs t^2 = .0225 -> keep 0.5 and 0.2 only
    assert hard_keep(w, t).tolist() == [[True, False], [True, False]]
    assert torch.equal(pinch_weight(w, t, tau=0.5)[0], w * torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    # the reference's forward is the hard one too: M - sg(M) is zero in value
    assert torch.allclose(straight_through_pinched(w, t, tau=0.01)[0], pinch_weight(w, t, tau=0.01)[0], rtol=0, atol=1e-7)


def test_row_groups_gate_on_mean_square():
    w = torch.tensor([[0.3, 0.1], [0.05, 0.02]])  # row mean squares .05 and .00145
    t = torch.tensor(0.1)  # t^2 = .01
    assert torch.equal(pinch_weight(w, t, 0.5, groups=2)[0], w * torch.tensor([[1.0], [0.0]]))


def _paper_gate(w, t, tau, groups=None, cost=None, up=None, eta=0.0):
    """method.md's gate written out here with plain torch ops, none of pinch's helpers:
    value ``(W * Mbar, cost * ||Mbar||_0)`` and, in closed form, the gradients of
    ``L = sum(up * W * Mbar) + eta * count`` under the straight-through rule
    (dL/dW = g * Mbar + g * W * dM/dW, dL/dt = g * W * dM/dt, with g = up; the count's
    gradient is that of the soft count cost * sum(M)).

    Groups as masking.py documents them: the weight viewed as ``(groups, -1)``, each row gated
    on its mean squared weight (a row of one weight: the paper's W^2); a kept group counts
    ``cost`` weights, its own size by default."""
    w, t = w.detach(), t.detach()
    rows = w.numel() if groups is None else groups
    w2 = w.reshape(rows, -1)
    n = w2.shape[1]
    score = (w2 * w2).sum(dim=1, keepdim=True) / n  # (rows, 1)
    soft = 1.0 / (1.0 + torch.exp(-(score - t * t) / tau))  # M
    hard = (score >= t * t).to(w.dtype)  # Mbar
    each = cost if cost else n
    value = (w2 * hard).reshape(w.shape), each * hard.sum()
    g = up.reshape(rows, n)
    slope = soft * (1.0 - soft) / tau  # dM/d(score - t^2)
    # d/d(score) of everything the soft mask of a row enters: the masked row and the count
    pull = (g * w2).sum(dim=1, keepdim=True) + eta * each
    grad_w = g * hard + pull * slope * (2.0 * w2 / n)  # d score / d w = 2 w / n
    grad_t = (pull * slope * (-2.0 * t)).sum()  # d score-margin / d t = -2 t
    return value, (grad_w.reshape(w.shape), grad_t)


def _autograd_straight_through(w, t, tau, groups, cost, up, eta):
    """The same estimator as method.md writes it, W * (Mbar + M - sg(M)) and the count
    cost * (Mbar + M - sg(M)), differentiated by autograd: a second derivation of the
    closed form above, also written only here."""
    w = w.detach().clone().requires_grad_(True)
    t = t.detach().clone().requires_grad_(True)
    w2 = w.reshape(w.numel() if groups is None else groups, -1)
    score = w2.square().mean(dim=1, keepdim=True)
    soft = torch.sigmoid((score - t.square()) / tau)
    hard = (score >= t.square()).to(w.dtype)
    st = hard + soft - soft.detach()
    loss = (up.reshape(w2.shape) * w2 * st).sum() + eta * (cost or w2.shape[1]) * st.sum()
    loss.backward()
    return w.grad, t.grad


def _matches_the_papers_straight_through(groups, cost=None):
    torch.manual_seed(0)
    w = torch.randn(6, 4, dtype=torch.double, requires_grad=True)
    up = torch.randn(6, 4, dtype=torch.double)
    # 0.96 prunes 14 of the 24 weights, 2 of the 6 rows, 1 of the 3 two-row groups, none
    # within 0.01 of the threshold's square (at 0.7 every row and group was kept)
    t = torch.tensor(0.96, dtype=torch.double, requires_grad=True)
    rows = groups or w.numel()
    for eta in (0.0, 0.3):  # masked weight alone, and with the L0 penalty on the count
        masked, kept = pinch_weight(w, t, 0.3, groups, cost=cost)
        (ref_masked, ref_kept), (ref_gw, ref_gt) = _paper_gate(w, t, 0.3, groups, cost, up, eta)
        assert torch.equal(masked.detach(), ref_masked) and kept.item() == ref_kept.item()
        # a case with both kinds of group, so both terms of the gradient are exercised
        assert 0 < ref_kept.item() / (cost or w.numel() // rows) < rows
        ((masked * up).sum() + eta * kept).backward()
        assert torch.allclose(w.grad, ref_gw, rtol=1e-10, atol=1e-12), (groups, cost, eta)
        assert torch.allclose(t.grad, ref_gt, rtol=1e-10, atol=1e-12), (groups, cost, eta)
        assert ref_gw.abs().sum() > 0 and ref_gt.abs() > 0, "gradients must reach both W and t"
        auto_gw, auto_gt = _autograd_straight_through(w, t, 0.3, groups, cost, up, eta)
        assert torch.allclose(auto_gw, ref_gw, rtol=1e-10, atol=1e-12)
        assert torch.allclose(auto_gt, ref_gt, rtol=1e-10, atol=1e-12)
        # pinch's own plain-autograd reference (exported by pinch.gates) agrees too
        w.grad = t.grad = None
        st, st_kept = straight_through_pinched(w, t, 0.3, groups, cost)
        ((st * up).sum() + eta * st_kept).backward()
        assert torch.allclose(w.grad, ref_gw) and torch.allclose(t.grad, ref_gt)
        w.grad = t.grad = None


def test_gradients_are_the_papers_straight_through_estimator():
    _matches_the_papers_straight_through(None)
    _matches_the_papers_straight_through(6)
    _matches_the_papers_straight_through(3)
    _matches_the_papers_straight_through(3, cost=20)  # a structured group governing more than its rows


@pytest.mark.parametrize("path", ["per_matrix", "fused"])
@pytest.mark.parametrize("block_kept", [True, False])
def test_a_block_gate_counts_its_groups_only_while_kept(path, block_kept):
    """block_gates: a branch's output matrix is one group with its own threshold, and the groups
    inside the branch count ``cost * kept * kept_block``; the gradients are the straight-through
    estimator of that product (each factor ``Mbar + M - sg(M)``), written here with autograd."""
    torch.manual_seed(0)
    weights = [torch.randn(4, 6, dtype=torch.double),  # the block's output matrix: one group
               torch.randn(6, 4, dtype=torch.double),  # 6 row groups inside the block
               torch.randn(6, 4, dtype=torch.double)]  # 6 row groups in no block
    rms = float(weights[0].square().mean().sqrt())
    thresholds = [torch.tensor(rms * (0.9 if block_kept else 1.1), dtype=torch.double),
                  torch.tensor(0.96, dtype=torch.double), torch.tensor(0.9, dtype=torch.double)]
    groups, costs, blocks = (1, 6, 6), torch.tensor([0, 10, 7]), torch.tensor([-1, 0, -1])
    ups = [torch.randn_like(w) for w in weights]

    def leaves():
        return ([w.clone().requires_grad_() for w in weights], [t.clone().requires_grad_() for t in thresholds])

    ws, ts = leaves()
    masked, count = pinch_weights(ws, ts, 0.3, groups, costs, path=path, blocks=blocks)
    (sum((m * u).sum() for m, u in zip(masked, ups)) + 0.2 * count).backward()

    ref_ws, ref_ts = leaves()
    sts = []
    for w, t, k in zip(ref_ws, ref_ts, groups):
        score = w.reshape(k, -1).square().mean(dim=1, keepdim=True)
        soft, hard = torch.sigmoid((score - t.square()) / 0.3), (score >= t.square()).double()
        sts.append(hard + soft - soft.detach())
    ref_count = 10 * sts[1].sum() * sts[0].sum() + 7 * sts[2].sum()
    ref_masked = [(w.reshape(k, -1) * st).view_as(w) for w, k, st in zip(ref_ws, groups, sts)]
    (sum((m * u).sum() for m, u in zip(ref_masked, ups)) + 0.2 * ref_count).backward()

    kept_rows, kept_free = (round(float(st.detach().sum())) for st in sts[1:])
    assert 0 < kept_rows < 6 and 0 < kept_free < 6  # both kinds of row in both tensors
    assert count.item() == 10 * kept_rows * block_kept + 7 * kept_free == pytest.approx(ref_count.item())
    assert int(kept_total(list(zip(ws, ts, groups, costs.tolist())), costs, path, blocks)) == count.item()
    for m, ref in zip(masked, ref_masked):
        assert torch.allclose(m.detach(), ref.detach(), rtol=0, atol=1e-12)
    for got, ref in zip(ws + ts, ref_ws + ref_ts):
        assert torch.allclose(got.grad, ref.grad, rtol=1e-10, atol=1e-12)
    # The count pulls on the block's threshold by what its groups cost, and on theirs only
    # while the block is kept: a pruned block's groups get the task's gradient alone.
    task_ws, task_ts = leaves()
    task_masked, _ = pinch_weights(task_ws, task_ts, 0.3, groups, costs, path=path, blocks=blocks)
    sum((m * u).sum() for m, u in zip(task_masked, ups)).backward()
    assert not torch.allclose(ts[0].grad, task_ts[0].grad)
    assert torch.allclose(ts[1].grad, task_ts[1].grad) != block_kept


def test_a_groups_cost_is_what_the_count_charges_and_pushes_with():
    w = torch.tensor([[1.0, 1.0], [0.1, 0.1], [2.0, 2.0]], requires_grad=True)
    t = torch.tensor(0.5, requires_grad=True)
    _, own = pinch_weight(w, t, 0.3, groups=3)
    _, costly = pinch_weight(w, t, 0.3, groups=3, cost=7)
    assert own.item() == 2 * 2 and costly.item() == 2 * 7  # two groups kept
    costly.backward()
    g_costly = t.grad.clone()
    t.grad = None
    own.backward()
    # The penalty's pull on the threshold scales with what a group costs.
    assert torch.allclose(g_costly, t.grad * 7 / 2)


def test_task_gradient_reaches_weights_through_the_hard_mask():
    """Kept weights get the whole task gradient, pruned ones only the soft mask's term,
    which is tiny once tau is small against |W^2 - t^2|."""
    torch.manual_seed(1)
    w = torch.randn(32, 32, requires_grad=True)
    t = torch.tensor(0.67, requires_grad=True)  # prunes about half
    up = torch.randn(32, 32)
    masked, _ = pinch_weight(w, t, tau=0.01)
    (masked * up).sum().backward()
    keep = hard_keep(w.detach(), t.detach())
    assert 0.4 < keep.float().mean() < 0.6
    near = (w.detach().square() - 0.67**2).abs() < 0.15  # within 15 tau: the soft mask still slopes
    assert torch.allclose(w.grad[keep & ~near], up[keep & ~near], atol=1e-4)
    assert w.grad[~keep & ~near].abs().max() < 1e-4


def test_kept_count_value_and_gradient():
    torch.manual_seed(2)
    w = torch.randn(5, 3, dtype=torch.double, requires_grad=True)
    t = torch.tensor(0.6, dtype=torch.double, requires_grad=True)
    _, count = pinch_weight(w, t, 0.25)
    assert count.item() == int((w.detach().abs() >= 0.6).sum())
    count.backward()
    gw, gt = w.grad.clone(), t.grad.clone()
    w.grad = t.grad = None
    torch.sigmoid((w.square() - t.square()) / 0.25).sum().backward()
    assert torch.allclose(gw, w.grad) and torch.allclose(gt, t.grad)
    assert gt < 0, "raising the threshold must lower the kept count"


def test_tau_schedule_end_points():
    assert cosine(0, 100, 0.5, 0.01) == 0.5
    assert abs(cosine(50, 100, 0.5, 0.01) - 0.255) < 1e-12
    assert cosine(100, 100, 0.5, 0.01) == 0.01
    assert cosine(250, 100, 0.5, 0.01) == 0.01


def test_cubic_schedule_matches_zhu_gupta():
    assert cubic_sparsity(0, 0.8, 0, 100, 10) == 0.0
    assert abs(cubic_sparsity(50, 0.8, 0, 100, 10) - 0.8 * (1 - 0.5**3)) < 1e-12
    assert cubic_sparsity(55, 0.8, 0, 100, 10) == cubic_sparsity(50, 0.8, 0, 100, 10)  # only on events
    assert cubic_sparsity(100, 0.8, 0, 100, 10) == 0.8
    assert cubic_sparsity(500, 0.8, 0, 100, 10) == 0.8


def test_soft_weight_gradient_option_is_the_soft_masks():
    """``weight_grad: soft``: the task gradient reaches W through M, the threshold's is unchanged."""
    torch.manual_seed(3)
    w = torch.randn(6, 4, dtype=torch.double, requires_grad=True)
    t = torch.tensor(0.7, dtype=torch.double, requires_grad=True)
    up = torch.randn(6, 4, dtype=torch.double)
    masked, kept = pinch_weight(w, t, 0.3, soft_weight_grad=True)
    ((masked * up).sum() + 0.3 * kept).backward()
    gw, gt = w.grad.clone(), t.grad.clone()
    w.grad = t.grad = None
    m = torch.sigmoid((w.square() - t.square()) / 0.3)
    ((w * m * up).sum() + 0.3 * m.sum()).backward()
    assert torch.allclose(gw, w.grad) and torch.allclose(gt, t.grad)
