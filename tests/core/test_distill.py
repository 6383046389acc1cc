"""Distillation from the dense model while pruning (pinch.distill): the teacher is the model the
pass starts from, frozen; its outputs and hidden layers pull on the student's weights and
thresholds; with distill_weight 0 nothing changes."""
import pytest
import torch
from torch import nn

import pinch
from pinch.distill import DistillSites

VOCAB = 6


class Block(nn.Module):
    """A residual FFN block named as NeMo's (``layers.N.feed_forward1.linear1/2``): the
    conformer preset gates it, unstructured or by hidden unit."""

    def __init__(self, d):
        super().__init__()
        self.feed_forward1 = nn.Module()
        self.feed_forward1.linear1, self.feed_forward1.linear2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

    def forward(self, x):
        return x + self.feed_forward1.linear2(torch.relu(self.feed_forward1.linear1(x)))


class Encoder(nn.Module):
    def __init__(self, d, blocks):
        super().__init__()
        self.embed = nn.Linear(5, d)
        self.layers = nn.ModuleList(Block(d) for _ in range(blocks))

    def forward(self, x):
        x = self.embed(x)
        for layer in self.layers:
            x = layer(x)
        return x


class TinyCTC(nn.Module):
    """Frames in, per-frame logits out: an encoder, then a head that reads its output
    (``scale`` puts an operation between them, which the teacher cannot follow)."""

    def __init__(self, d=8, blocks=3, scale=False):
        super().__init__()
        self.encoder, self.head, self.scale = Encoder(d, blocks), nn.Linear(d, VOCAB), scale

    def forward(self, x):
        h = self.encoder(x)
        return self.head(2 * h if self.scale else h)


SITES = DistillSites(("encoder", "head"), "head")


def frames(seed=0):
    return torch.randn(4, 7, 5, generator=torch.Generator().manual_seed(seed))


def tiny(seed=0, **kwargs):
    torch.manual_seed(seed)
    return TinyCTC(**kwargs)


def pruner(model, sites=SITES, **keys):
    sspg = {"eta": 0.5} if keys.get("method", "sspg") == "sspg" else {}
    keys = {"preset": "conformer", "distill_weight": 1.0, **sspg, **keys}
    return pinch.Pruner(model, total_steps=20, distill_sites=sites, **keys)


def task_loss(logits):
    return logits.logsumexp(-1).mean()


def steps(model, p, n, lr=0.05):
    """``n`` updates on task + penalty + distillation, as the adapters add them."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for i in range(n):
        loss = task_loss(model(frames(i))) + p.penalty() + p.distillation()[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        p.step()


def dense_weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("keys", [{}, {"method": "ump", "target_sparsity": 0.5},
                                  {"granularity": "structured", "target_sparsity": 0.5}],
                         ids=["sspg", "ump", "sspg_structured"])
def test_teacher_is_the_dense_start_frozen_and_unchanged_by_training(keys):
    model = tiny()
    p = pruner(model, distill_layers=[-1], **keys)
    # The weights the pass starts from are loaded after the Pruner attaches (espnet2's
    # --init_param, NeMo's init_from_nemo_model): the teacher must take those, not the ones at attach.
    start = {k: 1.5 * v for k, v in dense_weights(model).items() if not k.endswith("_threshold")}
    model.load_state_dict(start, strict=False)
    if "weight_threshold" in dict(model.encoder.layers[0].feed_forward1.linear1.named_parameters()):
        with torch.no_grad():  # sspg: the first matrix pruned whole from the first forward
            model.encoder.layers[0].feed_forward1.linear1.weight_threshold.fill_(100.0)
    steps(model, p, 4)
    teacher = p.distiller.teacher
    assert not teacher.training and not any(t.requires_grad for t in teacher.parameters())
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, start[name]), name
    assert not torch.equal(model.encoder.layers[1].feed_forward1.linear2.weight,
                           start["encoder.layers.1.feed_forward1.linear2.weight"])
    assert p.sparsity().gated > 0  # the student was pruned (ump: at its first forward), the teacher not


def test_teacher_forward_keeps_no_graph():
    model = tiny()
    p = pruner(model, distill_layers=[0])
    seen = []
    for module in p.distiller.teacher.modules():
        module.register_forward_hook(lambda m, a, out: seen.append((torch.is_grad_enabled(), out.requires_grad)))
    model.train()
    model(frames())
    assert seen and not any(enabled or needs for enabled, needs in seen)
    p.distillation()


def test_kl_and_hidden_are_zero_at_the_first_step_and_grow_once_the_student_differs():
    model = tiny()
    p = pruner(model, distill_layers=[0, -1], distill_temperature=2.0)
    model.train()
    model(frames())
    loss, stats = p.distillation()
    # Gates at their initial threshold (1e-5) keep every weight, and the toy model has no
    # dropout or BatchNorm: the student's training forward is the teacher's eval forward.
    assert float(stats["distill_kl"]) < 1e-9 and float(stats["distill_hidden"]) < 1e-6
    assert float(loss.detach()) == pytest.approx(float(stats["distill_kl"] + stats["distill_hidden"]))
    steps(model, p, 3)
    model(frames())
    loss, stats = p.distillation()
    assert float(stats["distill_kl"]) > 1e-6 and float(stats["distill_hidden"]) > 1e-4
    assert float(stats["loss_distill"]) == pytest.approx(float(stats["distill_kl"] + stats["distill_hidden"]))


def test_distill_layers_pick_the_named_layers():
    model = tiny(blocks=3)
    p = pruner(model, distill_layers=[-1, r"encoder\.layers\.[01]", 2])
    assert p.distiller.layers == ["encoder.layers.2", "encoder.layers.0", "encoder.layers.1"]

    def hidden_after_changing_the_last_block(layers):
        model = tiny()
        p = pruner(model, distill_outputs=False, distill_layers=layers)
        model.train()
        model(frames())  # the pass starts: the teacher takes these weights
        p.distillation()
        with torch.no_grad():
            model.encoder.layers[2].feed_forward1.linear2.bias.add_(1.0)
        model(frames())
        return float(p.distillation()[1]["distill_hidden"])

    assert hidden_after_changing_the_last_block([0]) == 0.0
    assert hidden_after_changing_the_last_block([1, 2]) > 0.1


def test_gradients_of_the_distillation_reach_the_student_weights_and_thresholds():
    model = tiny()
    p = pruner(model, distill_layers=[1])
    steps(model, p, 2)  # the student now differs from the teacher
    model.zero_grad()
    model(frames(9))
    p.distillation()[0].backward()
    grads = {n: q.grad for n, q in model.named_parameters()}
    thresholds = [n for n in grads if n.endswith("_threshold")]
    assert thresholds and all(grads[n] is not None and grads[n].abs().sum() > 0 for n in thresholds)
    assert grads["encoder.layers.0.feed_forward1.linear1.weight"].abs().sum() > 0
    assert all(t.grad is None for t in p.distiller.teacher.parameters())


def test_the_teacher_follows_the_student_from_entry_to_entry_and_says_where_it_cannot():
    model = tiny(scale=True)
    p = pruner(model)
    model.train()
    with pytest.raises(ValueError, match="cannot follow the student into 'head': none of its inputs is an "
                                         "output of 'encoder'"):
        model(frames())
    # The whole model as the one entry (the default sites) runs it as it is.
    model = tiny(scale=True)
    p = pruner(model, sites=None)
    model.train()
    model(frames())
    assert float(p.distillation()[1]["distill_kl"]) < 1e-9


def test_distill_weight_zero_changes_nothing():
    def loss_and_grads(**keys):
        model = tiny()
        p = pinch.Pruner(model, preset="conformer", eta=0.5, total_steps=20, **keys)
        steps(model, p, 2) if p.distiller is not None else None
        model.train()
        loss = task_loss(model(frames(5))) + p.penalty()
        loss.backward()
        hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
        return p, loss, {n: q.grad for n, q in model.named_parameters()}, hooks

    p, loss, grads, hooks = loss_and_grads()
    p_off, loss_off, grads_off, hooks_off = loss_and_grads(distill_weight=0.0, distill_layers=[0, 1],
                                                           distill_temperature=3.0)
    assert p_off.distiller is None and p_off.distillation() is None and hooks_off == hooks
    assert torch.equal(loss_off, loss)
    assert grads_off.keys() == grads.keys() and all(torch.equal(grads_off[n], grads[n]) for n in grads)


@pytest.mark.parametrize("key, value, message", [
    ("distill_weight", -1.0, "'distill_weight' must be a number >= 0"),
    ("distill_weight", True, "'distill_weight' must be a number"),
    ("distill_temperature", 0, "'distill_temperature' must be a number > 0"),
    ("distill_outputs", "yes", "'distill_outputs' must be true or false"),
    ("distill_layers", "encoder", "'distill_layers' must be a list of layer indices or module name patterns"),
    ("distill_layers", [1.5], "'distill_layers' must be a list"),
    ("distill_layers", [True], "'distill_layers' must be a list"),
    ("distill_layers", ["encoder.("], r"'distill_layers': 'encoder.\(' is not a regular expression"),
    ("distill_hidden_weight", -0.5, "'distill_hidden_weight' must be a number >= 0"),
    ("distill_hidden_loss", "l3", "'distill_hidden_loss' must be 'l1' or 'l2', got 'l3'"),
])
def test_distill_keys_are_checked_with_a_message_naming_the_key(key, value, message):
    with pytest.raises(ValueError, match=message):
        pinch.PruningConfig.from_dict({"preset": "conformer", key: value})


def test_a_distillation_that_distils_nothing_or_names_what_is_not_there_is_an_error():
    with pytest.raises(ValueError, match="'distill_weight' is 0.5 but nothing is distilled"):
        pinch.PruningConfig.from_dict({"preset": "conformer", "distill_weight": 0.5, "distill_outputs": False})
    with pytest.raises(ValueError, match=r"distill_layers: pattern 'encoder\\.nope' matches no module the teacher runs "
                                         r"\('encoder', 'head'\)"):
        pruner(tiny(), distill_layers=[r"encoder\.nope"])
    with pytest.raises(ValueError, match="distill_layers: index 3 is outside the 3 blocks of 'encoder.layers'"):
        pruner(tiny(), distill_layers=[3])
    with pytest.raises(ValueError, match="distill_outputs needs per-frame output log-probs .* in TinyCTC"):
        pruner(tiny(), sites=DistillSites(("encoder",), None))


def test_a_resumed_pass_cannot_rebuild_its_teacher():
    model = tiny()
    pruner(model)
    model.pinch_steps.fill_(3)  # as a resumed checkpoint leaves it
    model.train()
    with pytest.raises(ValueError, match="resumes at update 3, but the teacher .* is not kept in checkpoints"):
        model(frames())


def test_bake_leaves_no_teacher_behind():
    model = tiny()
    p = pruner(model, distill_layers=[0])
    steps(model, p, 1)
    pinch.bake(model)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert set(model.state_dict()) == set(TinyCTC().state_dict())
