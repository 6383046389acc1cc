"""pinch variants of NeMo's ASR model classes, derived from the class a config or .nemo names.

No class is written per model family: ``pinch_class(EncDecRNNTBPEModel)`` is
``PinchMixin`` put before that class, made once per process. A compressed .nemo keeps
its own class's ``target`` and a ``pruning`` block; ``PinchX.restore_from`` builds the
pinch class from it (NeMo uses the calling class when it subclasses the target) and bake
writes back exactly ``X``. Configs may also name ``pinch.nemo.models.Pinch<Name>`` for any
class in ``nemo.collections.asr.models``.
"""
import functools

from hydra.utils import get_class
from nemo.collections.asr import models as nemo_asr_models
from nemo.collections.asr.models import ASRModel, EncDecCTCModel, EncDecCTCModelBPE

from pinch.nemo.mixin import PinchMixin

PREFIX = "Pinch"


@functools.cache
def pinch_class(nemo_cls):
    """The class that compresses ``nemo_cls`` (an ASRModel subclass) and bakes back to it."""
    if isinstance(nemo_cls, type) and issubclass(nemo_cls, PinchMixin):
        return nemo_cls
    if not (isinstance(nemo_cls, type) and issubclass(nemo_cls, ASRModel)):
        raise ValueError(f"pinch.nemo compresses NeMo ASR models (ASRModel subclasses); "
                         f"{getattr(nemo_cls, '__qualname__', nemo_cls)!r} is not one")
    return type(f"{PREFIX}{nemo_cls.__name__}", (PinchMixin, nemo_cls), {
        "__module__": __name__,
        "__doc__": f"{nemo_cls.__name__} that compresses itself during training; bakes back to it.",
        "nemo_class": nemo_cls,
    })


def pinch_class_for(target):
    """The pinch class for the NeMo model class path ``target`` (a config's ``target``)."""
    if not target:
        raise ValueError("the model config names no class: set 'target' to the NeMo model class, e.g. "
                         "nemo.collections.asr.models.EncDecRNNTBPEModel (pinch does not guess it from "
                         "the config's keys)")
    try:
        cls = get_class(target)
    except Exception as err:  # hydra wraps import errors of every kind
        raise ValueError(f"model target {target!r} cannot be imported: {err}") from None
    return pinch_class(cls)


def __getattr__(name):
    """``pinch.nemo.models.Pinch<Name>`` for NeMo's ASR classes, as configs and pickles name them."""
    base = getattr(nemo_asr_models, name[len(PREFIX):], None) if name.startswith(PREFIX) else None
    if isinstance(base, type) and issubclass(base, ASRModel):
        return pinch_class(base)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The two classes the README's Python example uses, by name.
PinchEncDecCTCModel = pinch_class(EncDecCTCModel)
PinchEncDecCTCModelBPE = pinch_class(EncDecCTCModelBPE)
