#!/usr/bin/env python3
"""Measure building the embedded corpus: wall time and hours per split for each size.

Usage: python bench/embedded_corpus.py [--sizes tiny default] [--jobs 2] [--json PATH]
Builds each size in a temporary directory (removed afterwards), prints a table and
writes JSON (default bench/results/embedded_corpus.json).
"""
import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from pinch.data import SIZES, prepare_embedded
from pinch.data.atomic import write_json_atomic


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "default"], choices=sorted(SIZES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" /
                                              "embedded_corpus.json"))
    args = parser.parse_args()
    runs = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.time()
            stats = prepare_embedded(Path(tmp) / "corpus", seed=args.seed, size=size,
                                     jobs=args.jobs, progress=False)
            runs.append({"size": size, "wall_s": round(time.time() - t0, 1), **stats})
    header = f"{'size':8} {'wall s':>7} " + " ".join(f"{s:>12}" for s in runs[0]["splits"])
    print(header + "\n" + "-" * len(header))
    for r in runs:
        print(f"{r['size']:8} {r['wall_s']:7.1f} " + " ".join(
            f"{v['utterances']:5d}/{v['hours']:.3f}h" for v in r["splits"].values()))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, {"machine": platform.platform(), "cpus": os.cpu_count(),
                            "jobs": args.jobs, "runs": runs})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
