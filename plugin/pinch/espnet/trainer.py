"""espnet2's trainer, resuming only from a checkpoint that was written whole.

espnet2 writes ``checkpoint.pth`` in place at the end of every epoch. A run killed while
it writes leaves a truncated file, and ``--resume true`` (the default in a recipe rerun)
then stops on ``EOFError``/``PytorchStreamReader`` with no way forward. torch writes
checkpoints as zip archives whose directory is written last, so a file without one was
not finished: it is kept aside under a new name and the training starts over, with a
warning that says so. pinch's tasks check on resume; the ESPnet recipe checks before
espnet2's own entry points (dense training, the dense control) with
``python -m pinch.espnet.trainer CHECKPOINT``.
"""
import logging
import sys
import zipfile
from pathlib import Path


def set_aside_if_incomplete(checkpoint):
    """Rename `checkpoint` if it was not written whole; True if it was set aside."""
    checkpoint = Path(checkpoint)
    if not checkpoint.exists() or zipfile.is_zipfile(checkpoint):
        return False
    kept = _free_name(checkpoint.with_name(checkpoint.name + ".incomplete"))
    checkpoint.rename(kept)
    logging.warning(
        f"{checkpoint} is incomplete (the previous run stopped while writing it); "
        f"kept as {kept.name}. The training starts again from its first epoch.")
    return True


class ResumeFromCompleteCheckpoint:
    """Mixed in before an espnet2 trainer class (``Trainer``, ``GANTrainer``)."""

    @classmethod
    def resume(cls, checkpoint, **kwargs):
        if not set_aside_if_incomplete(checkpoint):
            super().resume(checkpoint=checkpoint, **kwargs)


def with_checked_resume(trainer):
    """``trainer`` with ResumeFromCompleteCheckpoint in front of it."""
    if issubclass(trainer, ResumeFromCompleteCheckpoint):
        return trainer
    return type(trainer.__name__, (ResumeFromCompleteCheckpoint, trainer), {})


def _free_name(path):
    candidate, n = path, 1
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}.{n}"), n + 1
    return candidate


if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")
    for path in sys.argv[1:]:
        set_aside_if_incomplete(path)
