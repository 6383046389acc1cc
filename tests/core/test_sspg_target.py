"""SSPG lands on its target sparsity while keeping a learned, mixed per-layer allocation."""
import pytest
import torch

import pinch
from tests.conftest import ToyNet, train

TARGETS = [r"encoder\.\d+"]


@pytest.mark.parametrize("lr", [2e-4, 3e-3])
def test_lands_on_target_when_compressing_a_converged_model(converged_toy, toy_data, lr):
    pruner = pinch.Pruner(converged_toy, target_sparsity=0.5, targets=TARGETS, total_steps=1500)
    losses = train(converged_toy, toy_data, 1500, lr, pruner)
    report = pruner.sparsity()
    assert abs(report.gated - 0.5) <= 0.01
    layer_sparsities = list(report.layers.values())
    assert max(layer_sparsities) - min(layer_sparsities) > 0.05, "thresholds, not a uniform ratio, allocate"
    assert losses[-1] < 0.05


@pytest.mark.parametrize("lr", [2e-4, 3e-3])
def test_lands_on_target_while_the_model_still_learns(toy_data, lr):
    torch.manual_seed(1)
    model = ToyNet()
    pruner = pinch.Pruner(model, target_sparsity=0.65, targets=TARGETS, total_steps=1500)
    losses = train(model, toy_data, 1500, lr, pruner)
    assert abs(pruner.sparsity().gated - 0.65) <= 0.01
    assert losses[-1] < 0.5 * losses[0], "the task loss must still fall"


def test_eta_switches_off_at_the_target_and_back_on_below(converged_toy, toy_data):
    pruner = pinch.Pruner(converged_toy, target_sparsity=0.3, targets=TARGETS, total_steps=100, eta=2.0)
    pruner.start()
    assert pruner.stats()["eta"] == 2.0 and pruner.penalty() > 0
    gates = pruner.method.gates
    with torch.no_grad():
        for g in gates:  # far above the target: every weight below its threshold
            g.threshold.fill_(10.0)
    pruner.step()
    assert abs(pruner.sparsity().gated - 0.3) < 0.002, "overshoot is projected back onto the target"
    assert pruner.stats()["eta"] == 0.0 and pruner.penalty().item() == 0.0
    with torch.no_grad():
        for g in gates:
            g.threshold.fill_(1e-5)
    pruner.step()
    assert pruner.sparsity().gated < 0.3 and pruner.stats()["eta"] == 2.0


def test_projection_keeps_the_ratio_between_thresholds(converged_toy):
    pruner = pinch.Pruner(converged_toy, target_sparsity=0.4, targets=TARGETS, total_steps=10)
    gates = pruner.method.gates
    with torch.no_grad():
        for i, g in enumerate(gates):
            g.threshold.fill_(5.0 * (i + 1))
    pruner.step()
    ratios = [g.threshold.item() / gates[0].threshold.item() for g in gates]
    assert ratios == pytest.approx([1.0, 2.0, 3.0], rel=1e-5)


def test_tau_follows_the_cosine_schedule_over_real_steps(converged_toy):
    pruner = pinch.Pruner(converged_toy, target_sparsity=0.5, targets=TARGETS, total_steps=4)
    assert pruner.stats()["tau"] == 0.5
    for _ in range(4):
        pruner.step()
    assert pruner.stats()["tau"] == pytest.approx(0.01)
    assert int(converged_toy.pinch_steps) == 4, "the step counter lives in the model's state"
