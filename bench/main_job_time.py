"""The main job (``./run.sh``) timed from a fresh checkout's state, per recipe and stage.

Why a script: the README's figure for the main job must come from a result file, and the main
job only means its time when nothing it makes exists yet (every stage skips finished work). It
refuses to start while any output of a previous run is there (move them aside first), runs
``./run.sh`` with its log beside the result, and reads each recipe's stage times and elapsed
time from the log lines the recipes print (recipe_lib.sh's stage_time, run.sh's "Successfully
finished"), in the order run.sh runs the recipes.

    python bench/main_job_time.py --out bench/results/main_job_time.json --note "ran alone"
"""
import argparse
import datetime
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("recipes/espnet/asr1", "recipes/nemo/asr", "recipes/espnet/tts1", "recipes/nemo/tts")
OUTPUTS = [f"{r}/{d}" for r in RECIPES for d in ("data", "dump", "exp")] + ["exp/results"]
STAGE = re.compile(r"\) Stage (\d+) finished in (\d+)s")
DONE = re.compile(r"\) Successfully finished\. \[elapsed=(\d+)s\]")


def parse(log_lines):
    """Per recipe (in RECIPES' order): {stage: seconds} and its elapsed seconds."""
    recipes, stages = [], {}
    for line in log_lines:
        if m := STAGE.search(line):
            stages[m.group(1)] = int(m.group(2))
        elif m := DONE.search(line):
            if len(recipes) == len(RECIPES):
                raise ValueError("more recipes finished than run.sh runs")
            recipes.append({"recipe": RECIPES[len(recipes)], "stages_s": stages, "elapsed_s": int(m.group(1))})
            stages = {}
    return recipes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="result JSON (not overwritten)")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = parser.parse_args(argv)
    if args.out.exists():
        sys.exit(f"main_job_time: {args.out} exists; give another --out (results are never overwritten)")
    left = [p for p in OUTPUTS if (ROOT / p).exists()]
    if left:
        sys.exit(f"main_job_time: outputs of an earlier run exist ({', '.join(left)}): move them aside, "
                 "or the recipes would skip their stages")
    log = args.out.with_suffix(".log")
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = datetime.datetime.now().timestamp()
    with log.open("w") as f:
        rc = subprocess.run(["./run.sh"], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT).returncode
    total = round(datetime.datetime.now().timestamp() - t0)
    recipes = parse(log.read_text(errors="replace").splitlines())
    result = {"what": "./run.sh (the main job) from a fresh state on this machine, each recipe's stage times and "
                      "elapsed time as its log printed them", "started": started.isoformat(timespec="seconds"),
              "note": args.note, "recipes": recipes, "total_s": total, "rc": rc}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"main job: rc {rc}, {total} s = {total / 60:.1f} min -> {args.out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
