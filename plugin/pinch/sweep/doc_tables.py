"""Tables in the README and docs/ generated from committed result files, never copied by hand.

A generated block sits between two markers that name what makes it and from which file (or
files, comma-separated):

    <!-- pinch-table: lossless bench/sweep/embedded -->
    ...
    <!-- /pinch-table -->

``python -m pinch.sweep.doc_tables`` rewrites every block of README.md and docs/*.md from its
source; ``--check`` only says which block differs from its data (a test runs it), so an edited
results table or a hand-edited figure cannot go unnoticed.
"""
import argparse
import json
import re
import sys
from functools import partial
from pathlib import Path
from statistics import median

from pinch.data.atomic import write_text_atomic
from pinch.data.reading import read_text
from pinch.deploy.table import markdown_table
from pinch.scoring.mapsswe import ALPHA
from pinch.sweep.lossless import lossless_table
from pinch.sweep.against import against_baselines
from pinch.sweep.table import load

BLOCK = re.compile(r"(<!-- pinch-table: (\S+) (\S+) -->\n)(.*?)(<!-- /pinch-table -->)", re.S)
REFERENCES = (("dense", "vs dense"), ("dense_finetune", "vs control"))


def lossless(table_dir, corpus="embedded"):
    """Largest lossless sparsity, a row per method and a column per toolkit and reference,
    each cell "clean / other" (the seed rule of pinch.sweep.seeds applied)."""
    sweep = load(table_dir, corpus)
    tables = {ref: lossless_table(sweep, ref) for ref, _ in REFERENCES}
    toolkits = sorted(sweep.runs)
    header = [f"{tk} {name}: {' / '.join(sweep.test_sets)}" for tk in toolkits for _, name in REFERENCES]
    lines = ["| method | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for label in sweep.labels():
        cells = [" / ".join(str(tables[ref][tk][label][t]) if label in tables[ref][tk] else "" for t in sweep.test_sets)
                 for tk in toolkits for ref, _ in REFERENCES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sspg_against_baselines(table_dir, corpus="embedded"):
    """sspg against every baseline at the same target over the grid, counted by verdict."""
    counts = {}
    for cell in against_baselines(load(table_dir, corpus)):
        counts[cell.verdict] = counts.get(cell.verdict, 0) + 1
    total = sum(counts.values())
    return (f"sspg against a baseline at the same target, run against run (MAPSSWE, alpha {ALPHA}; cells with "
            f"seeds by the seed rule), {total} tests over both toolkits: "
            + ", ".join(f"{verdict} {n}" for verdict, n in sorted(counts.items())) + ".\n")


def sspg_toy(reference, *runs):
    """bench/sspg_toy.py's final losses, each label a row, each as a multiple of the
    ``reference`` label's loss in the same setting (global magnitude: what the toy can keep)."""
    def load_runs(path):
        data = json.loads(read_text(path))
        return data, {(r["model"], r["lr"], r["loss_scale"]): r for r in data["runs"]}

    ref_data, ref = load_runs(reference)
    settings = list(ref)
    header = [f"{m} {r['target']:.0%}, lr {lr:g}, loss x{scale:g}" for (m, lr, scale), r in ref.items()]
    lines = [f"| variant (final loss, x {ref_data['label']}'s) | " + " | ".join(header) + " |",
             "|---|" + "---|" * len(header)]
    for path in (reference, *runs):
        data, rows = load_runs(path)
        options = ", ".join(f"{k} {v}" for k, v in data["options"].items())
        cells = [f"{rows[k]['loss_end']:.2e} ({rows[k]['loss_end'] / ref[k]['loss_end']:.2f}x)" for k in settings]
        lines.append(f"| {data['label']} ({options}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def deploy(path):
    """A recipe's DEPLOY.json (its deploy stage) as DEPLOY.md's table, its note below it."""
    data = json.loads(read_text(path))
    return markdown_table(data["rows"], list(data["rows"][0]["wer"])) + "\n" + data["note"] + "\n"


def compare(task, table_dir, corpus="embedded"):
    """``pinch compare --task TASK``'s table of a results table: both toolkits side by side."""
    from pinch.scoring.results import read_rows
    from pinch.scoring.side_by_side import newest_rows, side_by_side

    return side_by_side(newest_rows(read_rows(Path(table_dir)), corpus, task), task)


def main_job_time(path):
    """bench/main_job_time.py's result: minutes per recipe, the slowest stages, the total."""
    data = json.loads(read_text(path))
    lines = ["| recipe | minutes | slowest stages (s) |", "|---|---|---|"]
    for r in data["recipes"]:
        slowest = sorted(r["stages_s"].items(), key=lambda kv: -kv[1])[:3]
        lines.append(f"| {r['recipe']} | {r['elapsed_s'] / 60:.1f} | "
                     + ", ".join(f"stage {k}: {v}" for k, v in slowest) + " |")
    lines.append(f"| the main job (rc {data['rc']}) | {data['total_s'] / 60:.1f} | |")
    return "\n".join(lines) + "\n"


def main_job_total(path):
    """The README's sentence on the main job's time: bench/main_job_time.py's total and date."""
    data = json.loads(read_text(path))
    return (f"On this project's 2-core CPU machine the main job took {data['total_s'] / 60:.1f} minutes from a "
            f"fresh checkout's state ({data['started'][:10]}, rc {data['rc']}, {data['note']}; `{path.name}` "
            "in bench/results, written by `python bench/main_job_time.py`).\n")


def gate_overhead_pass(*paths):
    """bench/gate_overhead.py --whole_pass results: a whole gated pass against a dense one, a row
    per file, with every repeat's ratio (so an outlying repeat is seen, not averaged away)."""
    lines = ["| model | threads | steps | dense s / pass (median) | projections / pass | whole pass, gated / dense: "
             "median [range] | every repeat | warm-up pair (not counted) | spread below effect | fell back to eager |",
             "|---|" + "---|" * 9]
    for path in paths:
        d = json.loads(read_text(path))
        seconds = d["pass_seconds"]
        ratios = [g / dense for dense, g in zip(seconds["dense"], seconds[d["variant"]])]
        r = d["pass_time_ratio"]
        projections = sorted({p["projections"] for p in d["passes"]})
        lines.append(f"| {d['model']} ({d['device_name']}) | {d['threads']} | {d['steps']} | "
                     f"{median(seconds['dense']):.1f} | "
                     f"{', '.join(map(str, projections))} | **{r['median']:.3f}** [{r['min']:.3f}, {r['max']:.3f}] "
                     f"over {d['repeats']} | {', '.join(f'{x:.3f}' for x in ratios)} | "
                     f"{f'{warmup:.3f}' if (warmup := (d.get('warmup_pass') or {}).get('ratio')) else 'none: counted'} | "
                     f"{'yes' if d['spread_below_effect'] else 'no'} | "
                     f"{', '.join(d['compile_fell_back_to_eager']) or 'none'} |")
    return "\n".join(lines) + "\n"


def inference(path):
    """bench/inference.py's result: latency, speed-up and size per variant, and the front end's
    share (which no structured group covers) with the speed-up of the blocks without it."""
    d = json.loads(read_text(path))
    lines = [f"Front end (conv2d subsampling, positional encoding) {d['front_end_ms']:.1f} ms of each forward.", "",
             "| variant | latency ms | speed-up [range] | front end's share | blocks' speed-up without it [range] "
             "| params | non-zero | MB on disk | x dense |", "|---|" + "---|" * 8]
    for r in d["rows"]:
        lo, hi = r["speedup_range"]
        blo, bhi = r["speedup_without_front_end_range"]
        lines.append(f"| {r['variant']} | {r['latency_ms']:.1f} | {r['speedup']:.2f} [{lo:.2f}, {hi:.2f}] | "
                     f"{r['front_end_share']:.0%} | {r['speedup_without_front_end']:.2f} [{blo:.2f}, {bhi:.2f}] | "
                     f"{r['params']:,} | {r['nonzero_params']:,} | {r['bytes'] / 1e6:.2f} | {r['size_ratio']:.2f} |")
    return "\n".join(lines) + "\n"


GENERATORS = {"lossless": lossless, "against-baselines": sspg_against_baselines, "sspg-toy": sspg_toy,
              "deploy": deploy, "compare-tts": partial(compare, "tts"), "compare-asr": partial(compare, "asr"),
              "main-job-time": main_job_time, "gate-overhead-pass": gate_overhead_pass,
              "main-job-total": main_job_total, "inference": inference}


def render(text, root):
    """``text`` with every block made anew from its source (paths relative to ``root``)."""
    def make(match):
        kind, source = match.group(2), match.group(3)
        if kind not in GENERATORS:
            raise ValueError(f"unknown generated table {kind!r} (known: {', '.join(GENERATORS)})")
        return match.group(1) + GENERATORS[kind](*(Path(root) / s for s in source.split(","))) + match.group(5)
    return BLOCK.sub(make, text)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.sweep.doc_tables", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", help="Markdown files (default: README.md docs/*.md)")
    parser.add_argument("--root", default=".", help="the repository root the sources are relative to")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 where a table differs")
    args = parser.parse_args(argv)
    root = Path(args.root)
    files = [Path(f) for f in args.files] or [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    stale = []
    try:
        for path in files:
            text = read_text(path)
            made = render(text, root)
            if made == text:
                continue
            stale.append(path)
            if not args.check:
                write_text_atomic(path, made)
    except (OSError, ValueError) as err:
        print(f"pinch.sweep.doc_tables: error: {err}", file=sys.stderr)
        return 2
    for path in stale:
        print(f"{path}: {'differs from its data' if args.check else 'regenerated'}",
              file=sys.stderr if args.check else sys.stdout)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
