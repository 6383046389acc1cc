"""pinch variants of NeMo's model classes, derived from the class a config or .nemo names.

No class is written per model family: ``pinch_class(EncDecRNNTBPEModel)`` is
``PinchMixin`` put before that class, made once per process. The classes pinch derives are
NeMo's ASR models (``ASRModel``) and TTS spectrogram generators (``SpectrogramGenerator``,
e.g. ``FastPitchModel``): both train through Lightning with a ``training_step`` that returns
the loss, which is where the penalty joins. A compressed .nemo keeps its own class's
``target`` and a ``pruning`` block; ``PinchX.restore_from`` builds the pinch class from it
(NeMo uses the calling class when it subclasses the target) and bake writes back exactly
``X``. Configs may also name ``pinch.nemo.models.Pinch<Name>`` for any class in
``nemo.collections.asr.models`` or ``nemo.collections.tts.models``.
"""
import functools
import importlib
import sys

from hydra.utils import get_class
from nemo.collections.asr.models import ASRModel, EncDecCTCModel, EncDecCTCModelBPE

from pinch.nemo.mixin import PinchMixin

PREFIX = "Pinch"
TTS_BASE = "nemo.collections.tts.models.base"  # defines SpectrogramGenerator


def compressible(cls):
    """Whether pinch derives a class from ``cls``: an ASRModel or a TTS SpectrogramGenerator.

    NeMo's TTS collection is not imported for this (seconds, and dependencies an ASR-only
    install lacks): a SpectrogramGenerator subclass exists only once its module is imported.
    """
    if not isinstance(cls, type):
        return False
    tts = sys.modules.get(TTS_BASE)
    return issubclass(cls, ASRModel) or (tts is not None and issubclass(cls, tts.SpectrogramGenerator))


@functools.cache
def pinch_class(nemo_cls):
    """The class that compresses ``nemo_cls`` (an ASRModel or SpectrogramGenerator subclass)
    and bakes back to it."""
    if isinstance(nemo_cls, type) and issubclass(nemo_cls, PinchMixin):
        return nemo_cls
    if not compressible(nemo_cls):
        raise ValueError(f"pinch.nemo compresses NeMo ASR models (ASRModel subclasses) and TTS spectrogram "
                         f"generators (SpectrogramGenerator subclasses, e.g. FastPitchModel); "
                         f"{getattr(nemo_cls, '__qualname__', nemo_cls)!r} is neither")
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


def _nemo_models(kind):
    try:
        return importlib.import_module(f"nemo.collections.{kind}.models")
    except ImportError:  # an install without the dependencies of NeMo's TTS collection
        return None


def __getattr__(name):
    """``pinch.nemo.models.Pinch<Name>`` for NeMo's ASR and TTS model classes, as configs and
    pickles name them."""
    if name.startswith(PREFIX):
        for kind in ("asr", "tts"):
            base = getattr(_nemo_models(kind), name[len(PREFIX):], None)
            if compressible(base):
                return pinch_class(base)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The two classes the NeMo recipe README's Python example uses, by name.
PinchEncDecCTCModel = pinch_class(EncDecCTCModel)
PinchEncDecCTCModelBPE = pinch_class(EncDecCTCModelBPE)
