"""Entry points of the NeMo recipe (NeMo's examples/ are not in its wheel)."""
