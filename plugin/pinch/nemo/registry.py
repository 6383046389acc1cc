"""Let NeMo instantiate pinch classes named by ``_target_`` / ``target``.

NeMo 3.0 refuses any config target outside ``ALLOWED_TARGET_PREFIXES``, also when it
restores a .nemo file, so pinch's model and encoder classes need the ``pinch.`` prefix
on that list. The target must still pass NeMo's own type checks (a ModelPT or
torch.nn.Module subclass), so this widens nothing beyond pinch's own modules.
"""
from nemo.core.classes import common

PREFIX = "pinch."


def allow_pinch_targets():
    """Add ``pinch.`` to NeMo's allow-list once; calling again changes nothing."""
    if PREFIX not in common.ALLOWED_TARGET_PREFIXES:
        common.ALLOWED_TARGET_PREFIXES.append(PREFIX)
