"""WER against measured sparsity, a panel per test set and a line per toolkit and method.

Why: a sweep (``--sweep "0.5 0.65 0.8"``, several methods) is read as a curve that starts
at the dense model; the table gives the numbers, the plot shows where WER starts to rise.
Each curve starts at the dense model trained as long as the compressed ones (the dense
control) where the toolkit has one: from the shorter-trained dense model, extra epochs
would look like pruning improving accuracy.
"""
from __future__ import annotations

from pathlib import Path

from pinch.data.atomic import atomic_file

from .results import REFERENCES


def wer_curves(newest: dict[tuple, dict], rate: str = "wer",
               sparsity: str = "sparsity") -> dict[str, dict[tuple[str, str], list[tuple[float, float]]]]:
    """test set -> (toolkit, method) -> [(sparsity, WER)] sorted by sparsity, each line
    starting (sparsity 0) at its toolkit's preferred reference: the dense control, else dense.
    ``rate`` and ``sparsity`` name the row keys (TTS: "cer", "encoder_sparsity")."""
    curves: dict[str, dict] = {}
    dense = {}
    for ref in reversed(REFERENCES):  # the preferred reference written last wins
        dense.update({(tk, s): wer for (m, _, tk), r in newest.items() if m == ref
                      for s, wer in (r.get(rate) or {}).items()})
    for (method, _, toolkit), row in newest.items():
        if method in REFERENCES or row.get(sparsity) is None:
            continue
        for test_set, wer in (row.get(rate) or {}).items():
            line = curves.setdefault(test_set, {}).setdefault((toolkit, method), [])
            if not line and (toolkit, test_set) in dense:
                line.append((0.0, dense[toolkit, test_set]))
            line.append((row[sparsity], wer))
    for lines in curves.values():
        for line in lines.values():
            line.sort()
    return curves


def plot_wer_vs_sparsity(newest: dict[tuple, dict], out: Path, rate: str = "wer", rate_name: str = "WER",
                         sparsity: str = "sparsity") -> dict:
    """Write the plot to ``out`` (PNG, atomically); returns the curves drawn."""
    curves = wer_curves(newest, rate, sparsity)
    if not curves:
        raise ValueError(f"no compressed row with a measured sparsity and a {rate_name} to plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), squeeze=False)
    for ax, (test_set, lines) in zip(axes[0], sorted(curves.items())):
        for (toolkit, method), points in sorted(lines.items()):
            xs, ys = zip(*points)
            ax.plot([100 * x for x in xs], ys, marker="o", label=f"{toolkit} {method}")
        ax.set(title=test_set, xlabel=f"sparsity ({sparsity}, %)", ylabel=f"{rate_name} (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return curves
