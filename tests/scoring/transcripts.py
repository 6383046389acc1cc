"""Seeded reference/hypothesis Kaldi text files with controlled errors."""
import random
from pathlib import Path

WORDS = "turn on the kitchen light set a timer for five minutes call alice play jazz".split()


def references(n: int, seed: int = 0) -> dict[str, str]:
    rng = random.Random(seed)
    return {f"spk{i % 4}-utt{i:03d}": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
            for i in range(n)}


def corrupt(refs: dict[str, str], rate: float, seed: int) -> dict[str, str]:
    """Substitute, delete or insert each word with probability `rate`."""
    rng = random.Random(seed)
    hyps = {}
    for utt, text in refs.items():
        out = []
        for w in text.split():
            r = rng.random()
            if r < rate / 3:
                out.append(rng.choice(WORDS + ["zebra"]))
            elif r < 2 * rate / 3:
                continue
            elif r < rate:
                out += [w, rng.choice(WORDS)]
            else:
                out.append(w)
        hyps[utt] = " ".join(out)
    return hyps


def write_text(path: Path, table: dict[str, str]) -> Path:
    path.write_text("".join(f"{k} {v}".rstrip() + "\n" for k, v in sorted(table.items())))
    return path
