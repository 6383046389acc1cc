"""How much of a model the gates cover.

A preset written for one architecture can match a fraction of another's (``conformer`` on
an E-Branchformer gates its FFNs only) while training still reports the target sparsity
over what it gated. So gating says what it covers, and warns when it is less than half of
the encoder's matrix weights, naming the kinds of matrices it left out.
"""
import re
from collections import Counter
from dataclasses import dataclass

WARN_BELOW = 0.5
ENCODER = "encoder"


@dataclass(frozen=True)
class Coverage:
    matrices: int  # gated weight tensors
    gated: int  # gated weights
    params: int  # every parameter of the model (thresholds excluded)
    encoder: str  # the encoder's name prefix ('' when the model is the encoder)
    encoder_weights: int  # weights of the encoder's gateable matrices
    encoder_gated: int
    missed: tuple  # (kind, weights) of the encoder's matrices left ungated, largest first

    @property
    def encoder_share(self):
        return self.encoder_gated / self.encoder_weights if self.encoder_weights else 0.0

    def summary(self):
        where = f"'{self.encoder.rstrip('.')}'" if self.encoder else "the model"
        return (f"gates {self.matrices} matrices, {self.gated:,} weights: {self.gated / max(self.params, 1):.1%} "
                f"of the model's {self.params:,} parameters, {self.encoder_share:.1%} of the matrix weights "
                f"of {where}")

    def warning(self):
        """The warning for a preset that misses most of the encoder, or None."""
        if self.encoder_share >= WARN_BELOW:
            return None
        kinds = ", ".join(f"{kind} ({n:,})" for kind, n in self.missed[:6])
        return (f"the gates cover only {self.encoder_share:.1%} of the encoder's matrix weights; not gated: "
                f"{kinds}. Choose the preset of this architecture (or preset: auto) or add target patterns")


def kind_of(name):
    """``encoders.3.attn.linear_q.weight`` -> ``encoders.*.attn.linear_q``: one kind per block position."""
    return re.sub(r"(^|\.)\d+(?=\.|$)", r"\1*", name.rsplit(".", 1)[0] if name.endswith("weight") else name)


def encoder_prefix(names):
    """The shallowest ``...encoder.`` prefix among parameter names; '' if there is none."""
    prefixes = {n[: m.end()] for n in names for m in [re.match(rf"(?:[^.]+\.)*?{ENCODER}\.", n)] if m}
    return min(prefixes, key=lambda p: (p.count("."), p)) if prefixes else ""


def measure(matrices, gated, params):
    """Coverage from ``{weight name: size}`` of the gateable matrices, the gated names and the
    parameter count: the same for a live model and for a checkpoint's state dict."""
    gated = set(gated)
    prefix = encoder_prefix(matrices)
    encoder = {n: size for n, size in matrices.items() if n.startswith(prefix)}
    missed = Counter()
    for name, size in encoder.items():
        if name not in gated:
            missed[kind_of(name[len(prefix):])] += size
    return Coverage(
        matrices=len(gated), gated=sum(matrices.get(n, 0) for n in gated), params=params, encoder=prefix,
        encoder_weights=sum(encoder.values()), encoder_gated=sum(s for n, s in encoder.items() if n in gated),
        missed=tuple(missed.most_common()),
    )
