"""A checkpoint that runs code when unpickled: every pinch entry point must read it as data."""
import os

import torch


class CreatesFile:
    """Unpickling this calls ``os.system`` (what ``torch.load(weights_only=False)`` would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_evil_checkpoint(path, marker, keys=("encoder.weight",)):
    """A .pth whose load would create ``marker``; returns ``path``."""
    torch.save({k: CreatesFile(marker) for k in keys}, path)
    return path
