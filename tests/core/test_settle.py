"""sspg's ``settle_at``: from that share of the pass on, once the target is held, the mask is
fixed (pruned weights exact zeros after every update, kept weights fine-tuning), survives a
resume through the checkpoint, and is what bake writes."""
import pytest
import torch

import pinch
from pinch.config import PruningConfig
from pinch.methods.sspg import SETTLED_THRESHOLD
from tests.conftest import ToyNet, optimizer_step, single_thread

TARGETS = [r"encoder\.\d+"]
STEPS = 300


def _pass(model, data, settle_at, steps=STEPS, lr=3e-3):
    """A pass at lr 3e-3 (where an unsettled mask churns most); the keep masks after each update."""
    pruner = pinch.Pruner(model, target_sparsity=0.5, targets=TARGETS, total_steps=STEPS, settle_at=settle_at)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    return pruner, opt, _updates(model, pruner, opt, data, steps)


def _updates(model, pruner, opt, data, steps):
    x, y = data
    masks = []
    with single_thread():
        for _ in range(steps):
            optimizer_step(((model(x) - y) ** 2).mean(), opt, pruner)
            masks.append({n: m.clone() for n, m in pruner.method.keep_masks()})
    return masks


def _changes(masks):
    """How many weights changed side between consecutive updates, in all."""
    return sum(int((a[n] != b[n]).sum()) for a, b in zip(masks, masks[1:]) for n in a)


def test_a_settled_mask_stops_moving_and_its_pruned_weights_stay_zero(converged_toy, toy_data):
    pruner, _, masks = _pass(converged_toy, toy_data, settle_at=0.5)
    settled = pruner.method.settled_masks
    assert settled is not None and pruner.stats()["settled"] == 1.0
    assert pruner.sparsity().gated == pytest.approx(0.5, abs=1e-3)
    assert _changes(masks[STEPS // 2:]) == 0
    for gate, keep in zip(pruner.method.gates, settled):
        assert float(gate.threshold.detach()) == pytest.approx(SETTLED_THRESHOLD)
        assert torch.all(gate.weight[~keep] == 0) and torch.all(gate.weight[keep] != 0)


def test_without_settling_the_mask_keeps_churning_after_the_target(converged_toy, toy_data):
    """What the option is for: the paper's rule revives and drops weights to the end."""
    pruner, _, masks = _pass(converged_toy, toy_data, settle_at=1.0)
    assert pruner.method.settled_masks is None and "settled" not in pruner.stats()
    assert _changes(masks[STEPS // 2:]) > 0


def test_a_resumed_pass_finds_its_mask_settled_in_the_checkpoint(converged_toy, toy_data):
    pruner, opt, masks = _pass(converged_toy, toy_data, settle_at=0.5, steps=200)
    state, opt_state = converged_toy.state_dict(), opt.state_dict()
    resumed = ToyNet()
    _, _, later = _pass_from(resumed, state, opt_state, toy_data)
    assert all(torch.equal(later[-1][n], masks[-1][n]) for n in masks[-1])
    assert _changes([masks[-1], *later]) == 0


def _pass_from(model, state, opt_state, data, steps=50):
    pruner = pinch.Pruner(model, target_sparsity=0.5, targets=TARGETS, total_steps=STEPS, settle_at=0.5)
    model.load_state_dict(state)
    x = data[0]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    opt.load_state_dict(opt_state)
    model(x)  # the first training forward starts the pass: the settled mask is found there
    assert pruner.method.settled_masks is not None
    return pruner, opt, _updates(model, pruner, opt, data, steps)


def test_bake_writes_the_settled_mask(converged_toy, toy_data):
    _, _, masks = _pass(converged_toy, toy_data, settle_at=0.5, steps=200)
    pinch.bake(converged_toy)
    for name, keep in masks[-1].items():
        weight = converged_toy.get_parameter(name)
        assert torch.equal(weight != 0, keep), name


@pytest.mark.parametrize("value", [0, 1.5, "late"])
def test_settle_at_outside_the_pass_is_refused_naming_the_key(value):
    with pytest.raises(ValueError, match="pruning key 'settle_at' must be a number in \\(0, 1\\]"):
        PruningConfig.from_dict({"method": "sspg", "preset": "conformer", "settle_at": value})
