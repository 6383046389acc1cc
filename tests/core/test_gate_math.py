import torch

from pinch.gates.masking import hard_keep, pinch_weight, soft_pinched
from pinch.schedules import cosine, cubic_sparsity


def test_hard_mask_and_forward_on_hand_computed_case():
    w = torch.tensor([[0.5, -0.1], [0.2, -0.05]])
    t = torch.tensor(0.15)
    # w^2 = [.25 .01; .04 .0025] vs t^2 = .0225 -> keep 0.5 and 0.2 only
    assert hard_keep(w, t).tolist() == [[True, False], [True, False]]
    assert torch.equal(pinch_weight(w, t, tau=0.5)[0], w * torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    # soft mask at tau = 0.01: sigmoid((0.25 - 0.0225) / 0.01) ~ 1, sigmoid((0.01 - 0.0225)/0.01) = sigmoid(-1.25)
    soft = soft_pinched(w, t, tau=0.01)[0]
    assert torch.isclose(soft[0, 1], torch.tensor(-0.1) * torch.sigmoid(torch.tensor(-1.25)))
    assert torch.isclose(soft[0, 0], torch.tensor(0.5), atol=1e-6)


def test_row_groups_gate_on_mean_square():
    w = torch.tensor([[0.3, 0.1], [0.05, 0.02]])  # row mean squares .05 and .00145
    t = torch.tensor(0.1)  # t^2 = .01
    assert torch.equal(pinch_weight(w, t, 0.5, groups=2)[0], w * torch.tensor([[1.0], [0.0]]))


def _straight_through_matches_soft(groups):
    torch.manual_seed(0)
    w = torch.randn(6, 4, dtype=torch.double, requires_grad=True)
    t = torch.tensor(0.7, dtype=torch.double, requires_grad=True)
    up = torch.randn(6, 4, dtype=torch.double)
    for eta in (0.0, 0.3):  # masked weight alone, and with the L0 penalty on the count
        masked, kept = pinch_weight(w, t, 0.3, groups)
        ((masked * up).sum() + eta * kept).backward()
        gw, gt = w.grad.clone(), t.grad.clone()
        w.grad = t.grad = None
        soft, soft_kept = soft_pinched(w, t, 0.3, groups)
        ((soft * up).sum() + eta * soft_kept).backward()
        assert torch.allclose(gw, w.grad) and torch.allclose(gt, t.grad)
        assert gw.abs().sum() > 0 and gt.abs() > 0, "gradients must reach both W and t"
        w.grad = t.grad = None


def test_straight_through_gradients_are_the_soft_masks():
    _straight_through_matches_soft(None)
    _straight_through_matches_soft(6)
    _straight_through_matches_soft(3)


def test_soft_path_passes_gradcheck():
    torch.manual_seed(1)
    w = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
    t = torch.tensor(0.5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: soft_pinched(a, b, 0.2), (w, t))
    assert torch.autograd.gradcheck(lambda a, b: soft_pinched(a, b, 0.2, groups=3), (w, t))


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
