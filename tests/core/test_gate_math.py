import torch

from pinch.gates.masking import hard_keep, pinch_weight, straight_through_pinched
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


def _matches_the_papers_straight_through(groups, cost=None):
    torch.manual_seed(0)
    w = torch.randn(6, 4, dtype=torch.double, requires_grad=True)
    t = torch.tensor(0.7, dtype=torch.double, requires_grad=True)
    up = torch.randn(6, 4, dtype=torch.double)
    for eta in (0.0, 0.3):  # masked weight alone, and with the L0 penalty on the count
        masked, kept = pinch_weight(w, t, 0.3, groups, cost=cost)
        ((masked * up).sum() + eta * kept).backward()
        gw, gt = w.grad.clone(), t.grad.clone()
        w.grad = t.grad = None
        ref, ref_kept = straight_through_pinched(w, t, 0.3, groups, cost)
        ((ref * up).sum() + eta * ref_kept).backward()
        assert torch.allclose(gw, w.grad) and torch.allclose(gt, t.grad)
        assert gw.abs().sum() > 0 and gt.abs() > 0, "gradients must reach both W and t"
        w.grad = t.grad = None


def test_gradients_are_the_papers_straight_through_estimator():
    _matches_the_papers_straight_through(None)
    _matches_the_papers_straight_through(6)
    _matches_the_papers_straight_through(3)
    _matches_the_papers_straight_through(3, cost=20)  # a structured group governing more than its rows


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
