"""The gate bank: every gate masked in one call per training forward, with the gradients of
one call per gate, whatever the training loop does between forwards."""
import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

import pinch
from pinch.gates import masking


class Net(nn.Module):
    """A shared layer used twice, an LSTM, and a head the loss may skip."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp = nn.Linear(6, 8)
        self.shared = nn.Linear(8, 8)
        self.rnn = nn.LSTM(8, 8, batch_first=True)
        self.out = nn.Linear(8, 4)
        self.aux = nn.Linear(8, 3)

    def forward(self, x, use_aux=False, checkpointed=False):
        h = torch.tanh(self.inp(x))
        if checkpointed:
            h = checkpoint(self.shared, h, use_reentrant=True)
        else:
            h = self.shared(h)
        h = self.shared(torch.relu(h))
        h, _ = self.rnn(h)
        y = self.out(h).square().mean()
        return y + self.aux(h).square().mean() if use_aux else y


def gated(batched, gate_path="auto"):
    model = Net()
    pruner = pinch.Pruner(model, target_sparsity=0.5, targets=["inp", "shared", "rnn", "out", "aux"], total_steps=100,
                          eta=0.3, gate_path=gate_path)
    assert len(pruner.method.gates) == 6
    with torch.no_grad():  # thresholds that prune part of every matrix
        for g in pruner.method.gates:
            g.threshold.fill_(float(g.weight.abs().median()))
    if not batched:
        for g in pruner.method.gates:
            g.bank = None
    pruner.start()
    return model, pruner


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-7), k


def count_calls(monkeypatch):
    calls = []
    original = masking._Pinch.apply

    def apply(*args):
        calls.append(len(args[1]))
        return original(*args)

    monkeypatch.setattr(masking._Pinch, "apply", apply)
    return calls


def loss_of(model, pruner, x, **kwargs):
    return model(x, **kwargs) + pruner.penalty()


def count_stacks(monkeypatch):
    """The number of tensors in each stack the fused path masks."""
    stacks = []
    original = masking._stack_masked_and_count

    def fn(w, t):
        stacks.append(len(w))
        return original(w, t)

    monkeypatch.setattr(masking, "_stack_masked_and_count", fn)
    return stacks


@pytest.mark.parametrize("gate_path", ["per_matrix", "fused"])
@pytest.mark.parametrize("kwargs", [{}, {"use_aux": True}])
def test_one_call_per_forward_with_the_per_gate_gradients(monkeypatch, kwargs, gate_path):
    """Both paths of the bank (the fused one forced on CPU): the per-gate calls' values and gradients."""
    x = torch.randn(2, 5, 6)
    reference, ref_pruner = gated(batched=False)
    ref_loss = loss_of(reference, ref_pruner, x, **kwargs)
    ref_loss.backward()
    model, pruner = gated(batched=True, gate_path=gate_path)
    calls, stacks = count_calls(monkeypatch), count_stacks(monkeypatch)
    loss = loss_of(model, pruner, x, **kwargs)
    loss.backward()
    # The shared layer runs twice and the LSTM once; the penalty's count is the same call's.
    assert calls == [6]
    # Fused: one stack per shape, the LSTM's two 32x8 matrices together.
    assert sorted(stacks) == ([] if gate_path == "per_matrix" else [1, 1, 1, 1, 2])
    assert torch.allclose(loss, ref_loss, rtol=1e-6)
    # Including the head the loss skipped (without use_aux): only the count's push reaches it.
    assert_same(grads(model), grads(reference))
    assert int(pruner.method.bank.kept_count()) == int(ref_pruner.method.bank.kept_count())


@pytest.mark.parametrize("soft", [False, True])
def test_fused_path_on_structured_groups_and_split_stacks(monkeypatch, soft):
    """Row and head groups with their own costs, several tensors of one shape, and stacks split
    at STACK_ELEMENTS: the per-matrix path's values and gradients."""
    torch.manual_seed(0)
    shapes = [(12, 6), (12, 6), (6, 12), (12, 6), (9,), (3, 4, 2), (12, 6), (12, 6)]
    # rows, rows, rows, heads of 3 rows, elements, conv channels, elements, rows
    groups = [12, 12, 6, 4, 9, 3, 72, 12]
    costs = torch.tensor([18, 6, 30, 54, 1, 20, 1, 6])
    weights = [torch.randn(s) for s in shapes]
    thresholds = [w.square().mean().sqrt() * f for w, f in zip(weights, (0.9, 1.0, 1.1, 0.8, 0.7, 1.0, 0.9, 1.2))]
    ups = [torch.linspace(-1, 1, w.numel()).view_as(w) for w in weights]

    def run(path):
        ws = [w.clone().requires_grad_() for w in weights]
        ts = [t.clone().requires_grad_() for t in thresholds]
        masked, kept = masking.pinch_weights(ws, ts, 0.3, groups, costs, soft, path=path)
        (sum((m * u).sum() for m, u in zip(masked, ups)) + 0.01 * kept).backward()
        count = masking.kept_total(list(zip(ws, ts, groups, costs.tolist())), costs, path)
        return [*masked, kept, count, *(x.grad for x in ws + ts)]

    reference = run("per_matrix")
    monkeypatch.setattr(masking, "STACK_ELEMENTS", 150)  # two 72-weight tensors a stack: the three 12x6 by rows split
    masking._stacks.cache_clear()
    stacks = count_stacks(monkeypatch)
    got = run("fused")
    masking._stacks.cache_clear()
    assert sorted(stacks) == [1, 1, 1, 1, 1, 1, 2]
    assert 0 < int(reference[len(shapes)]) < int(costs @ torch.tensor(groups))  # something pruned, something kept
    for a, b in zip(got, reference):
        assert a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_gate_path_option():
    assert [masking.fused_path("auto", torch.device(d)) for d in ("cpu", "cuda")] == [False, True]
    assert masking.fused_path("fused", torch.device("cpu")) and not masking.fused_path("per_matrix",
                                                                                    torch.device("cuda"))
    with pytest.raises(ValueError, match="pruning key 'gate_path' must be one of .*'per_matrix'.*, got 'fast'"):
        pinch.PruningConfig.from_dict({"preset": "conformer", "gate_path": "fast"})


def test_accumulation_and_updates_recompute_with_fresh_weights(monkeypatch):
    xs = [torch.randn(2, 5, 6) for _ in range(4)]
    runs = []
    for batched in (False, True):
        model, pruner = gated(batched)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        calls = count_calls(monkeypatch) if batched else []
        for step in range(2):
            for x in xs[2 * step: 2 * step + 2]:  # two forward/backward passes per update
                loss_of(model, pruner, x).backward()
            opt.step()
            opt.zero_grad()
            pruner.step()
            with torch.no_grad():  # validation between updates: its count is no training graph
                loss_of(model, pruner, xs[0])
        runs.append((calls, {n: p.detach().clone() for n, p in model.named_parameters()}))
    (_, reference), (calls, got) = runs
    assert calls == ([6, 6] + [1] * 6) * 2  # validation masks per gate, as evaluation does
    assert_same(got, reference)


def test_reentrant_checkpoint_and_evaluation_mask_per_gate(monkeypatch):
    x = torch.randn(2, 5, 6)
    reference, ref_pruner = gated(batched=False)
    loss_of(reference, ref_pruner, x).backward()
    model, pruner = gated(batched=True)
    calls = count_calls(monkeypatch)
    loss_of(model, pruner, x, checkpointed=True).backward()
    assert_same(grads(model), grads(reference))
    # First pass: the bank (6), the checkpointed call's no-grad forward (1); its recomputation
    # inside the backward pass masks on its own (1).
    assert sorted(calls) == [1, 1, 6]
    calls.clear()
    with torch.no_grad():
        evaluated = model(x)
    assert calls == [1] * 6  # per gate per call (the shared layer twice): no batch held for evaluation
    assert torch.allclose(evaluated, reference(x).detach())


def test_a_moved_or_reloaded_weight_is_masked_again():
    model, pruner = gated(batched=True)
    x = torch.randn(2, 5, 6)
    first = model(x)
    with torch.no_grad():
        model.out.weight.mul_(2)  # in place, as load_state_dict does: the masked copy is stale
    second = model(x)
    model.out.weight.data = model.out.weight.data / 2  # a new storage, as .to(device) makes
    assert torch.allclose(model(x), first) and not torch.allclose(second, first)
