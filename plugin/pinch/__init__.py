"""pinch: one-pass compression of speech models with sparsity-aware self-pinching gates.

The names below load on first use (pinch.lazy), so commands that need no torch (scoring,
the results table) start without importing it. Importing pinch first turns the
dependencies' telemetry and Hub lookups off (pinch.offline), whichever of its modules is
imported and before any of them can import onnxruntime.
"""
from pinch.lazy import lazy_exports
from pinch.offline import quiet_environment

quiet_environment()

_EXPORTS = {
    "PruningConfig": "pinch.config",
    "bake": "pinch.export.bake",
    "bake_state_dict": "pinch.export.bake",
    "shrink": "pinch.export.shrink",
    "load_sparse": "pinch.export.sparse_format",
    "save_sparse": "pinch.export.sparse_format",
    "Pruner": "pinch.pruner",
    "PRESETS": "pinch.targets",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
