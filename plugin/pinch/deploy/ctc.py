"""Greedy CTC decoding of a runtime's log-probabilities and the token table, toolkit-free."""
from pathlib import Path

import numpy as np


def read_tokens(path):
    """``tokens.txt`` (``piece id`` lines, ids 0..n-1, sherpa-onnx's format) as a list of pieces."""
    pieces = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.rsplit(" ", 1)
        if len(fields) != 2 or not fields[1].isdigit():
            raise ValueError(f"{path}:{lineno}: not a 'piece id' line: {line!r}")
        pieces[int(fields[1])] = fields[0]
    if sorted(pieces) != list(range(len(pieces))):
        raise ValueError(f"{path}: token ids are not 0..{len(pieces) - 1}")
    return [pieces[i] for i in range(len(pieces))]


def greedy_ctc(logprobs, length, blank):
    """Token ids of one utterance: the best label per frame, repeats merged, blanks dropped."""
    best = np.asarray(logprobs)[: int(length)].argmax(axis=-1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(t) for t in best[keep] if t != blank]


def pieces_to_text(pieces):
    """Sentencepiece pieces to words (``▁`` starts a word), as sentencepiece and sherpa-onnx do."""
    return " ".join("".join(pieces).replace("\u2581", " ").split())
