"""The one object a training loop talks to, whatever the method."""
import logging

import torch

from pinch.config import DISTILL_KEYS, SSPG_KEYS, PruningConfig
from pinch.distill import Distiller, DistillSites
from pinch.gates import iter_gates
from pinch.gates.gate import THRESHOLD_SUFFIX
from pinch.methods import METHODS
from pinch.sparsity import report_from_groups, report_from_masks
from pinch.targets import select_structured, select_targets
from pinch.targets.coverage import measure
from pinch.targets.selection import gateable_weights, resolve_presets

log = logging.getLogger(__name__)

STEP_BUFFER = "pinch_steps"


class Clock:
    """Counts real optimizer updates in a model buffer, so checkpoints carry it.

    The step is read from the buffer only when the buffer changed (its version counter, which
    ``advance`` and a loaded state dict bump): every gate asks for tau in every forward, and
    reading a GPU buffer would wait for the device each time.
    """

    def __init__(self, model, total_steps):
        self.model, self.total_steps = model, total_steps
        self._seen, self._step = None, 0

    @property
    def step(self):
        buffer = getattr(self.model, STEP_BUFFER)
        if self._seen != (id(buffer), buffer._version):
            self._seen, self._step = (id(buffer), buffer._version), int(buffer)
        return self._step

    def advance(self):
        getattr(self.model, STEP_BUFFER).add_(1)


class Pruner:
    """Attach a pruning method to ``model``; call ``penalty()`` and ``step()`` while training.

    Build it before the optimizer: thresholds are parameters the optimizer must own.
    With ``distill_weight > 0`` it also holds the dense model as teacher (``pinch.distill``;
    ``distill_sites`` says where it runs, the default suits a model that returns logits).
    """

    def __init__(self, model, method="sspg", target_sparsity=0.65, targets=None, preset=None,
                 total_steps=None, granularity="unstructured", distill_sites=None, **options):
        self.config = PruningConfig(method=method, target_sparsity=target_sparsity, preset=preset,
                                    targets=targets, granularity=granularity,
                                    **{k: options.pop(k) for k in SSPG_KEYS + DISTILL_KEYS if k in options},
                                    options=options)
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be a positive int (the planned optimizer updates), got {total_steps!r}")
        if any(True for _ in iter_gates(model)) or hasattr(model, STEP_BUFFER):
            raise ValueError(f"{type(model).__name__} already has pinch gates or state; bake it first")
        # 'auto' resolved once: the presets the gates came from, for shrink and the logs.
        self.presets = resolve_presets(model, preset)
        names = [p.name for p in self.presets]
        if granularity == "structured":
            if method != "sspg":
                raise ValueError(f"structured granularity is implemented for sspg only, not {method!r}")
            found = select_structured(model, names, blocks=bool(self.config.options.get("block_gates")))
        else:
            found = select_targets(model, names, targets)
        self.coverage = measure(gateable_weights(model), [t.qualified_name for t in found],
                                sum(p.numel() for p in model.parameters()))
        log.info("pinch: %s", self.coverage.summary())
        # Structured gates govern more matrices than they sit on (an FFN's second matrix, the
        # heads' q/k/out): their coverage is not comparable, so only unstructured gates warn.
        warning = self.coverage.warning() if granularity != "structured" else None
        if warning:
            log.warning("pinch: %s", warning)
        # Before any gate or pinch buffer: the teacher copies the modules as the toolkit built them.
        self.distiller = (Distiller(model, self.config, distill_sites or DistillSites())
                          if self.config.distill_weight > 0 else None)
        self.model = model
        model.register_buffer(STEP_BUFFER, torch.zeros((), dtype=torch.long))
        self.clock = Clock(model, total_steps)
        self.method = METHODS[method](found, self.config.target_sparsity, self.clock, granularity,
                                      **self.config.method_kwargs())
        model._pinch_pruner = self
        self._started = False
        # First of the model's pre-hooks: the teacher's hooks on a model that is its own entry
        # need the pass started.
        self._start_hook = model.register_forward_pre_hook(self._start_on_training_forward, prepend=True)

    @classmethod
    def from_config(cls, model, config, total_steps, distill_sites=None):
        """From a ``PruningConfig`` or the mapping in a toolkit's YAML."""
        if not isinstance(config, PruningConfig):
            config = PruningConfig.from_dict(config)
        return cls(model, method=config.method, target_sparsity=config.target_sparsity, targets=config.targets,
                   preset=config.preset, total_steps=total_steps, granularity=config.granularity,
                   distill_sites=distill_sites, **config.method_kwargs(), **config.distill_kwargs())

    def _start_on_training_forward(self, module, args):
        if module.training:
            self.start()

    def start(self):
        """Run the method's start (one-shot masks, eta state) on the weights now loaded."""
        if not self._started:
            self._started = True
            self._start_hook.remove()
            if self.distiller is not None:  # before a one-shot method zeroes weights
                self.distiller.start(self.clock.step)
            self.method.start()

    @property
    def target_sparsity(self):
        return self.config.target_sparsity

    def penalty(self):
        """The method's regulariser, to add to the task loss (zero where it has none)."""
        self.start()
        value = self.method.penalty()
        if not torch.isfinite(value):
            raise FloatingPointError(f"pinch {self.config.method} penalty is {value.item()}")
        return value

    def distillation(self):
        """``(loss, stats)`` of distillation for the last training forward, to add to the task
        loss; None without it (``distill_weight: 0``)."""
        return None if self.distiller is None else self.distiller.loss()

    def step(self):
        """After each real optimizer update: advance schedules, re-apply masks, switch eta."""
        self.start()
        self.clock.advance()
        self.method.after_step()

    def sparsity(self):
        params = ((n, p) for n, p in self.model.named_parameters() if not n.endswith(THRESHOLD_SUFFIX))
        if self.config.granularity == "structured":  # groups count the weights shrink removes with them
            return report_from_groups(((t.qualified_name, g.groups, int(g.kept_groups().sum()),
                                        t.layout.charge(g.weight, g.groups))
                                       for g, t in zip(self.method.gates, self.method.targets)), params)
        return report_from_masks(self.method.keep_masks(), params)

    def stats(self):
        """Scalars for the toolkit's logger."""
        return {"sparsity": self.method.measured_sparsity(), **self.method.stats()}
