"""The pruning section of a toolkit config: one schema for ESPnet, NeMo and Python."""
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

from pinch.methods import METHODS

GRANULARITIES = ("unstructured", "structured")


@dataclass
class PruningConfig:
    """Keys of ``conf/pruning/*.yaml``; the same file serves both toolkits."""

    method: str = "sspg"
    target_sparsity: float = 0.65
    preset: Optional[str] = None
    targets: Optional[list] = None
    granularity: str = "unstructured"
    eta: float = 1000.0
    tau_start: float = 0.5
    tau_end: float = 0.01
    options: dict = field(default_factory=dict)  # method-specific extras (gmp's frequency...)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown pruning method {self.method!r}; known: {', '.join(METHODS)}")
        t = self.target_sparsity
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0 <= t < 1:
            raise ValueError(f"target_sparsity must be a number in [0, 1), got {t!r}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"unknown granularity {self.granularity!r}; use one of {GRANULARITIES}")
        if self.preset is None and not self.targets:
            raise ValueError("pruning config needs a preset or a list of target patterns")
        allowed = METHODS[self.method].options
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            raise ValueError(
                f"pruning method {self.method!r} has no option(s) {unknown}; it accepts {list(allowed) or 'none'}"
            )

    @classmethod
    def from_dict(cls, d):
        """Build from a YAML/Hydra mapping; unknown keys are an error that names them."""
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)} - {"options"}
        method = d.get("method", cls.method)
        extras = METHODS[method].options if method in METHODS else ()
        unknown = sorted(k for k in d if k not in names and k not in extras)
        if unknown:
            raise ValueError(
                f"unknown pruning key(s) {unknown}; known keys: {sorted(names)}"
                + (f" and, for method {method!r}, {list(extras)}" if extras else "")
            )
        options = {k: d.pop(k) for k in list(d) if k in extras and k not in names}
        if d.get("targets") is not None:
            d["targets"] = list(d["targets"])
        return cls(**d, options=options)

    @staticmethod
    def read_file(path):
        """The mapping of a pruning preset file (``conf/pruning/*.yaml``), unvalidated,
        so a toolkit can merge its own overrides before ``from_dict``."""
        import yaml

        try:
            with open(path, encoding="utf-8") as f:
                mapping = yaml.safe_load(f) or {}
        except OSError as err:
            raise ValueError(f"pruning preset {path}: cannot read ({err.strerror})") from None
        except yaml.YAMLError as err:
            raise ValueError(f"pruning preset {path}: not valid YAML ({err})") from None
        if not isinstance(mapping, dict):
            raise ValueError(f"pruning preset {path}: expected a mapping of pruning keys")
        return mapping

    def method_kwargs(self):
        """Keyword arguments of the method's constructor."""
        kwargs = dict(self.options)
        if self.method == "sspg":
            kwargs.update(eta=self.eta, tau_start=self.tau_start, tau_end=self.tau_end)
        return kwargs
