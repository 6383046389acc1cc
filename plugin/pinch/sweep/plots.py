"""The report's figures (matplotlib, Agg): one function per figure, each writes a PNG."""
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pinch.scoring.training_record import per_interval  # noqa: E402

BLOCK = re.compile(r"^(.*?)\.(\d+)\.(.+?)(?:\.weight)?$")


def _grid(nrows, ncols, width=4.2, height=3.2):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes


def wer_vs_sparsity(sweep, out):
    """WER against target sparsity, a line per method; filled markers are lossless against the
    dense model (MAPSSWE), hollow ones significantly worse; the dense model and the dense
    control as horizontal lines; bars span the seeds where a point was repeated."""
    toolkits = sorted(sweep.runs)
    fig, axes = _grid(len(toolkits), len(sweep.test_sets))
    colors = dict(zip(sweep.labels(), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    for i, tk in enumerate(toolkits):
        refs = sweep.references.get(tk, {})
        for j, test_set in enumerate(sweep.test_sets):
            ax = axes[i][j]
            for name, style in (("dense", "-"), ("dense_finetune", "--")):
                if name in refs:
                    ax.axhline(refs[name]["wer"][test_set], color="grey", linestyle=style, linewidth=1,
                               label=name.replace("_", " "))
            for label in sweep.labels(tk):
                xs, ys, lo, hi, full = [], [], [], [], []
                for target in sweep.targets():
                    run = sweep.base(tk, label, target)
                    if run is None:
                        continue
                    wers = [r.row["wer"][test_set] for r in sweep.repeats(tk, label, target)]
                    xs.append(target)
                    ys.append(run.row["wer"][test_set])
                    lo.append(ys[-1] - min(wers))
                    hi.append(max(wers) - ys[-1])
                    full.append(bool(run.lossless(test_set, "dense")))
                if not xs:
                    continue
                c = colors[label]
                ax.errorbar(xs, ys, yerr=[lo, hi], color=c, label=label, linewidth=1.2, capsize=2)
                ax.scatter(xs, ys, s=28, zorder=3, edgecolors=c,
                           facecolors=[c if f else "white" for f in full])
            ax.set_title(f"{tk}: {test_set}")
            ax.set_xlabel("target sparsity")
            ax.set_ylabel("WER %")
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.suptitle("WER vs sparsity (filled: lossless vs dense, MAPSSWE p >= 0.05)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _allocation(layers):
    """Per-layer sparsity as a (kinds x blocks) array, with the kinds and blocks."""
    cells = {}
    for name, value in layers.items():
        m = BLOCK.match(name)
        if m:
            cells[(m.group(3), int(m.group(2)))] = value
    kinds = sorted({k for k, _ in cells})
    blocks = sorted({b for _, b in cells})
    grid = np.full((len(kinds), len(blocks)), np.nan)
    for (k, b), v in cells.items():
        grid[kinds.index(k), blocks.index(b)] = v
    return grid, kinds, blocks


def allocation(sweep, target, out, labels=("sspg", "global_magnitude")):
    """Per-layer sparsity (block x matrix kind) of each label's run at ``target``: what sspg
    learnt beside what one global magnitude threshold gives; uniform pruning (ump) puts
    ``target`` in every cell."""
    panels = []
    for tk in sorted(sweep.runs):
        for label in labels:
            run = sweep.base(tk, label, target)
            details = run.details if run else None
            if details and details.get("layers"):
                panels.append((f"{tk}: {label} at {target:.0%}", *_allocation(details["layers"])))
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    for ax, (title, grid, kinds, blocks) in zip(axes[0], panels):
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(blocks)), [str(b) for b in blocks])
        ax.set_yticks(range(len(kinds)), kinds, fontsize=7)
        ax.set_xlabel("block")
        ax.set_title(title, fontsize=9)
        for (r, c), v in np.ndenumerate(grid):
            if not np.isnan(v):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v < 0.5 else "black")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="sparsity")
    fig.suptitle(f"Per-layer sparsity at {target:.0%} (uniform: {target:.2f} in every cell)")
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def schedule(sweep, out, label="sspg"):
    """Sparsity, eta and tau over the updates of each ``label`` run (unseeded), per toolkit."""
    toolkits = sorted(sweep.runs)
    fig, axes = _grid(3, len(toolkits), width=4.6, height=2.6)
    drawn = False
    for j, tk in enumerate(toolkits):
        for target in sweep.targets():
            run = sweep.base(tk, label, target)
            history = ((run.details if run else None) or {}).get("history") or {}
            for i, tag in enumerate(("sparsity", "eta", "tau")):
                if tag in history:
                    steps, _, values = zip(*per_interval(history[tag]))
                    axes[i][j].plot(steps, values, label=f"{target:.0%}", linewidth=1)
                    drawn = True
        for i, tag in enumerate(("sparsity", "eta", "tau")):
            axes[i][j].set_ylabel(tag)
            axes[i][j].grid(alpha=0.3)
        axes[1][j].set_yscale("log")
        axes[0][j].set_title(f"{tk}: {label}")
        axes[2][j].set_xlabel("optimizer update")
        axes[0][j].legend(fontsize=7, title="target", title_fontsize=7)
    fig.tight_layout()
    if drawn:
        fig.savefig(out, dpi=110)
    plt.close(fig)
    return drawn


def cost(sweep, out):
    """Compression wall time per method (mean over its targets, bars to min and max), per toolkit."""
    toolkits = sorted(sweep.runs)
    labels = sweep.labels()
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(labels) * len(toolkits) / 2, 3.6))
    width = 0.8 / max(len(toolkits), 1)
    for k, tk in enumerate(toolkits):
        means, lo, hi = [], [], []
        for label in labels:
            times = [r["wall_time_s"] for r in sweep.rows(tk, label) if "wall_time_s" in r]
            m = float(np.mean(times)) if times else np.nan
            means.append(m)
            lo.append(m - min(times) if times else 0)
            hi.append(max(times) - m if times else 0)
        ax.bar(np.arange(len(labels)) + k * width, means, width, yerr=[lo, hi], capsize=2, label=tk)
    ax.set_xticks(np.arange(len(labels)) + width * (len(toolkits) - 1) / 2, labels, rotation=30, ha="right")
    ax.set_ylabel("compression wall time, s")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def cost_to_wer(comparisons, test_sets, out):
    """WER against compression wall time: a line per baseline through its pass lengths (filled
    where a run reaches the WER of every sspg seed), each sspg seed's run as a star; a row per
    toolkit and target."""
    groups = sorted({(c.toolkit, c.target) for c in comparisons})
    fig, axes = _grid(len(groups), len(test_sets))
    for i, (tk, target) in enumerate(groups):
        by_label = {}
        for c in comparisons:
            if (c.toolkit, c.target) == (tk, target):
                by_label.setdefault(c.label, []).append(c)
        seeds = {c.sspg.row["system"]: c.sspg.row for cs in by_label.values() for c in cs}
        for j, test_set in enumerate(test_sets):
            ax = axes[i][j]
            for k, sspg in enumerate(seeds.values()):
                ax.plot(sspg.get("wall_time_s", np.nan), sspg["wer"].get(test_set, np.nan), "*", markersize=14,
                        color="black", label="sspg (each seed)" if k == 0 else None, zorder=3)
            for label, cs in by_label.items():
                points = cs[0].points  # the same baseline runs against every seed
                reaches = [all(c.points[n].reaches for c in cs) for n in range(len(points))]
                xs = [p.time_s or np.nan for p in points]
                ys = [p.run.row["wer"].get(test_set, np.nan) for p in points]
                (line,) = ax.plot(xs, ys, "-", label=label)
                for p, x, y, filled in zip(points, xs, ys, reaches):
                    ax.plot(x, y, "o", color=line.get_color(), markerfacecolor=line.get_color() if filled else "white")
                    ax.annotate(str(p.run.row.get("steps", "")), (x, y), textcoords="offset points", xytext=(4, 4),
                                fontsize=7)
            ax.set_title(f"{tk}, {target:.2f}, {test_set}", fontsize=9)
            ax.set_xlabel("compression wall time, s (labels: updates)")
            ax.set_ylabel("WER %")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
