"""``python -m pinch.deploy.report``: a recipe's deployment table from its exported forms.

Every exported form's WER, MAPSSWE vs the dense PyTorch model, size, download size and
onnxruntime latency as a ratio to the dense fp32 ONNX model. Download: the report writes each
form's files and ``tokens.txt`` as ``<model_dir>/onnx/download/<model>-<form>.tar.bz2``
(pinch.deploy.download; sherpa-onnx's release format) and gives that archive's size. Latency:
each graph on 10 s of random features at batch 1, one thread, all forms interleaved in 3
rounds of 10 runs (median and range of the per-round ratio); the feature input's static
dimension is the feature size, its dynamic ones batch (1) and time, so NeMo's (batch,
features, time) and ESPnet's (batch, time, features) graphs both work. A transducer's latency
is its encoder's: its decoder and joiner run once per frame or token, as often as the search
asks, which random features do not say. sherpa-onnx runs the same graph through onnxruntime,
so its rows carry the graph's latency.

    python -m pinch.deploy.report --model_dirs exp/dense exp/sspg0.65 \
        --runtimes onnxruntime sherpa-onnx --test_sets test_clean test_other --out exp/DEPLOY.md
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

from pinch.deploy.latency import onnx_latencies
from pinch.deploy.onnx_files import onnx_session
from pinch.deploy.download import write_download
from pinch.deploy.table import FORMS, deploy_row, download_file, download_sources, form_files, write_table

SECONDS = 10


def latency_feeds(onnx_path, frames=SECONDS * 100):
    """Random features (and their length) shaped for the graph's inputs."""
    feeds, rng = {}, np.random.default_rng(0)
    for item in onnx_session(onnx_path).get_inputs():
        if "float" in item.type:
            shape = [d if isinstance(d, int) else (1 if i == 0 else frames) for i, d in enumerate(item.shape)]
            feeds[item.name] = rng.standard_normal(shape, dtype=np.float32)
        elif "int64" in item.type and len(item.shape) == 1:
            feeds[item.name] = np.array([frames], dtype=np.int64)
        else:
            raise ValueError(f"{onnx_path}: input {item.name} ({item.type}, {item.shape}) is neither features "
                             "nor their lengths")
    return feeds


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.deploy.report", description=__doc__.split("\n")[0])
    parser.add_argument("--model_dirs", nargs="+", required=True, help="the dense model's first: the reference")
    parser.add_argument("--runtimes", nargs="+", required=True)
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--out", required=True, help="DEPLOY.md to write (and DEPLOY.json)")
    parser.add_argument("--reference", default="the dense PyTorch model",
                        help="what the MAPSSWE tests compare with, for the table's note (its decoding rule)")
    args = parser.parse_args(argv)
    try:
        files = {(d, f): form_files(d, f) for d in args.model_dirs for f in FORMS}
        missing = [str(p) for d, f in files for p in download_sources(d, f) if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{missing[0]}: missing (run the export of the deploy stage)")
        timed = [str(paths[0]) for paths in files.values()]  # the graph, or a transducer's encoder
        latency = onnx_latencies(timed, latency_feeds(timed[0]))
        # Names relative to the experiment dir: exp/dense -> dense, exp/run/baked -> run/baked.
        root = os.path.commonpath([str(Path(d).absolute().parent) for d in args.model_dirs])
        names = {d: os.path.relpath(Path(d).absolute(), root) for d in args.model_dirs}
        for d, f in files:
            write_download(download_sources(d, f), download_file(d, names[d], f))
        rows = [deploy_row(d, names[d], f, rt, args.test_sets, latency[str(files[d, f][0])])
                for d in args.model_dirs for f in FORMS for rt in args.runtimes]
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.deploy.report: error: {err}", file=sys.stderr)
        return 1
    note = (f"Latency: onnxruntime, 1 thread, batch 1 x {SECONDS} s of features, ratio of the dense fp32 "
            "ONNX model's time to each form's (above 1: faster; a transducer's: its encoder's), median [range] "
            "of 3 interleaved rounds. Download: the form's files and tokens.txt as "
            "<model dir>/onnx/download/<model>-<form>.tar.bz2 (tar -xjf unpacks it). "
            f"p vs dense PyTorch: MAPSSWE against {args.reference}.")
    write_table(args.out, rows, args.test_sets, note)
    print(Path(args.out).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
