"""Sentences a TTS model can speak: every character in its token list, none empty.

Why: espnet2 and NeMo map a character outside the token list to <unk> (or drop it)
without a word, and an empty line stops a whole synthesis job. Checking the sentences first
names each bad line and lets the others be synthesized.
"""
from __future__ import annotations

from pathlib import Path

from .atomic import atomic_file
from .reading import read_text


def sentence_problem(text: str, symbols: set[str], space: str = "<space>") -> str | None:
    """Why `text` cannot be synthesized with character tokens `symbols`, or None."""
    if not text.strip():
        return "empty sentence"
    unknown = sorted({c for c in text if (space if c == " " else c) not in symbols})
    if unknown:
        return "characters not in the token list: " + " ".join(repr(c) for c in unknown)
    return None


def check_tts_text(text_path: Path, token_list: Path, out_text: Path, bad: Path,
                   space: str = "<space>") -> tuple[int, list[str]]:
    """Copy the speakable lines of a Kaldi `text` to `out_text`; list the others in `bad`.

    Returns (lines kept, problems as "uttid: reason"). Raises ValueError if none is kept.
    """
    symbols = set(read_text(token_list).split())
    if not symbols:
        raise ValueError(f"{token_list}: empty token list")
    lines = read_text(text_path).splitlines()
    if not lines:
        raise ValueError(f"{text_path}: empty: no sentences")
    kept, problems = [], []
    for lineno, line in enumerate(lines, 1):
        utt, _, sentence = line.strip().partition(" ")
        if not utt:
            problems.append(f"{text_path}:{lineno}: empty line")
            continue
        problem = sentence_problem(sentence.strip(), symbols, space)
        if problem:
            problems.append(f"{utt}: {problem}")
        else:
            kept.append(f"{utt} {sentence.strip()}\n")
    if not kept:
        raise ValueError(f"{text_path}: no sentence can be synthesized with {token_list}: "
                         + "; ".join(problems[:3]))
    with atomic_file(out_text) as kept_tmp, atomic_file(bad) as bad_tmp:  # both files or neither
        kept_tmp.write_text("".join(kept), encoding="utf-8")
        bad_tmp.write_text("".join(p + "\n" for p in problems), encoding="utf-8")
    return len(kept), problems
