"""What a compression run cost and how its schedule went, for the results table and the sweep
report: wall time and attempts, peak memory, the sparsity / eta / tau history and when the
target was first reached.

Both toolkits log pinch's scalars to TensorBoard through their own loggers (espnet2's
reporter, Lightning's TensorBoardLogger under NeMo's exp_manager); the event files are read
back with tensorboard's own reader, so neither toolkit's log format is parsed here.
"""
import re
from pathlib import Path

from pinch.data.atomic import write_json_atomic, write_text_atomic
from pinch.data.reading import read_json, read_text

HISTORY_TAGS = ("sparsity", "eta", "tau")
# espnet2 logs averages over its log interval: a history point within this of the target
# counts as reaching it (sspg's projection holds sparsity exactly at the target once there).
REACHED = 1e-3


def read_history(run_dir):
    """``tag -> [[step, seconds since the first point, value], ...]`` of the training scalars
    in RUN_DIR's TensorBoard files (validation writers skipped), sorted by step."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    points = {}
    for events in sorted(Path(run_dir).rglob("events.out.tfevents.*")):
        if "valid" in events.parent.parts[len(Path(run_dir).parts):]:
            continue
        acc = EventAccumulator(str(events), size_guidance={SCALARS: 0})
        acc.Reload()
        for tag in acc.Tags()[SCALARS]:
            name = tag.rsplit("/", 1)[-1]
            if name in HISTORY_TAGS:
                points.setdefault(name, []).extend((e.step, e.wall_time, e.value) for e in acc.Scalars(tag))
    if not points:
        return {}
    start = min(p[1] for series in points.values() for p in series)
    return {name: [[step, round(wall - start, 3), value] for step, wall, value in sorted(series)]
            for name, series in points.items()}


def per_interval(series):
    """The points logged every log interval, without the summaries some loggers add under the
    same tag (espnet2 logs each epoch's mean at its last update, between two interval points):
    a point closer to the previous one than the usual spacing is dropped."""
    if len(series) < 3:
        return list(series)
    gaps = sorted(b[0] - a[0] for a, b in zip(series, series[1:]))
    usual = gaps[len(gaps) // 2]
    kept = [series[0]]
    for point in series[1:]:
        if point[0] - kept[-1][0] >= usual:
            kept.append(point)
    return kept


def reach(history, target):
    """(update, seconds) at which the logged sparsity first reached ``target``, or (None, None).

    Seconds count from the first logged point, scaled up by the updates before it (the first
    point is logged after one log interval)."""
    series = per_interval(history.get("sparsity") or [])
    hit = next((p for p in series if p[2] >= target - REACHED), None)
    if hit is None:
        return None, None
    first = series[0]
    seconds = hit[1] * hit[0] / (hit[0] - first[0]) if hit[0] > first[0] else None
    return int(hit[0]), (round(seconds, 1) if seconds is not None else None)


def peak_rss_mb(run_dir):
    """The largest peak resident memory of a run's training attempts (the recipes' peak_rss)."""
    path = Path(run_dir) / "peak_rss_kb"
    if not path.is_file():
        return None
    # GNU time writes "Command exited with non-zero status N" before the figure of a failed attempt.
    kb = [int(line) for line in path.read_text().split("\n") if re.fullmatch(r"\d+", line.strip())]
    return round(max(kb) / 1024, 1) if kb else None


def wall_time(run_dir):
    """``{"wall_time_s": seconds, "attempts": n}`` of a run's training attempts (the recipes'
    wall_time_s, a line per attempt): a killed attempt's time counts, the rerun resumes its
    work; {} without the file."""
    path = Path(run_dir) / "wall_time_s"
    if not path.is_file():
        return {}
    seconds = [int(x) for x in path.read_text().split()]
    return {"wall_time_s": float(sum(seconds)), "attempts": len(seconds)}


def training_facts(run_dir, target=None):
    """Row columns from a run's directory, and its history for the details file."""
    history = read_history(run_dir)
    facts = {"peak_rss_mb": peak_rss_mb(run_dir), **wall_time(run_dir)}
    if target is not None and "eta" in history:  # sspg: the only method that learns its way there
        facts["reach_step"], facts["reach_s"] = reach(history, float(target))
    return {k: v for k, v in facts.items() if v is not None}, history


def details_path(table_dir, row):
    """Where the per-layer sparsity and history of a results row live: beside the table,
    under the dense model it descends from."""
    name = row["system"].strip("/").replace("/", "__")
    return Path(table_dir) / "runs" / row["toolkit"] / row.get("dense_fingerprint", "unknown") / f"{name}.json"


def write_details(table_dir, row, hyps, refs, layers=None, history=None):
    """The row's details: its hypotheses per test set (so that any two rows can be tested
    against each other later, the run dirs gone), per-layer sparsity and history. The
    references go beside them once per dense model (``ref_<set>.txt``)."""
    path = details_path(table_dir, row)
    path.parent.mkdir(parents=True, exist_ok=True)
    for name, ref in refs.items():
        ref_copy = path.parent / f"ref_{name}.txt"
        text = read_text(ref)
        if not ref_copy.is_file() or read_text(ref_copy) != text:
            write_text_atomic(ref_copy, text)
    write_json_atomic(path, {"system": row["system"], "date": row.get("date"), "layers": layers or {},
                             "history": history or {},
                             "hyps": {name: read_text(h) for name, h in hyps.items()}})
    return path


def read_details(table_dir, row):
    path = details_path(table_dir, row)
    return read_json(path) if path.is_file() else None
