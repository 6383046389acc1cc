"""REPORT.md of a sweep: tables and findings stated as numbers, the figures embedded."""
import shlex
import statistics
import time
from pathlib import Path

from pinch.data.atomic import check_outputs, write_text_atomic
from pinch.scoring.mapsswe import ALPHA
from pinch.scoring.results import JSON_TABLE
from pinch.sweep import plots
from pinch.sweep.against import against_baselines, variants_against_their_method
from pinch.sweep.cost import CLAIM, ITERATIVE, cell_verdicts, equal_wer
from pinch.sweep.lossless import lossless_table
from pinch.sweep.seeds import RULE, seed_number
from pinch.sweep.table import load

HEADLINE_TARGET = 0.8


def _pct(x):
    return "" if x is None else f"{x:.2f}"


def _mb(x):
    return "" if x is None else f"{x:.2f}"


def _p(p):
    return "" if p is None else f"{p:.2g}"


PLANNED = (0.5, 0.65, 0.8, 0.9)


def _reference_versions(runs):
    """Whether every verdict against a reference was against the same hypotheses of it (a
    reference fine-tuned or decoded anew may differ), per reference: a line each."""
    lines = []
    for ref in ("dense", "dense_finetune"):
        versions, unrecorded = {}, 0
        for run in runs:
            tests = (run.row.get("mapsswe") or {}).get(ref)
            if not tests:
                continue
            digests = {t: sig.get("reference_hyps") for t, sig in tests.items()}
            if None in digests.values():
                unrecorded += 1
            for t, d in digests.items():
                if d is not None:
                    versions.setdefault(t, set()).add(d)
        if not versions and not unrecorded:
            continue
        recorded = ", ".join(f"{t}: {len(v)} version{'s' if len(v) > 1 else ''} ({', '.join(sorted(v))})"
                             for t, v in sorted(versions.items()))
        lines.append(f"verdicts against `{ref}`: its hypotheses "
                     + (f"by digest, {recorded}" if versions else "")
                     + ("; " if versions and unrecorded else "")
                     + (f"not recorded for {unrecorded} runs (scored before the digest was kept)" if unrecorded else "")
                     + (" **: the reference moved between runs**" if any(len(v) > 1 for v in versions.values())
                        else "") + ".")
    return lines


def _by_reference_header(sets):
    """The header lines of a table with a cell per reference (dense, control) and test set."""
    return ["| toolkit | method | " + " | ".join(f"vs dense: {t}" for t in sets) + " | "
            + " | ".join(f"vs dense control: {t}" for t in sets) + " |", "|" + "---|" * (2 + 2 * len(sets))]


def _shrunk_share_section(sweep, tables, sets):
    """Structured variants compared at the size a user ships: the share shrink removes at each
    one's largest lossless target (their targets count groups differently under group_cost)."""
    labels = [(tk, label) for tk in sorted(sweep.runs) for label in sweep.labels(tk)
              if label.startswith("sspg structured")]
    if not labels:
        return []
    lines = ["", "## Structured: the largest lossless shrunk share", "",
             "What shrink removes (the governed weights' share, the `sparsity` column; the smallest of a "
             "cell's seeds) at each structured variant's largest lossless target above, so that variants "
             "whose targets count a group differently (`group_cost: weights | rows`, `block_gates`) or that "
             "distil are compared at the size a user ships. The target follows in brackets.", "",
             *_by_reference_header(sets)]
    for tk, label in labels:
        cells = []
        for ref in ("dense", "dense_finetune"):
            for t in sets:
                found = tables[ref][tk][label][t]
                runs = sweep.repeats(tk, label, found.sparsity) if found.sparsity else []
                shares = [r.row["sparsity"] for r in runs if "sparsity" in r.row]
                known = ref in sweep.references.get(tk, {}) or ref == "dense"
                cells.append("" if not known else f"{min(shares):.1%} ({found})" if shares else str(found))
        lines.append(f"| {tk} | {label} | " + " | ".join(cells) + " |")
    return lines


def _variants_section(sweep, toolkits):
    """Each variant against its method without the option, run against run (the A/Bs of
    distillation, the group cost, block gates, a settled mask); nothing where no variant ran."""
    rows = {}
    for cell in variants_against_their_method(sweep):
        wa, wb = (statistics.mean(r[i] for r in cell.results) for i in (1, 2))
        rows.setdefault(cell.toolkit, []).append(
            f"| {cell.toolkit} | {cell.other} | {cell.label} | {cell.target:.2f} | {cell.seeds[1]} / {cell.seeds[0]} | "
            f"{cell.test_set} | {wa:.2f} | {wb:.2f} | {', '.join(_p(r[0]) for r in cell.results)} | {cell.verdict} |")
    if not rows:
        return []
    lines = ["## Variants against their method", "",
             "Each variant (a label's bracket: the option that sets its pass apart) against the same method "
             "without it at the same target, MAPSSWE between the two runs' hypotheses, every seed pair, the "
             "verdict by the seed rule. WER: the mean over the pairs. At one target, counts that charge a "
             "group differently may remove different shares: the section above compares them at the size "
             "shrink gives.", ""]
    for tk in toolkits:
        if rows.get(tk):
            lines += ["| toolkit | variant | against | target | seeds variant / method | test set | WER method "
                      "| WER variant | p (each pair) | verdict |", "|---|" + "---|" * 9, *rows[tk], ""]
    return lines


def build(table_dir, corpus, out, command=None, planned=PLANNED):
    """Write ``out`` (REPORT.md) and its figures beside it; returns the report's text.
    ``planned``: the targets the sweep is to cover; a method's run missing at one is named."""
    table_dir, out = Path(table_dir), Path(out)
    check_outputs({"--out": out}, {"--table": table_dir / JSON_TABLE})
    sweep = load(table_dir, corpus, planned)
    figures = out.parent / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    toolkits = sorted(sweep.runs)
    sets = sweep.test_sets
    lines = [
        f"# Evidence sweep: corpus `{corpus}`",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from `{table_dir}` by",
        "",
        f"    {command or f'python -m pinch.sweep --table {table_dir} --corpus {corpus} --out {out}'}",
        "",
        "Do not edit by hand: rerun the command. The runs themselves are the recipes' own "
        "(`--pruning ... --sweep ... --results_table`), listed per toolkit below.",
        "",
        f"**Seeds**: {RULE}",
        "",
        "## What was run",
        "",
    ]
    for tk in toolkits:
        refs = sweep.references.get(tk, {})
        dense = refs.get("dense", {})
        control = refs.get("dense_finetune")
        n = len(sweep.runs[tk])
        lines.append(f"- **{tk}**: {n} compression runs from dense model `{dense.get('dense_fingerprint')}` "
                     f"(WER {' / '.join(_pct(dense['wer'].get(t)) for t in sets)} on {' / '.join(sets)}"
                     + (f"; dense control {' / '.join(_pct(control['wer'].get(t)) for t in sets)}" if control else "")
                     + f"); methods {', '.join(sweep.labels(tk))}; targets "
                     f"{', '.join(f'{t:.2f}' for t in sorted({r.target for r in sweep.runs[tk]}))}"
                     + (f"; and {len(sweep.longer[tk])} longer passes (the cost at equal WER)" if sweep.longer.get(tk) else "")
                     + ".")
    for tk in toolkits:
        lines += [f"- {tk}: {line}" for line in _reference_versions(sweep.runs[tk] + sweep.longer.get(tk, []))]
    missing = [(tk, label, t) for tk in toolkits for label in sweep.labels() for t in sweep.targets()
               if sweep.base(tk, label, t) is None]
    if missing:
        lines += ["", f"**Incomplete**: {len(missing)} runs of the grid have no row yet: "
                  + ", ".join(f"{tk} {label} {t:.2f}" for tk, label, t in missing[:40])
                  + (" ..." if len(missing) > 40 else "") + ". Figures marked `>=` are lower bounds."]

    # Largest lossless sparsity
    lines += ["", "## Largest lossless sparsity", "",
              f"The largest target at which a method's runs (every seed) are not significantly worse "
              f"(MAPSSWE, alpha {ALPHA}) than the reference, every smaller target lossless too "
              "(`pinch.sweep.lossless`).", ""]
    tables = {ref: lossless_table(sweep, ref) for ref in ("dense", "dense_finetune")}
    lines += _by_reference_header(sets)
    for tk in toolkits:
        for label in sweep.labels(tk):
            cells = [str(tables["dense"][tk][label][t]) for t in sets]
            has_control = "dense_finetune" in sweep.references.get(tk, {})
            cells += [str(tables["dense_finetune"][tk][label][t]) if has_control else "" for t in sets]
            lines.append(f"| {tk} | {label} | " + " | ".join(cells) + " |")

    lines += _shrunk_share_section(sweep, tables, sets)

    # Every run
    lines += ["", "## Every run", "",
              "WER per test set; p: MAPSSWE against the dense model / the dense control ('*': "
              "significantly worse); sparsity over the gated weights and over the whole model; shipped MB: "
              "the model file the toolkit loads (ESPnet model.pth, NeMo .nemo), download MB: that file "
              "gzip-compressed (rows from 2026-12-07 on), compact MB: pinch's compact "
              "file of the same weights (rows before 2026-12-06 have one of the two: ESPnet's the compact "
              "size, NeMo's the shipped one).", ""]
    for tk in toolkits:
        lines += [f"### {tk}", "",
                  "| method | target | seed | " + " | ".join(f"WER {t}" for t in sets) + " | "
                  + " | ".join(f"p {t}" for t in sets) + " | sparsity gated / model | non-zero | shipped MB | download MB | compact MB | time s | steps | peak MB |",
                  "|" + "---|" * (11 + 2 * len(sets))]
        for run in sorted(sweep.runs[tk], key=lambda r: (sweep.labels(tk).index(r.label), r.target,
                                                          r.seed if r.seed is not None else -1)):
            r = run.row
            ps = []
            for t in sets:
                cell = []
                for ref in ("dense", "dense_finetune"):
                    p = run.p_value(t, ref)
                    if p is not None:
                        cell.append(_p(p) + ("" if run.lossless(t, ref) else "*"))
                ps.append(" / ".join(cell))
            lines.append(
                f"| {run.label} | {run.target:.2f} | {'' if run.seed is None else run.seed} | "
                + " | ".join(_pct(r["wer"].get(t)) for t in sets) + " | " + " | ".join(ps)
                + f" | {r.get('sparsity', 0):.3f} / {r.get('model_sparsity', 0):.3f} | {r.get('nonzero_params', '')} "
                f"| {_mb(r.get('size_mb'))} | {_mb(r.get('download_mb'))} | {_mb(r.get('compact_mb'))} | {r.get('wall_time_s', 0):.0f} | {r.get('steps', '')} "
                f"| {r.get('peak_rss_mb', '')} |")
        lines.append("")

    # sspg against each baseline, run against run, over the seeds of both cells
    lines += ["## sspg against each baseline", "",
              "MAPSSWE between the two runs' own hypotheses at the same target (stored with each row); "
              "a cell with seeds: every seed pair tested, the verdict by the seed rule above. WER: the "
              "mean over the pairs.", ""]
    findings, rows = {}, {}
    for cell in against_baselines(sweep):
        findings[cell.verdict] = findings.get(cell.verdict, 0) + 1
        wa, wb = (statistics.mean(r[i] for r in cell.results) for i in (1, 2))
        rows.setdefault(cell.toolkit, []).append(
            f"| {cell.toolkit} | {cell.label} | {cell.target:.2f} | {cell.seeds[0]} / {cell.seeds[1]} | "
            f"{cell.test_set} | {wa:.2f} | {wb:.2f} | {', '.join(_p(r[0]) for r in cell.results)} | {cell.verdict} |")
    for tk in toolkits:
        if rows.get(tk):
            lines += ["| toolkit | baseline | target | seeds baseline / sspg | test set | WER baseline | WER sspg "
                      "| p (each pair) | verdict |",
                      "|---|---|---|---|---|---|---|---|---|", *rows[tk], ""]

    lines += _variants_section(sweep, toolkits)

    # Seeds
    lines += ["## Repeats (seeds of the compression run)", ""]
    seeded = False
    for tk in toolkits:
        for label in sweep.labels(tk):
            for target in sweep.targets():
                reps = sweep.repeats(tk, label, target)
                if len(reps) < 2:
                    continue
                seeded = True
                cells = []
                for t in sets:
                    w = [r.row["wer"][t] for r in reps]
                    cells.append(f"{t} {statistics.mean(w):.2f} [{min(w):.2f}, {max(w):.2f}]")
                lines.append(f"- {tk} {label} at {target:.2f}, {len(reps)} runs: mean WER [range] "
                             + "; ".join(cells))
    if not seeded:
        lines.append(f"None yet: the headline repeats sspg and the best baseline at {HEADLINE_TARGET} "
                     "with `--compress_seeds \"1 2\"`.")

    # Cost
    lines += ["", "## Compression cost", "",
              "Mean over a method's runs [min, max]; every method had the same data, epochs, optimizer "
              "and schedule, so their cost differs by what each does per update. sspg: the update and "
              "the seconds at which sparsity first reached the target (from the logged history).", "",
              "| toolkit | method | runs | wall time s | steps | peak MB | sspg: target reached at update (s) |",
              "|---|---|---|---|---|---|---|"]
    mean_time = {}
    for tk in toolkits:
        for label in sweep.labels(tk):
            rs = sweep.rows(tk, label)
            times = [r["wall_time_s"] for r in rs if "wall_time_s" in r]
            mean_time[(tk, label)] = statistics.mean(times) if times else None
            peaks = [r["peak_rss_mb"] for r in rs if "peak_rss_mb" in r]
            steps = sorted({r["steps"] for r in rs if "steps" in r})
            reach = [f"{r['target_sparsity']:.2f}: {r['reach_step']} ({r.get('reach_s', '?')})"
                     for r in rs if "reach_step" in r]
            lines.append(f"| {tk} | {label} | {len(rs)} | "
                         + (f"{statistics.mean(times):.0f} [{min(times):.0f}, {max(times):.0f}]" if times else "")
                         + f" | {', '.join(map(str, steps))} | {max(peaks) if peaks else ''} | {'; '.join(reach)} |")
    per_update = [f"{tk} sspg {mean_time[(tk, 'sspg')] / mean_time[(tk, b)]:.2f}x {b}"
                  for tk in toolkits for b in ITERATIVE if mean_time.get((tk, "sspg")) and mean_time.get((tk, b))]
    if per_update:
        lines += ["", "Time per run at the same epochs (what each method does per update): "
                  + "; ".join(per_update) + "."]

    # Cost at equal WER
    comparisons = equal_wer(sweep, sets)
    lines += ["", "## Compression cost at equal WER", "",
              f"The paper: one-pass compression costs at least {CLAIM:.0%} less time than the iterative "
              "methods at equal WER. Longer passes of a baseline (the recipes' `--compress_epochs`) against "
              "sspg's run of the sweep; a run reaches sspg when it is not significantly worse on any test "
              f"set (MAPSSWE run against run, alpha {ALPHA}).", ""]
    if not comparisons:
        lines.append("Not measured yet: `bench/sweep/run.sh` ends with gmp and imp at "
                     f"{HEADLINE_TARGET} in longer passes (`--cost_epochs`).")
    verdicts = [c.verdict() for c in comparisons]
    cost_cells = cell_verdicts(comparisons)
    for c, verdict in zip(comparisons, verdicts):
        s_row = c.sspg.row
        lines += [f"### {c.toolkit}, {c.label} at {c.target:.2f}, sspg seed {seed_number(c.sspg)}", "",
                  "| run | steps | time s | " + " | ".join(f"WER {t} (p vs sspg)" for t in sets) + " | reaches sspg |",
                  "|" + "---|" * (4 + len(sets)),
                  f"| sspg | {s_row.get('steps', '')} | {s_row.get('wall_time_s', 0):.0f} | "
                  + " | ".join(_pct(s_row["wer"].get(t)) for t in sets) + " | |"]
        for point in c.points:
            r = point.run.row
            cells = [f"{point.tests[t][1]:.2f} ({_p(point.tests[t][0])})" if point.tests[t] else _pct(r["wer"].get(t))
                     for t in sets]
            name = f"{c.label}, {point.run.epochs} epochs" if point.run.epochs else f"{c.label} (the sweep's)"
            lines.append(f"| {name} | {r.get('steps', '')} | {r.get('wall_time_s', 0):.0f} | " + " | ".join(cells)
                         + f" | {({True: 'yes', False: 'no'}).get(point.reaches, 'n/a')} |")
        lo, hi = c.bracket()
        s_time = s_row.get("wall_time_s") or 0
        reach = (f"{c.label} needs {f'more than {lo:.0f} s and ' if lo else ''}at most {hi:.0f} s to reach "
                 "sspg's WER" if hi else f"no {c.label} run reaches sspg's WER: it needs more than {lo:.0f} s")
        share = (f"sspg's {s_time:.0f} s is {s_time / hi:.2f}x-{s_time / lo:.2f}x that" if hi and lo else
                 f"sspg's {s_time:.0f} s is at most {s_time / lo:.2f}x that" if lo else
                 f"sspg's {s_time:.0f} s is at least {s_time / hi:.2f}x that" if hi else "")
        worse = c.worse_when_longer()
        caveat = ("a longer pass assumed not to end worse" if worse is None else
                  f"but the {worse[1].run.row.get('steps')}-update pass ended worse than the "
                  f"{worse[0].run.row.get('steps')}-update one, so the bracket does not hold")
        lines += ["", f"- {c.toolkit} at {c.target:.2f}, sspg seed {seed_number(c.sspg)} against {c.label}: "
                  f"**{verdict}** ({reach}; {share}; {caveat}).", ""]
    if cost_cells:
        lines += ["Over sspg's seeds (the seed rule): " + "; ".join(
            f"{tk} at {target:.2f} against {label}: **{verdict}**" for (tk, target, label), verdict in cost_cells.items())
            + ".", ""]
    if comparisons:
        plots.cost_to_wer(comparisons, sets, figures / "cost_to_wer.png")
        lines += ["![WER against compression time](figures/cost_to_wer.png)", ""]

    # Figures
    lines += ["", "## Figures", ""]
    plots.wer_vs_sparsity(sweep, figures / "wer_vs_sparsity.png")
    lines += ["![WER vs sparsity](figures/wer_vs_sparsity.png)", ""]
    top = max(sweep.targets())
    target = HEADLINE_TARGET if HEADLINE_TARGET in sweep.targets() else top
    if plots.allocation(sweep, target, figures / "allocation.png"):
        lines += ["![per-layer sparsity](figures/allocation.png)", ""]
    if plots.schedule(sweep, figures / "schedule.png"):
        lines += ["![sparsity, eta and tau over training](figures/schedule.png)", ""]
    plots.cost(sweep, figures / "cost.png")
    lines += ["![compression cost](figures/cost.png)", ""]

    # Findings
    lines += ["## Findings", ""]
    for tk in toolkits:
        for t in sets:
            ranked = sorted(((tables["dense"][tk][label][t], label) for label in sweep.labels(tk)),
                            key=lambda x: -x[0].sparsity)
            lines.append(f"- {tk}, {t}: largest lossless sparsity vs dense "
                         + ", ".join(f"{label} {value}" for value, label in ranked) + ".")
    total = sum(findings.values())
    if total:
        lines.append(f"- sspg against a baseline at the same target, run against run over the seeds ({total} "
                     "cells and test sets): " + ", ".join(f"{v} in {n}" for v, n in sorted(findings.items())) + ".")
    for (tk, target, label), verdict in cost_cells.items():
        lines.append(f"- Cost at equal WER, {tk} at {target:.2f}: sspg's at least {CLAIM:.0%} saving "
                     f"against {label} is **{verdict}** over sspg's "
                     f"{sum(1 for c in comparisons if (c.toolkit, c.target, c.label) == (tk, target, label))} seeds.")
    text = "\n".join(lines) + "\n"
    write_text_atomic(out, text)
    return text


def main(argv=None):
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m pinch.sweep", description="REPORT.md of an evidence sweep")
    parser.add_argument("--table", required=True, help="folder of the sweep's results.json (and runs/)")
    parser.add_argument("--corpus", default="embedded", help="the rows of this corpus")
    parser.add_argument("--out", help="REPORT.md to write (default: TABLE/REPORT.md); figures go beside it")
    parser.add_argument("--targets", default=" ".join(map(str, PLANNED)),
                        help="the targets the sweep is to cover (runs missing there are named)")
    args = parser.parse_args(argv)
    out = args.out or str(Path(args.table) / "REPORT.md")
    command = "python -m pinch.sweep " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    try:
        try:
            planned = [float(t) for t in args.targets.split()]
        except ValueError:
            raise ValueError(f"--targets must be numbers, not {args.targets!r}") from None
        text = build(args.table, args.corpus, out, command, planned)
    except (ValueError, OSError) as err:
        print(f"pinch.sweep: error: {err}", file=sys.stderr)
        return 2
    # The headline on the terminal too: the largest lossless sparsity table.
    section = text.split("## Largest lossless sparsity", 1)[1].split("\n## ", 1)[0]
    print("Largest lossless sparsity" + section.rstrip())
    print(f"pinch.sweep: wrote {out}")
    return 0
