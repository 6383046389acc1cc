"""Every baseline method reaches its target through the same Pruner interface."""
import pytest
import torch

import pinch
from tests.conftest import ToyNet, train

TARGETS = [r"encoder\.\d+"]


@pytest.mark.parametrize(
    "method,options",
    [("ump", {}), ("global_magnitude", {}), ("gmp", {"frequency": 0.1}), ("imp", {"rounds": 3}), ("l1", {"lam": 0.01})],
)
def test_baseline_reaches_target(converged_toy, toy_data, method, options):
    pruner = pinch.Pruner(converged_toy, method=method, target_sparsity=0.6, targets=TARGETS, total_steps=300,
                          **options)
    losses = train(converged_toy, toy_data, 300, 1e-3, pruner)
    report = pruner.sparsity()
    assert abs(report.gated - 0.6) < 0.005
    assert losses[-1] < 0.1
    if method == "ump":
        assert all(abs(s - 0.6) < 0.005 for s in report.layers.values()), "uniform: same ratio per layer"
    # The zeros really are in the weights the forward uses.
    zeros = sum(int((converged_toy.encoder[i].weight == 0).sum()) for i in (0, 2, 4))
    assert abs(zeros / report.gated_params - 0.6) < 0.005


def test_gmp_ramps_gradually(converged_toy, toy_data):
    pruner = pinch.Pruner(converged_toy, method="gmp", target_sparsity=0.8, targets=TARGETS, total_steps=100,
                          end=0.5, frequency=0.1)
    seen = []
    x, y = toy_data
    opt = torch.optim.AdamW(converged_toy.parameters(), lr=1e-3)
    for _ in range(100):
        loss = ((converged_toy(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        pruner.step()
        seen.append(round(pruner.sparsity().gated, 3))
    assert seen[0] < seen[20] < seen[40] and seen[-1] == pytest.approx(0.8, abs=0.005)
    assert sorted(seen) == seen, "gradual pruning never regrows"


def test_one_shot_pruning_waits_for_the_first_training_forward(toy_data):
    """Toolkits load --init_param after building the model: prune what was loaded."""
    torch.manual_seed(0)
    model = ToyNet()
    pruner = pinch.Pruner(model, method="ump", target_sparsity=0.5, targets=TARGETS, total_steps=10)
    trained = ToyNet()
    train(trained, toy_data, 200, 3e-3)
    model.load_state_dict({**trained.state_dict(), "pinch_steps": torch.tensor(0)})
    model.eval()
    model(toy_data[0])
    assert pruner.sparsity().gated == 0.0, "evaluation does not trigger pruning"
    model.train()
    model(toy_data[0])
    loaded = trained.encoder[0].weight.abs()
    kept = model.encoder[0].weight != 0
    assert int(kept.sum()) == loaded.numel() // 2
    assert loaded[kept].min() >= loaded[~kept].max(), "the loaded weights' smallest half was pruned"
