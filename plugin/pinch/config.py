"""The pruning section of a toolkit config: one schema for ESPnet, NeMo and Python."""
import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Optional

from pinch.methods import METHODS
from pinch.methods.options import number, validate
from pinch.methods.sspg import SelfPinching
from pinch.targets.selection import preset_names

GRANULARITIES = ("unstructured", "structured")
# sspg's options are top-level keys, so every preset file has the same keys.
SSPG_KEYS = ("eta", "tau_start", "tau_end", "reach_at")
# Distillation from the dense model (pinch.distill), for every method; off at distill_weight 0.
DISTILL_KEYS = ("distill_weight", "distill_temperature", "distill_outputs", "distill_layers",
                "distill_hidden_weight", "distill_hidden_loss")
_DISTILL_NUMBERS = {"distill_weight": number(low=0), "distill_temperature": number(low=0, low_open=True),
                    "distill_hidden_weight": number(low=0)}


@dataclass
class PruningConfig:
    """Keys of ``conf/pruning/*.yaml``; the same file serves both toolkits."""

    method: str = "sspg"
    target_sparsity: float = 0.65
    preset: object = None  # a preset name, a list of names, or 'auto'
    targets: Optional[list] = None
    granularity: str = "unstructured"
    eta: object = "auto"  # "auto" (adaptive, the default) or a fixed number
    tau_start: float = 0.5
    tau_end: float = 0.01
    reach_at: float = 0.2
    distill_weight: float = 0.0
    distill_temperature: float = 1.0
    distill_outputs: bool = True
    distill_layers: list = field(default_factory=list)  # layer indices or module name patterns
    distill_hidden_weight: float = 1.0
    distill_hidden_loss: str = "l1"  # l1 | l2, each plus (1 - cosine)
    options: dict = field(default_factory=dict)  # method-specific extras (gmp's frequency...)

    def __post_init__(self):
        if not isinstance(self.method, str) or self.method not in METHODS:
            raise ValueError(f"unknown pruning method {self.method!r}; known: {', '.join(METHODS)}")
        t = self.target_sparsity
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0 <= t < 1:
            raise ValueError(f"target_sparsity must be a number in [0, 1), got {t!r}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"unknown granularity {self.granularity!r}; use one of {GRANULARITIES}")
        if self.preset is None and not self.targets:
            raise ValueError("pruning config needs a preset or a list of target patterns")
        if self.preset is not None and not (
            isinstance(self.preset, str)
            or (isinstance(self.preset, (list, tuple)) and self.preset and all(isinstance(p, str) for p in self.preset))
        ):
            raise ValueError(f"pruning key 'preset' must be a preset name or a list of names, got {self.preset!r}")
        preset_names(self.preset)  # an unknown name fails here, before a model is built
        if isinstance(self.preset, tuple):
            self.preset = list(self.preset)
        if self.targets is not None and not (
            isinstance(self.targets, (list, tuple)) and all(isinstance(t, str) for t in self.targets)
        ):
            raise ValueError(f"pruning key 'targets' must be a list of regular expressions, got {self.targets!r}")
        if self.targets is not None:
            self.targets = list(self.targets)
        # sspg's keys are checked whatever the method: every preset file carries them.
        for key, value in validate(SelfPinching.options, {k: getattr(self, k) for k in SSPG_KEYS}).items():
            setattr(self, key, value)
        self._check_distill()
        allowed = METHODS[self.method].options
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            raise ValueError(
                f"pruning method {self.method!r} has no option(s) {unknown}; it accepts {list(allowed) or 'none'}"
            )
        self.options = validate(allowed, self.options)

    def _check_distill(self):
        validate(_DISTILL_NUMBERS, {k: getattr(self, k) for k in _DISTILL_NUMBERS})
        if self.distill_hidden_loss not in ("l1", "l2"):
            raise ValueError(f"pruning key 'distill_hidden_loss' must be 'l1' or 'l2', "
                             f"got {self.distill_hidden_loss!r}")
        if not isinstance(self.distill_outputs, bool):
            raise ValueError(f"pruning key 'distill_outputs' must be true or false, got {self.distill_outputs!r}")
        layers = self.distill_layers
        if not isinstance(layers, (list, tuple)) or not all(
            isinstance(x, str) or (isinstance(x, int) and not isinstance(x, bool)) for x in layers
        ):
            raise ValueError(f"pruning key 'distill_layers' must be a list of layer indices or module name "
                             f"patterns, got {layers!r}")
        self.distill_layers = list(layers)
        for pattern in (x for x in layers if isinstance(x, str)):
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"pruning key 'distill_layers': {pattern!r} is not a regular expression "
                                 f"({err})") from None
        hidden = bool(layers) and self.distill_hidden_weight > 0
        if self.distill_weight > 0 and not (self.distill_outputs or hidden):
            raise ValueError(f"pruning key 'distill_weight' is {self.distill_weight} but nothing is distilled: set "
                             "distill_outputs: true, or name distill_layers with distill_hidden_weight > 0")

    @classmethod
    def from_dict(cls, d):
        """Build from a YAML/Hydra mapping; unknown keys are an error that names them."""
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)} - {"options"}
        method = d.get("method", cls.method)
        extras = METHODS[method].options if isinstance(method, str) and method in METHODS else {}
        unknown = sorted(k for k in d if k not in names and k not in extras)
        if unknown:
            raise ValueError(
                f"unknown pruning key(s) {unknown}; known keys: {sorted(names)}"
                + (f" and, for method {method!r}, {list(extras)}" if extras else "")
            )
        options = {k: d.pop(k) for k in list(d) if k in extras and k not in names}
        return cls(**d, options=options)

    @classmethod
    def template(cls, method="sspg"):
        """Every key a user may set for ``method``, at its default: what ``--print_config``
        shows (the method's own options take their constructor's defaults)."""
        import inspect

        keys = {f.name: f.default_factory() if f.default is dataclasses.MISSING else f.default
                for f in dataclasses.fields(cls) if f.name not in ("method", "options")}
        signature = inspect.signature(METHODS[method].__init__).parameters
        keys.update({k: signature[k].default for k in METHODS[method].options if k not in keys})
        return {"method": method, **keys}

    @staticmethod
    def read_file(path):
        """The mapping of a pruning preset file (``conf/pruning/*.yaml``), unvalidated,
        so a toolkit can merge its own overrides before ``from_dict``."""
        import yaml

        try:
            with open(path, encoding="utf-8") as f:
                mapping = yaml.safe_load(f)
        except OSError as err:
            raise ValueError(f"pruning preset {path}: cannot read ({err.strerror})") from None
        except yaml.YAMLError as err:
            raise ValueError(f"pruning preset {path}: not valid YAML ({err})") from None
        if not isinstance(mapping, dict) or not mapping:
            raise ValueError(f"pruning preset {path}: expected a mapping of pruning keys, found "
                             f"{'nothing' if not mapping else type(mapping).__name__}")
        if not mapping.get("method"):
            raise ValueError(f"pruning preset {path}: no 'method' (one of {', '.join(METHODS)}); "
                             "a preset file must name its method")
        return mapping

    def method_kwargs(self):
        """Keyword arguments of the method's constructor."""
        kwargs = dict(self.options)
        if self.method == "sspg":
            kwargs.update({k: getattr(self, k) for k in SSPG_KEYS})
        return kwargs

    def distill_kwargs(self):
        """The distillation keys, as ``Pruner`` takes them."""
        return {k: getattr(self, k) for k in DISTILL_KEYS}


def variant(pruning):
    """What sets a pass apart from its method at its preset's counts, for the results row and
    the sweep's label (``rows cost``, ``block gates``, ``settled``, ``distilled``; None: nothing): the
    structured search runs one method in these variants side by side. ``pruning``: the pass's
    pruning mapping."""
    parts = []
    if pruning.get("group_cost") == "rows":
        parts.append("rows cost")
    if pruning.get("block_gates"):
        parts.append("block gates")
    if float(pruning.get("settle_at") or 1) < 1:
        parts.append("settled")
    if float(pruning.get("distill_weight") or 0) > 0:
        parts.append("distilled")
    return ", ".join(parts) or None
