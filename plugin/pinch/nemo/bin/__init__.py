"""Entry points of the NeMo recipe (NeMo's examples/ are not in its wheel)."""
from pinch.offline import forbid_downloads

forbid_downloads()
