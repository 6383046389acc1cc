"""NeMo adapter: ASR model classes (CTC, RNNT, TDT, hybrid, AED) and TTS spectrogram
generators (FastPitch) with a ``model.pruning`` block, .nemo in and out.

Importing this package adds ``pinch.`` to NeMo's allow-list of config targets, so
Hydra configs (and .nemo files) may name pinch classes with ``_target_``/``target``.
"""
from pinch.offline import forbid_downloads
from pinch.nemo.registry import allow_pinch_targets

forbid_downloads()  # NeMo, like transformers, looks up the Hugging Face Hub unless told it is offline
allow_pinch_targets()

from pinch.nemo.archive import bake_nemo_model, check_nemo_file, nemo_config, save_nemo  # noqa: E402
from pinch.nemo.models import PinchEncDecCTCModel, PinchEncDecCTCModelBPE, pinch_class, pinch_class_for  # noqa: E402
from pinch.nemo.mixin import PinchMixin, pruning_config  # noqa: E402

__all__ = [
    "PinchEncDecCTCModel",
    "PinchEncDecCTCModelBPE",
    "PinchMixin",
    "allow_pinch_targets",
    "bake_nemo_model",
    "check_nemo_file",
    "nemo_config",
    "pinch_class",
    "pinch_class_for",
    "pruning_config",
    "save_nemo",
]
