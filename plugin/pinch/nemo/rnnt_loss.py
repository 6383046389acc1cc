"""torchaudio's RNN-T loss inside NeMo's ``RNNTLoss``, for transducers trained on a CPU.

NeMo's standard RNN-T loss (``warprnnt_numba``) has a CPU path that took 5.5-7.7 s for
forward and backward of a 16 x 54 x 17 x 65 joint on this project's 2-core machine, where
``torchaudio.functional.rnnt_loss`` took 0.06-0.10 s for the same value (268.05 both):
a transducer recipe would spend hours in the loss. It is the same loss (log-likelihood
summed over alignments, blank last, log-softmax over the joint), so only the function
inside NeMo's wrapper is swapped: NeMo still reduces it, and the model's config, and so
every .nemo it writes, still names NeMo's own loss.
"""
import logging

import torch
import torchaudio
from nemo.collections.asr.losses.rnnt import RNNTLoss

log = logging.getLogger(__name__)

# NeMo's name of the loss this replaces; the others (TDT, multi-blank, graph losses) are
# different losses torchaudio does not have.
REPLACES = "warprnnt_numba"
IMPLS = ("auto", "nemo", "torchaudio")


class TorchaudioRNNTLoss(torch.nn.Module):
    """The per-utterance loss NeMo's ``RNNTLoss`` expects from its inner function."""

    def __init__(self, blank):
        super().__init__()
        self.blank = blank
        self.reduction = None  # NeMo's wrapper sets and restores it; it reduces itself

    def forward(self, acts, labels, act_lens, label_lens):
        return torchaudio.functional.rnnt_loss(
            acts.float(), labels.int(), act_lens.int(), label_lens.int(), blank=self.blank, reduction="none")


def choose_rnnt_loss(model, impl, on_cpu):
    """Put torchaudio's loss in ``model`` where ``impl`` asks for it; returns the one used.

    ``auto``: torchaudio on a CPU when the model uses NeMo's standard RNN-T loss, NeMo's
    own otherwise. ``torchaudio`` insists (an error if the model's loss is another one).
    """
    if impl not in IMPLS:
        raise ValueError(f"rnnt_loss_impl must be one of {', '.join(IMPLS)}, not {impl!r}")
    name, kwargs = None, None
    if isinstance(getattr(model, "loss", None), RNNTLoss):
        name, kwargs = model.extract_rnnt_loss_cfg(model.cfg.get("loss", None))
    if impl == "nemo" or (impl == "auto" and (not on_cpu or name != REPLACES)):
        return "nemo"
    if name != REPLACES:
        what = "has no RNN-T loss" if name is None else f"uses NeMo's {name!r} loss"
        raise ValueError(f"rnnt_loss_impl=torchaudio replaces NeMo's standard RNN-T loss ({REPLACES}); "
                         f"{type(model).__name__} {what}, which torchaudio does not compute")
    extra = {k: v for k, v in dict(kwargs or {}).items() if k in ("fastemit_lambda", "clamp") and v not in (0, 0.0, -1, -1.0)}
    if extra:
        raise ValueError(f"rnnt_loss_impl=torchaudio: torchaudio's loss has no {', '.join(sorted(extra))} "
                         f"(the model's loss sets {extra}); use rnnt_loss_impl=nemo")
    model.loss._loss = TorchaudioRNNTLoss(blank=model.loss._blank)
    log.info("pinch: RNN-T loss computed by torchaudio (NeMo's %s, same value; its CPU path is "
             "55-130x slower here); the model's config still names NeMo's loss", REPLACES)
    return "torchaudio"
