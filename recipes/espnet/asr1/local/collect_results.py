#!/usr/bin/env python3
"""Stage 13: the recipe-level RESULTS.md (exp/RESULTS.md), egs2's show_asr_result.sh form.

One environment header, then each model dir's sections as its own RESULTS.md has them (WER
and CER per decode dir, normalized scores, pinch's compression verdicts), in decoding order:
the page an egs2 user pastes into a recipe's RESULTS.md.
"""
import argparse
import sys
from pathlib import Path

from pinch.data.atomic import write_text_atomic


def collect(model_dirs: list[Path]) -> str:
    header, sections = None, []
    for d in model_dirs:
        path = d / "RESULTS.md"
        if not path.is_file():
            sys.exit(f"collect_results: {path} is missing: run stage 13 scoring first")
        lines = path.read_text(encoding="utf-8").splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("## ") and line != "## Environments"), None)
        if start is None:
            sys.exit(f"collect_results: {path} has no model section ('## <model dir>')")
        header = header or lines[:start]
        sections += lines[start:]
    return "\n".join(header + sections) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("model_dirs", type=Path, nargs="+")
    args = parser.parse_args()
    write_text_atomic(args.out, collect(args.model_dirs))
    print(f"collect_results: wrote {args.out} ({len(args.model_dirs)} models)")


if __name__ == "__main__":
    main()
