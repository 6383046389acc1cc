"""Distillation from the dense model while it is pruned.

DPHuBERT (Peng et al., Interspeech 2023) makes structured pruning of speech encoders close
to lossless by distilling from the unpruned model while pruning. A pinch pass starts from a
dense model, so that model is the teacher: nothing second to load.

The teacher is a frozen copy of the modules an adapter names (``DistillSites``: the encoder,
then the head that reads its output), copied before any gate exists and loaded with the
student's weights when the pass starts (its first training forward, before a one-shot method
masks anything): espnet2 loads ``--init_param`` only after the model is built. It runs in eval
mode (no dropout, BatchNorm on its running statistics: the dense model as it is deployed, as
DPHuBERT's teacher) under ``torch.no_grad()``, call by call beside the student: as an entry
module of the student is called, its twin runs on the same inputs, the tensors an earlier entry
returned replaced by the teacher's own. So the teacher sees the student's encoder input (after
the toolkit's SpecAugment) and its frames align with the student's. A pass resumed from a
checkpoint has no teacher: the dense weights are not saved (they would double every checkpoint).
"""
import copy
import functools
import logging
import re
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._pytree import tree_leaves, tree_map

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillSites:
    """Where the teacher runs and where the output posteriors are, as module names.

    ``entries``: the modules the teacher runs, in the order the student calls them; the first
    takes the model's input, each later one an earlier one's output. ``output``: the module
    whose output is the per-frame logits or log-probs (a CTC head), None where there is none.
    The default suits a plain ``nn.Module`` whose forward returns logits.
    """

    entries: tuple = ("",)
    output: Optional[str] = ""


def encoder_name(model):
    """The shallowest module named ``encoder``: the ASR models' encoder, a TTS network's text encoder."""
    names = [n for n, _ in model.named_modules() if n.rpartition(".")[2] == "encoder"]
    if not names:
        raise ValueError(f"distill: {type(model).__name__} has no module named 'encoder' for the teacher to run")
    return min(names, key=lambda n: n.count("."))


class Distiller:
    """The frozen teacher, the hooks that run it beside the student, and the distillation loss."""

    def __init__(self, model, config, sites):
        modules = dict(model.named_modules())
        for entry in sites.entries:
            if entry not in modules:
                raise ValueError(f"distill: {type(model).__name__} has no module {entry!r} for the teacher to run")
            inner = [e for e in sites.entries if e != entry and _inside(e, entry)]
            if inner:
                raise ValueError(f"distill: teacher entry {inner[0]!r} lies inside entry {entry!r}")
        self.model, self.config, self.entries = model, config, tuple(sites.entries)
        self.teacher = _frozen_copy(model, self.entries)
        # Every module the teacher runs: its entry (which first call captures it) and twins.
        self._entry_of, self._twin = {}, {}
        for entry in self.entries:
            twins = self.teacher.get_submodule(entry).named_modules(prefix=entry)
            for (name, student), (_, twin) in zip(modules[entry].named_modules(prefix=entry), twins):
                self._entry_of[name], self._twin[id(student)] = entry, twin
        self.output = self._output(model, sites.output) if config.distill_outputs else None
        self.layers = self._layers(config.distill_layers) if config.distill_hidden_weight > 0 else []
        self._started = False
        self._reset(active=False)
        self._hooks = []
        for entry in self.entries:
            self._hooks.append(modules[entry].register_forward_pre_hook(functools.partial(self._enter, entry),
                                                                        with_kwargs=True))
            self._hooks.append(modules[entry].register_forward_hook(functools.partial(self._leave, entry)))
        for name in ([self.output] if self.output is not None else []) + self.layers:
            # prepended: an entry's own output is kept before its _leave ends the entry
            self._hooks.append(modules[name].register_forward_hook(functools.partial(self._keep, "student", name),
                                                                   prepend=True))
            self._hooks.append(self.teacher.get_submodule(name).register_forward_hook(
                functools.partial(self._keep, "teacher", name)))
        log.info("pinch: distill from the dense model: the teacher runs %s; outputs %s; hidden layers %s",
                 _where(self.entries), self.output or "off", ", ".join(self.layers) or "none")

    def _output(self, model, name):
        if name is None:
            raise ValueError(f"distill_outputs needs per-frame output log-probs (a CTC head that the training "
                             f"forward runs); pinch knows none in {type(model).__name__}: set distill_outputs: "
                             "false and name distill_layers")
        if name not in self._entry_of:
            raise ValueError(f"distill: output module {name!r} is outside what the teacher runs "
                             f"({_where(self.entries)})")
        return name

    def _layers(self, items):
        """Module names of ``distill_layers``: regular expressions on module names, or indices
        into the first entry's stack of blocks (``encoders``/``layers``)."""
        found = []
        for item in items:
            if isinstance(item, int):
                stack, blocks = _blocks(self.teacher, self.entries[0])
                if not -len(blocks) <= item < len(blocks):
                    raise ValueError(f"distill_layers: index {item} is outside the {len(blocks)} blocks of {stack!r}")
                matched = [blocks[item]]
            else:
                matched = [n for n in self._entry_of if re.fullmatch(item, n)]
                if not matched:
                    raise ValueError(f"distill_layers: pattern '{item}' matches no module the teacher runs "
                                     f"({_where(self.entries)})")
            found += [n for n in matched if n not in found]
        return found

    def start(self, step):
        """The pass's first training forward: the teacher takes the weights the pass starts from."""
        if step:
            raise ValueError(f"distill: the pass resumes at update {step}, but the teacher (the dense model of "
                             "update 0) is not kept in checkpoints; start the pass again from the dense model, "
                             "or resume it with distill_weight: 0")
        with torch.no_grad():
            for entry in self.entries:
                _load_weights(self.teacher.get_submodule(entry), self.model.get_submodule(entry))
        self._started = True

    def _reset(self, active):
        self._active, self._inside, self._teacher_out, self._done = active, None, None, set()
        self._captured = {"student": {}, "teacher": {}}
        self._twin_tensors = {}  # id(student tensor) -> (that tensor, the teacher's)

    def _enter(self, entry, module, args, kwargs):
        """Before the student's entry: its twin on the same inputs, earlier entries' outputs swapped
        for the teacher's. The teacher runs first so that its passing activations come before the
        student's entry adds the ones it keeps for the backward."""
        if entry == self.entries[0]:  # a forward of the model starts: training forwards run the teacher
            self._reset(active=self._started and module.training)
        if not self._active or entry in self._done:
            return
        self._inside = entry  # the entry's first call in this forward: its modules are captured
        swapped = []

        def swap(x):
            if isinstance(x, nn.Module):
                if id(x) not in self._twin:
                    raise ValueError(f"distill: the student's {entry!r} takes module {type(x).__name__}, "
                                     "which the teacher does not hold")
                return self._twin[id(x)]
            pair = self._twin_tensors.get(id(x)) if isinstance(x, torch.Tensor) else None
            if pair is not None and pair[0] is x:
                swapped.append(x)
                return pair[1]
            return x

        t_args, t_kwargs = tree_map(swap, (args, kwargs))
        if entry != self.entries[0] and not swapped:
            raise ValueError(f"distill: the teacher cannot follow the student into {entry!r}: none of its inputs "
                             f"is an output of {_where(self.entries[:self.entries.index(entry)])}")
        with torch.no_grad():
            self._teacher_out = self._twin[id(module)](*t_args, **t_kwargs)

    def _leave(self, entry, module, args, output):
        """After the student's entry: its outputs paired with the teacher's, for the entries that read them."""
        if self._inside != entry:
            return
        for s, t in zip(tree_leaves(output), tree_leaves(self._teacher_out)):
            if isinstance(s, torch.Tensor):
                self._twin_tensors[id(s)] = (s, t)
        self._done.add(entry)
        self._inside = self._teacher_out = None

    def _keep(self, side, name, module, args, output):
        store = self._captured[side]
        if self._inside == self._entry_of[name] and name not in store:
            store[name] = next((x for x in tree_leaves(output) if isinstance(x, torch.Tensor)), None)

    def loss(self):
        """``(weight * (kl + hidden_weight * hidden), stats)`` of the last training forward.

        kl: KL(teacher || student) of the output posteriors at ``distill_temperature``, times
        T^2, summed over classes and averaged over frames (padding frames included). hidden:
        per named layer, L1 or L2 plus (1 - cosine) over the last dimension, averaged over layers.
        """
        student, teacher = self._captured["student"], self._captured["teacher"]
        self._reset(active=False)  # the captured activations are not kept past this loss
        for name in ([self.output] if self.output is not None else []) + self.layers:
            for side, store in (("student", student), ("teacher", teacher)):
                if not isinstance(store.get(name), torch.Tensor):
                    raise RuntimeError(f"distill: no {side} output of {name!r} in the last training forward")
            if student[name].shape != teacher[name].shape:
                raise RuntimeError(f"distill: {name!r} gives the student {tuple(student[name].shape)} but the "
                                   f"teacher {tuple(teacher[name].shape)}")
        cfg, parts = self.config, {}
        total = 0.0
        if self.output is not None:
            t = cfg.distill_temperature
            log_s = F.log_softmax(student[self.output].float() / t, dim=-1)
            log_t = F.log_softmax(teacher[self.output].float() / t, dim=-1)
            parts["distill_kl"] = F.kl_div(log_s, log_t, log_target=True, reduction="none").sum(-1).mean() * t * t
            total = total + parts["distill_kl"]
        if self.layers:
            terms = []
            for name in self.layers:
                s, t = student[name].float(), teacher[name].float()
                distance = (s - t).abs().mean() if cfg.distill_hidden_loss == "l1" else (s - t).square().mean()
                terms.append(distance + 1 - F.cosine_similarity(s, t, dim=-1).mean())
            parts["distill_hidden"] = torch.stack(terms).mean()
            total = total + cfg.distill_hidden_weight * parts["distill_hidden"]
        total = cfg.distill_weight * total
        return total, {"loss_distill": total.detach(), **{k: v.detach() for k, v in parts.items()}}

    def remove(self):
        """Unhook the student (bake): the baked model runs no teacher."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []


def _inside(name, entry):
    return entry == "" or name.startswith(entry + ".")


def _where(entries):
    return ", ".join(repr(e) if e else "the whole model" for e in entries)


def _frozen_copy(model, entries):
    """The ungated entry modules, at their names, in eval mode and without gradients."""
    if entries == ("",):
        teacher = copy.deepcopy(model)
    else:
        teacher = nn.Module()
        for entry in entries:
            parent, (*path, last) = teacher, entry.split(".")
            for part in path:
                if part not in parent._modules:
                    parent.add_module(part, nn.Module())
                parent = parent._modules[part]
            parent.add_module(last, copy.deepcopy(model.get_submodule(entry)))
    return teacher.eval().requires_grad_(False)


def _load_weights(target, source):
    """``target``'s parameters and buffers become copies of ``source``'s, on their device and
    dtype (the toolkit moved the student after the copy was taken); gates leave the raw
    weights in place, so these are the dense ones."""
    tensors = {**dict(source.named_parameters()), **dict(source.named_buffers())}
    for name, tensor in [*target.named_parameters(), *target.named_buffers()]:
        tensor.data = tensors[name].detach().clone()


def _blocks(teacher, entry):
    """The longest stack of same-class blocks in ``entry`` (ESPnet ``encoders``, NeMo and Hugging
    Face ``layers``): its name and its blocks' names."""
    stacks = [(name, m) for name, m in teacher.get_submodule(entry).named_modules(prefix=entry)
              if isinstance(m, (nn.ModuleList, nn.Sequential)) and len(m) and len({type(c) for c in m}) == 1]
    if not stacks:
        raise ValueError(f"distill_layers: a layer index needs a stack of blocks in {_where([entry])}; "
                         "none found, name the layers by pattern")
    name, stack = max(stacks, key=lambda s: (len(s[1]), -s[0].count(".")))
    return name, [f"{name}.{k}" if name else k for k in stack._modules]
