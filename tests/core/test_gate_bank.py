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


def gated(batched):
    model = Net()
    pruner = pinch.Pruner(model, target_sparsity=0.5, targets=["inp", "shared", "rnn", "out", "aux"], total_steps=100,
                          eta=0.3)
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


@pytest.mark.parametrize("kwargs", [{}, {"use_aux": True}])
def test_one_call_per_forward_with_the_per_gate_gradients(monkeypatch, kwargs):
    x = torch.randn(2, 5, 6)
    reference, ref_pruner = gated(batched=False)
    loss_of(reference, ref_pruner, x, **kwargs).backward()
    model, pruner = gated(batched=True)
    calls = count_calls(monkeypatch)
    loss_of(model, pruner, x, **kwargs).backward()
    # The shared layer runs twice and the LSTM once; the penalty's count is the same call's.
    assert calls == [6]
    # Including the head the loss skipped (without use_aux): only the count's push reaches it.
    assert_same(grads(model), grads(reference))


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
