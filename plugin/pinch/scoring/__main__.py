"""CLI: python -m pinch.scoring {score,compare,append-result} ..."""
from __future__ import annotations

import argparse
import json
import sys

from .mapsswe import ALPHA, compare, format_compare
from .results import append_result
from .sclite import format_result, score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pinch.scoring")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="WER and CER with sclite (jiwer cross-check)")
    p.add_argument("--ref", required=True, help="Kaldi text file: uttid words")
    p.add_argument("--hyp", required=True, help="Kaldi text file: uttid words")
    p.add_argument("--out", required=True, help="directory for trn files, reports, result.json")
    p = sub.add_parser("compare", help="MAPSSWE significance test between two systems")
    p.add_argument("--ref", required=True)
    p.add_argument("--hyp-a", required=True, help="reference system (e.g. the dense model)")
    p.add_argument("--hyp-b", required=True, help="system under test (e.g. the pruned model)")
    p.add_argument("--out", required=True)
    p.add_argument("--name-a", default="A")
    p.add_argument("--name-b", default="B")
    p.add_argument("--alpha", type=float, default=ALPHA)
    p = sub.add_parser("append-result", help="append a row to results.md/results.json")
    p.add_argument("--table", required=True, help="directory holding the results table")
    p.add_argument("--row", required=True, help="the row as a JSON object")
    args = parser.parse_args(argv)
    try:
        if args.command == "score":
            print(format_result(score(args.ref, args.hyp, args.out)))
        elif args.command == "compare":
            print(format_compare(compare(args.ref, args.hyp_a, args.hyp_b, args.out,
                                         alpha=args.alpha, name_a=args.name_a,
                                         name_b=args.name_b)))
        else:
            try:
                row = json.loads(args.row)
            except json.JSONDecodeError as e:
                raise ValueError(f"--row is not valid JSON: {e}") from None
            print(json.dumps(append_result(args.table, row)))
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"pinch.scoring: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
