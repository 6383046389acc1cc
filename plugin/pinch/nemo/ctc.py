"""NeMo's CTC models (character and BPE) with a ``model.pruning`` block."""
from hydra.utils import get_class
from nemo.collections.asr.models import EncDecCTCModel, EncDecCTCModelBPE

from pinch.nemo.mixin import PinchMixin


class PinchEncDecCTCModel(PinchMixin, EncDecCTCModel):
    """EncDecCTCModel that compresses itself during training; bakes back to EncDecCTCModel."""

    nemo_class = EncDecCTCModel


class PinchEncDecCTCModelBPE(PinchMixin, EncDecCTCModelBPE):
    """EncDecCTCModelBPE that compresses itself during training; bakes back to EncDecCTCModelBPE."""

    nemo_class = EncDecCTCModelBPE


PINCH_CLASSES = (PinchEncDecCTCModel, PinchEncDecCTCModelBPE)


def pinch_class_for(target):
    """The pinch class that compresses NeMo model class ``target`` (a config's class path)."""
    try:
        cls = get_class(target)
    except Exception as err:  # hydra wraps import errors of every kind
        raise ValueError(f"model target {target!r} cannot be imported: {err}") from None
    for pinch_cls in PINCH_CLASSES:
        if cls is pinch_cls or cls is pinch_cls.nemo_class:
            return pinch_cls
    names = ", ".join(c.nemo_class.__name__ for c in PINCH_CLASSES)
    raise ValueError(f"pinch.nemo compresses {names}; model target {target!r} is not one of them")
