"""Latency of ONNX files in onnxruntime, as ratios to a reference measured in the same run.

Why interleaved rounds: on a shared 2-core machine any other job slows whatever runs beside
it; forms timed in turn, in several rounds, see the same load, and the spread over rounds
says how far a ratio can be trusted.
"""
import statistics
import time

from pinch.deploy.onnx_files import onnx_session


def onnx_latencies(paths, feeds, rounds=3, repeats=10, threads=1):
    """``{path: {"load_s", "median_s", "ratio", "ratio_range"}}``; ratios are the first path's
    time over each path's per round (above 1: faster than the first)."""
    sessions, out = {}, {}
    for path in paths:
        start = time.perf_counter()
        sessions[path] = onnx_session(path, threads)
        out[path] = {"load_s": time.perf_counter() - start}
        sessions[path].run(None, feeds)  # warm-up
    per_round = {path: [] for path in paths}
    for _ in range(rounds):
        times = {path: [] for path in paths}
        for _ in range(repeats):
            for path, session in sessions.items():
                start = time.perf_counter()
                session.run(None, feeds)
                times[path].append(time.perf_counter() - start)
        for path in paths:
            per_round[path].append(statistics.median(times[path]))
    reference = per_round[paths[0]]
    for path in paths:
        ratios = [r / t for r, t in zip(reference, per_round[path])]
        out[path].update(median_s=statistics.median(per_round[path]), ratio=statistics.median(ratios),
                         ratio_range=[min(ratios), max(ratios)])
    return out
