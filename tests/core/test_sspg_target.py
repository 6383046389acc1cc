"""SSPG lands on its target sparsity while keeping a learned, mixed per-layer allocation."""
import pytest
import torch

import pinch
from pinch.methods.sspg import common_threshold_scale
from tests.conftest import ToyNet, train

TARGETS = [r"encoder\.\d+"]


@pytest.mark.parametrize("lr", [2e-4, 3e-3])
def test_lands_on_target_when_compressing_a_converged_model(converged_toy, toy_data, lr, _converged_state):
    pruner = pinch.Pruner(converged_toy, target_sparsity=0.5, targets=TARGETS, total_steps=1500)
    losses = train(converged_toy, toy_data, 1500, lr, pruner)
    report = pruner.sparsity()
    assert abs(report.gated - 0.5) <= 0.01
    layer_sparsities = list(report.layers.values())
    assert max(layer_sparsities) - min(layer_sparsities) > 0.05, "thresholds, not a uniform ratio, allocate"
    dense_loss = losses[0]  # nothing is pruned before the first update
    if lr == 3e-3:
        # Fine-tuning recovers what the mask costs: the final loss against the converged weights
        # under the same final mask, not fine-tuned. Measured on an Intel Xeon: 0.006-0.021 for
        # converged models of seeds 0-3 (0.027-0.053 with weight_grad: soft; 1 with no fine-tuning).
        # It replaces "below 20x the dense loss", which held on the AMD machines and failed here
        # (31x for seed 0): at this rate the toy's final loss swings from 0.8x to 31x the dense
        # loss across seeds, while its share of the unrecovered loss stays small.
        x, y = toy_data
        masks = dict(pruner.method.keep_masks())
        unrecovered = ToyNet()
        unrecovered.load_state_dict(_converged_state)
        with torch.no_grad():
            for name, param in unrecovered.named_parameters():
                param.mul_(masks.get(name, 1))
            unrecovered_loss = ((unrecovered(x) - y) ** 2).mean().item()
        assert losses[-1] < 0.1 * unrecovered_loss
        assert unrecovered_loss > 10 * dense_loss  # the mask does cost something to recover
    else:
        # 1500 updates at lr 2e-4 do not give any method 20x back (bench/sspg_toy.py): the
        # yardstick is global magnitude pruning fine-tuned with the same updates. Measured: 2.18x
        # here (7.7e-4 vs 3.5e-4); 1.70-2.48x for converged models of seeds 0-5 (SSPG reaches its
        # target only after a few hundred updates, magnitude fine-tunes one mask all 1500). The
        # bound clears that spread; a broken recovery is far above it: 10.6x with the task
        # gradient through the soft mask (weight_grad: soft), 178x with no fine-tuning at all.
        magnitude = ToyNet()
        magnitude.load_state_dict(_converged_state)
        baseline = pinch.Pruner(magnitude, method="global_magnitude", target_sparsity=0.5, targets=TARGETS,
                                total_steps=1500)
        assert losses[-1] < 3 * train(magnitude, toy_data, 1500, lr, baseline)[-1]


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


def _compress(model, data, steps, lr, scale, **options):
    pruner = pinch.Pruner(model, target_sparsity=0.5, targets=TARGETS, total_steps=steps, **options)
    x, y = data
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = scale * ((model(x) - y) ** 2).mean() + pruner.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
        pruner.step()
    return pruner


def test_auto_eta_follows_the_loss_scale_and_reaches_the_target(_converged_state, toy_data):
    """One preset value for espnet2's summed and NeMo's averaged CTC: eta adapts to the scale."""
    etas = {}
    for scale in (1.0, 30.0):
        model = ToyNet()
        model.load_state_dict(_converged_state)
        pruner = _compress(model, toy_data, 400, 3e-3, scale)
        assert abs(pruner.sparsity().gated - 0.5) <= 0.01
        etas[scale] = pruner.method.eta
    # The larger loss needed (and got) the larger eta on the way up; after the ramp it holds.
    assert etas[30.0] > etas[1.0], etas


def test_auto_eta_is_in_the_model_state_and_resumes(_converged_state, toy_data):
    model = ToyNet()
    model.load_state_dict(_converged_state)
    pruner = _compress(model, toy_data, 50, 3e-3, 30.0)
    assert pruner.method.eta != 1.0 and float(model.pinch_eta) == pruner.method.eta
    resumed = ToyNet()
    again = pinch.Pruner(resumed, target_sparsity=0.5, targets=TARGETS, total_steps=50)
    resumed.load_state_dict(model.state_dict())
    assert again.method.eta == pruner.method.eta
    fixed = pinch.Pruner(ToyNet(), target_sparsity=0.5, targets=TARGETS, total_steps=50, eta=3.0)
    assert fixed.method.eta == 3.0 and not hasattr(fixed.model, "pinch_eta")


def test_common_threshold_scale_is_the_quantile_of_every_ratio():
    """The windowed search gives exactly the k-th smallest |w| / |t| of a full sort, whether
    the answer lies below 1 (projection after overshoot) or above it (bake of an average)."""
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        weights = [torch.randn(int(torch.randint(1, 2000, (), generator=g)), 1, generator=g) for _ in range(4)]
        thresholds = [torch.rand((), generator=g) * 3 for _ in weights]
        ratios = torch.cat([w.abs().flatten() / t for w, t in zip(weights, thresholds)])
        for sparsity in (0.0, 0.1, 0.5, 0.65, 0.99, 1.0):
            k = min(int(round(sparsity * ratios.numel())) + 1, ratios.numel())
            assert torch.equal(common_threshold_scale(weights, thresholds, sparsity), torch.kthvalue(ratios, k).values)


def test_common_threshold_scale_of_groups_prunes_the_most_the_target_allows_off_every_ratio():
    """Structured groups without blocks (one cumulative count): at most the target's weights
    pruned, the next larger ratio pruning more, and no group left on its scaled threshold."""
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        groups = [torch.randn(int(torch.randint(1, 30, (), generator=g)), 4, generator=g) for _ in range(5)]
        thresholds = [torch.rand((), generator=g) + 0.3 for _ in groups]
        costs = [int(torch.randint(2, 9, (), generator=g)) for _ in groups]
        ratios = [w.square().mean(1).sqrt() / t for w, t in zip(groups, thresholds)]
        total = sum(c * w.shape[0] for w, c in zip(groups, costs))
        candidates = torch.unique(torch.cat(ratios))

        def pruned(a):
            return sum(c * int((r < a).sum()) for r, c in zip(ratios, costs))

        for sparsity in (0.0, 0.2, 0.5, 0.77):
            a = common_threshold_scale(groups, thresholds, sparsity, costs)
            above = candidates[candidates > a]
            assert pruned(a) <= round(sparsity * total)
            assert len(above) == 0 or pruned(above[0] * (1 + 1e-6)) > round(sparsity * total)
            assert not any(torch.isclose(r, a).any() for r in ratios)


def test_common_threshold_scale_counts_a_pruned_blocks_groups_with_it():
    """block_gates: the factor found prunes at most the target's weights, a pruned block's
    groups counted with it, and the next larger factor more; with keep_blocks it moves the finer
    groups only, each block staying as its threshold has it (pruned below 1)."""
    g = torch.Generator().manual_seed(0)
    # a block (one group) holding 10 rows; a block holding 4 heads; 7 rows in no block
    shapes, costs, blocks = [(1, 8), (10, 4), (1, 8), (4, 6), (7, 3)], [0, 5, 0, 9, 3], [-1, 0, -1, 2, -1]
    total = 10 * 5 + 4 * 9 + 7 * 3
    seen = set()
    for _ in range(20):
        groups = [torch.randn(s, generator=g) for s in shapes]
        thresholds = [torch.rand((), generator=g) + 0.3 for _ in groups]
        ratios = [w.square().mean(dim=1).sqrt() / t for w, t in zip(groups, thresholds)]
        pruned_blocks = {b for b in (0, 2) if ratios[b] < 1}

        def pruned(a, keep):
            cut = [r < a for r in ratios]
            return sum(c * int((cut[i] | ((b in pruned_blocks) if keep else (b >= 0 and bool(cut[b])))).sum())
                       for i, (c, b) in enumerate(zip(costs, blocks)) if i not in (0, 2))

        for keep in (True, False):
            candidates = torch.unique(torch.cat([r for i, r in enumerate(ratios) if not (keep and i in (0, 2))]))
            for sparsity in (0.0, 0.3, 0.5, 0.8, 1.0):
                a = common_threshold_scale(groups, thresholds, sparsity, costs, blocks, keep_blocks=keep)
                prune = round(sparsity * total)
                above = candidates[candidates > a]
                if a > candidates[0]:  # else the blocks kept pruned alone exceed the target
                    assert pruned(a, keep) <= prune
                    # halfway between two ratios: no group sits on its scaled threshold
                    assert candidates[candidates < a][-1] < a < (above[0] if len(above) else float("inf"))
                assert len(above) == 0 or prune == total or pruned(above[0] * (1 + 1e-6), keep) > prune
                seen.add((keep, len(pruned_blocks) if keep else sum(bool(ratios[b] < a) for b in (0, 2))))
    assert {(True, n) for n in (0, 1, 2)} | {(False, 2)} <= seen  # the search itself removes blocks too


def test_auto_eta_holds_once_the_ramp_is_done_and_grows_only_when_far_behind():
    """After the ramp, one update revives a few weights and sparsity dips just below the
    target: eta stays; it grows again only when sparsity falls HOLD_SLACK behind."""
    from pinch.methods.sspg import HOLD_SLACK

    model = ToyNet()
    pruner = pinch.Pruner(model, target_sparsity=0.5, targets=TARGETS, total_steps=100, reach_at=0.2)
    method = pruner.method
    for _ in range(30):  # past the ramp's end (update 20)
        pruner.clock.advance()
    start = method.eta
    method.sparsity_now = 0.5 - HOLD_SLACK / 5
    method._adapt_eta()
    assert method.eta == start
    method.sparsity_now = 0.5 - 2 * HOLD_SLACK
    method._adapt_eta()
    assert method.eta > start
    during_ramp = pinch.Pruner(ToyNet(), target_sparsity=0.5, targets=TARGETS, total_steps=100, reach_at=0.2).method
    for _ in range(10):  # half way up the ramp: 0.25 planned
        during_ramp.clock.advance()
    during_ramp.sparsity_now = 0.25 - HOLD_SLACK / 5  # any lag grows eta while ramping
    during_ramp._adapt_eta()
    assert during_ramp.eta > 1.0
