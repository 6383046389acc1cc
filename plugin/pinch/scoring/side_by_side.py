"""ESPnet and NeMo results of the same corpus in one table, side by side.

Why: both recipes append to the shared results table (results.json); comparing the two
toolkits means lining up the same method and target, which the append-only table does
not do. For each (method, target) the newest row of each toolkit is shown: parameters,
measured sparsity, WER per test set with the MAPSSWE mark against that toolkit's own
reference (the dense control where the run has one, else the dense model; the mark names
it), and the compression wall time. TTS rows (``--task tts``) have their own columns: the
encoder's parameters and sparsity, MCD, log-F0 RMSE and the ASR-CER of the synthesized speech,
then every other judge: pocketsphinx's CER, DNSMOS OVRL and the other toolkit's ASR-CER, each
CER marked against the same reference as the first.

    python -m pinch.scoring.side_by_side --table exp/results [--corpus embedded] [--out FILE]
        [--plot PNG] [--task asr|tts]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from pinch.data.atomic import check_outputs, write_text_atomic

from .results import JSON_TABLE, REFERENCES, read_rows

TOOLKITS = ("espnet", "nemo")


@dataclass(frozen=True)
class TaskColumns:
    """A task's columns per toolkit: (row key, header) pairs around the per-test-set rate."""
    before: tuple[tuple[str, str], ...]
    rate: str
    rate_name: str
    sparsity: str  # the row key the plot's x axis reads
    after: tuple[tuple[str, str], ...]
    # Other judges' rates (row key, its MAPSSWE key, header), per test set and marked as the rate is.
    judges: tuple[tuple[str, str, str], ...] = ()


TASKS = {
    "asr": TaskColumns((("params", "params"), ("nonzero_params", "nonzero"), ("sparsity", "sparsity")),
                       "wer", "WER", "sparsity", (("wall_time_s", "time s"),)),
    "tts": TaskColumns((("encoder_params", "encoder params"), ("encoder_sparsity", "encoder sparsity"),
                        ("params", "params"), ("gated_params", "gated params"), ("model_sparsity", "model sparsity"),
                        ("mcd", "MCD dB"), ("log_f0_rmse", "log-F0 RMSE")),
                       "cer", "ASR-CER", "encoder_sparsity", (("dnsmos_ovrl", "DNSMOS OVRL"),),
                       (("pocketsphinx_cer", "pocketsphinx_mapsswe", "pocketsphinx CER"),
                        ("cross_cer", "cross_mapsswe", "cross ASR-CER"))),
}


def corpus_of(row: dict) -> str | None:
    """The corpus a row was produced on, from its ``corpus=NAME`` note (None if absent)."""
    for word in (row.get("notes") or "").replace(",", " ").replace(";", " ").split():
        if word.startswith("corpus="):
            return word.split("=", 1)[1]
    return None


def newest_rows(rows: list[dict], corpus: str | None = None, task: str = "asr") -> dict[tuple, dict]:
    """The newest row of ``task`` per (method, target, toolkit).

    With ``corpus``, rows noted with another corpus are left out; rows with no
    ``corpus=`` note cannot be placed and are kept. Without it, every row counts.
    """
    rows = [r for r in rows if r.get("toolkit") in TOOLKITS and (corpus is None or corpus_of(r) in (None, corpus))
            and r.get("task", "asr") == task]
    if not rows:
        raise ValueError(f"no espnet or nemo {task} rows" + (f" for corpus {corpus!r}" if corpus else ""))
    newest: dict[tuple, dict] = {}
    for r in sorted(rows, key=lambda r: r.get("date") or ""):
        newest[(method_label(r), r.get("target_sparsity"), r["toolkit"])] = r
    return newest


def method_label(row: dict) -> str:
    """A row's method, with the layers it gated where they are not the preset auto (a TTS
    model's encoder): the whole model's run is a line of its own beside the encoder's."""
    method, preset = row.get("method") or "", row.get("preset")
    return method if preset in (None, "auto") else f"{method} {preset}"


def side_by_side(newest: dict[tuple, dict], task: str = "asr") -> str:
    """Markdown table of ``newest_rows``: a line per (method, target), a column group per toolkit."""
    cols = TASKS[task]
    systems = sorted({(m, t) for m, t, _ in newest},
                     key=lambda k: (k[0] not in REFERENCES, k[0] != "dense", k[0], k[1] or 0))
    test_sets = sorted({s for r in newest.values() for s in (r.get(cols.rate) or {})})
    toolkits = [tk for tk in TOOLKITS if any(k[2] == tk for k in newest)]  # no empty column group
    headers = ["method", "target"]
    for tk in toolkits:
        headers += [f"{tk} {h}" for _, h in cols.before]
        headers += [f"{tk} {cols.rate_name} {s}" for s in test_sets] + [f"{tk} {h}" for _, h in cols.after]
        headers += [f"{tk} {h} {s}" for _, _, h in cols.judges for s in test_sets]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for method, target in systems:
        cells = [method, _num(target)]
        for tk in toolkits:
            r = newest.get((method, target, tk), {})
            cells += [_num(r.get(k)) for k, _ in cols.before]
            reference = r.get("reference", "dense")
            cells += [_marked((r.get(cols.rate) or {}).get(s), (r.get("significance") or {}).get(s), reference)
                      for s in test_sets]
            cells += [_num(r.get(k)) for k, _ in cols.after]
            for key, tests, _ in cols.judges:
                rates = r.get(key)
                for s in test_sets:  # a judge's rate over the one test set it heard, or one per set
                    rate = rates.get(s) if isinstance(rates, dict) else rates
                    cells.append(_marked(rate, ((r.get(tests) or {}).get(reference) or {}).get(s), reference))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _marked(rate, sig, reference) -> str:
    """A rate with its MAPSSWE mark against ``reference`` (none where no test was made)."""
    mark = "" if sig is None else (f" (p={sig['p_value']:.2g} vs {reference}, "
                                   f"{'lossless' if sig['lossless'] else 'worse'})")
    return "" if rate is None else f"{rate:.2f}{mark}"


def _num(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pinch.scoring.side_by_side", description=__doc__.split("\n")[0])
    parser.add_argument("--table", required=True, help="folder of the shared results.json")
    parser.add_argument("--corpus", help="only rows noted corpus=NAME")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    parser.add_argument("--plot", help="also plot WER (TTS: ASR-CER) against measured sparsity to this PNG")
    parser.add_argument("--task", choices=sorted(TASKS), default="asr", help="which rows: asr or tts")
    args = parser.parse_args(argv)
    table = Path(args.table) / JSON_TABLE
    try:
        check_outputs({k: v for k, v in (("--out", args.out), ("--plot", args.plot)) if v}, {"--table": table})
        if not table.is_file():
            raise FileNotFoundError(f"{table}: missing (run the recipes' scoring stages)")
        rows = read_rows(Path(args.table))
        unnoted = sum(1 for r in rows if r.get("toolkit") in TOOLKITS and corpus_of(r) is None)
        if args.corpus and unnoted:
            print(f"pinch compare: note: {unnoted} row(s) carry no 'corpus=' note; shown as {args.corpus}",
                  file=sys.stderr)
        newest = newest_rows(rows, args.corpus, args.task)
        text = side_by_side(newest, args.task)
        if args.plot:  # first: it is the output that can find nothing to draw
            from .side_by_side_plot import plot_wer_vs_sparsity

            cols = TASKS[args.task]
            plot_wer_vs_sparsity(newest, Path(args.plot), cols.rate, cols.rate_name, cols.sparsity)
            print(f"pinch compare: plot written to {args.plot}", file=sys.stderr)
        if args.out:
            write_text_atomic(Path(args.out), text)
    except (ValueError, OSError) as err:
        print(f"pinch compare: error: {err}", file=sys.stderr)
        return 1
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
