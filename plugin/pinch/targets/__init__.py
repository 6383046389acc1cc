"""Which weights get gated: module-name patterns and named architecture presets."""
from pinch.targets.presets import PRESETS, Preset
from pinch.targets.selection import Target, select_structured, select_targets

__all__ = ["PRESETS", "Preset", "Target", "select_structured", "select_targets"]
