"""pinch: one-pass compression of speech models with sparsity-aware self-pinching gates."""
from pinch.config import PruningConfig
from pinch.export.bake import bake, bake_state_dict
from pinch.export.shrink import shrink
from pinch.export.sparse_format import load_sparse, save_sparse
from pinch.pruner import Pruner
from pinch.targets import PRESETS

__all__ = ["PRESETS", "Pruner", "PruningConfig", "bake", "bake_state_dict", "load_sparse", "save_sparse", "shrink"]
__version__ = "0.1.0"
