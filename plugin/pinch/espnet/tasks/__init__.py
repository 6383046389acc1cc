"""espnet2 task subclasses that accept a pruning section."""
