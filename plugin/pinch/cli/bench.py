"""``pinch bench``: run the benchmark scripts of a source checkout's bench/ folder.

The benchmarks measure the recipe's ESPnet Conformer, so they live beside the recipes
rather than in the toolkit-independent package.
"""
import os
import subprocess
import sys

BENCH_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench"))
SCRIPTS = {"overhead": "gate_overhead.py", "inference": "inference.py", "deploy": "deploy_latency.py"}


def run(args):
    if not os.path.isdir(BENCH_DIR):
        raise ValueError(f"no bench/ folder at {BENCH_DIR}: pinch bench runs from a source checkout")
    names = list(SCRIPTS) if args.which == "all" else [args.which]
    for name in names:
        cmd = [sys.executable, os.path.join(BENCH_DIR, SCRIPTS[name]), "--out", args.out]
        if args.quick:
            cmd += {"overhead": ["--quick"], "inference": ["--repeats", "3"], "deploy": ["--repeats", "2"]}[name]
        subprocess.run(cmd, check=True, cwd=os.path.dirname(BENCH_DIR))
