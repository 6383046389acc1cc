"""Encoder latency per second of audio, load time and peak memory of every deployable form:
dense, baked (unstructured zeros) and shrunk (structured) encoders, fp32 and int8, in PyTorch
and in onnxruntime, at batch 1 and 8.

The model is the recipe's ESPnet Conformer encoder with random weights (speed and memory do
not depend on what the weights learned; the recipes' deploy stages report the accuracy of the
same forms on real models). int8: PyTorch's dynamic quantization of the Linear layers
(``torch.ao``); onnxruntime's dynamic quantization, and its static one (QOperator) calibrated
on random features (the scales matter for accuracy, not for speed). Latency: forms of one
runtime interleaved in ``--rounds`` rounds of ``--repeats`` runs, each as a ratio to the dense
fp32 form of the same runtime and batch (median and range over rounds). Load time and peak
memory (resident-set growth from loading the file to the end of one batch-8 forward) are
measured in a fresh process per form; PyTorch forms are state dicts, read weights-only into
the rebuilt architecture. Size: the file (PyTorch: the state dict, what a recipe stores).
Usage: python bench/deploy_latency.py [--threads 1] [--batch 1 8] [--structured 0.5 0.8] [--rounds 3] [--repeats 10]
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import conformer_encoder, features, median, peak_rss_growth_mb, write_json  # noqa: E402
from inference import latencies, structured, unstructured  # noqa: E402

from pinch.deploy.latency import onnx_latencies  # noqa: E402
from pinch.deploy.onnx_files import onnx_session, quantize_int8  # noqa: E402
from pinch.espnet.bin.export_onnx import compute_rel_positions  # noqa: E402


class Encoder(torch.nn.Module):
    """The encoder's features and lengths in, encoded frames and lengths out (what ONNX exports)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, feats, feats_lengths):
        encoded, lengths, _ = self.encoder(feats, feats_lengths)
        return encoded, lengths


def export_onnx(model, path):
    x, lens = features(batch=1, seconds=3)
    torch.onnx.export(model, (x, lens), path, input_names=["feats", "feats_lengths"], output_names=["out", "lengths"],
                      dynamic_axes={"feats": {0: "batch", 1: "time"}, "feats_lengths": {0: "batch"},
                                    "out": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}},
                      opset_version=17, dynamo=False)


def feeds(batch, seconds, seed=0):
    x, lens = features(batch=batch, seconds=seconds, seed=seed)
    return {"feats": x.numpy(), "feats_lengths": lens.numpy()}


def build(kind, share, form):
    """One PyTorch form, rebuilt the same way in any process: the variant's architecture (the
    seeded encoder, then baked or shrunk) before its weights are loaded."""
    model = conformer_encoder()
    if kind == "baked":
        model = unstructured(model, share)
    elif kind == "shrunk":
        model = structured(model, share)
    if form == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model.eval()


def load_and_run(runtime, path, batch, seconds, threads, variant=None):
    """In this (fresh) process: seconds to load ``path`` (PyTorch: a state dict, read
    weights-only into ``build(*variant)``, as a toolkit builds from its config first), and
    the peak resident-memory growth, MB, from before loading to the end of one forward at
    ``batch`` (sampled while it runs)."""
    torch.set_num_threads(threads)
    data = feeds(batch, seconds)
    model = build(*variant) if runtime == "pytorch" else None
    load_s = []

    def load_and_forward():
        start = time.perf_counter()
        if runtime == "pytorch":
            model.load_state_dict(torch.load(path, weights_only=True))
            load_s.append(time.perf_counter() - start)
            with torch.no_grad():
                model(torch.from_numpy(data["feats"]), torch.from_numpy(data["feats_lengths"]))
        else:
            session = onnx_session(path, threads)
            load_s.append(time.perf_counter() - start)
            session.run(None, data)

    peak = peak_rss_growth_mb(load_and_forward)
    return {"load_s": load_s[0], "peak_mb": peak}


def fresh_process(runtime, path, batch, seconds, threads, variant):
    code = (f"import json, sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import deploy_latency as d; print(json.dumps(d.load_and_run({runtime!r}, {path!r}, {batch}, "
            f"{seconds}, {threads}, {variant!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"loading {path} in a fresh process failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(out_dir, rows):
    """Horizontal bars, one per runtime and form, a bar per batch size: the labels stay legible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(f"{r['runtime']}: {r['model']}" for r in rows))
    batches = sorted({r["batch"] for r in rows})
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(labels) + 1))
    height = 0.8 / len(batches)
    for i, batch in enumerate(batches):
        value = {f"{r['runtime']}: {r['model']}": r["speedup"] for r in rows if r["batch"] == batch}
        ax.barh([y + i * height for y in range(len(labels))], [value[k] for k in labels], height,
                label=f"batch {batch}")
    ax.set_yticks([y + height * (len(batches) - 1) / 2 for y in range(len(labels))], labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("speed-up over dense fp32 of the same runtime")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "deploy_latency.png"), dpi=110)
    plt.close(fig)


def ratios(per_round, reference):
    r = [a / b for a, b in zip(reference, per_round)]
    return median(r), [min(r), max(r)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--structured", type=float, nargs="+", default=[0.5, 0.8],
                        help="shares of FFN units, heads and conv channels the shrunk variants remove")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    if args.rounds < 3:
        parser.error("--rounds must be at least 3: a median and spread need them")
    torch.set_num_threads(args.threads)
    kinds = [("dense", None), ("baked", 0.65)] + [("shrunk", share) for share in args.structured]
    rows, tmp = [], tempfile.mkdtemp(prefix="pinch_deploy_bench.")
    torch_models, files, variants = {}, {}, {}
    for kind, share in kinds:
        name = kind if share is None else f"{kind} {share:.0%}"
        for form in ("fp32", "int8"):
            key = f"{name} | {form}"
            variants[key] = (kind, share, form)
            torch_models[key] = build(kind, share, form)
            files[("pytorch", key)] = os.path.join(tmp, f"{len(files)}.pth")
            torch.save(torch_models[key].state_dict(), files[("pytorch", key)])  # what a recipe stores
        model = torch_models[f"{name} | fp32"]
        fp32 = os.path.join(tmp, f"{len(files)}.onnx")
        export_onnx(Encoder(compute_rel_positions(copy.deepcopy(model))), fp32)  # as the recipe exports
        files[("onnxruntime", f"{name} | fp32")] = fp32
        check = feeds(1, 3, seed=1)
        files[("onnxruntime", f"{name} | int8")] = str(quantize_int8(fp32, fp32[:-5] + ".int8.onnx", check))
        calibration = [feeds(1, 3, seed=s) for s in range(8)]
        files[("onnxruntime", f"{name} | int8_static")] = str(
            quantize_int8(fp32, fp32[:-5] + ".int8_static.onnx", check, calibration=calibration))
    onnx_paths = {key: path for (rt, key), path in files.items() if rt == "onnxruntime"}
    for batch in args.batch:
        audio = batch * args.seconds
        pt = latencies(torch_models, *features(batch=batch, seconds=args.seconds), args.repeats, args.rounds)
        ort = onnx_latencies(list(onnx_paths.values()), feeds(batch, args.seconds), args.rounds, args.repeats,
                             args.threads)
        for key, per_round in pt.items():
            ratio, spread = ratios(per_round, pt["dense | fp32"])
            rows.append({"runtime": "pytorch", "model": key, "batch": batch, "ms_per_audio_s": median(per_round)
                         * 1000 / audio, "speedup": ratio, "speedup_range": spread})
        for key, path in onnx_paths.items():
            rows.append({"runtime": "onnxruntime", "model": key, "batch": batch,
                         "ms_per_audio_s": ort[path]["median_s"] * 1000 / audio, "speedup": ort[path]["ratio"],
                         "speedup_range": ort[path]["ratio_range"]})
    memory = {(rt, key): fresh_process(rt, path, max(args.batch), args.seconds, args.threads, variants.get(key))
              for (rt, key), path in files.items()}
    for row in rows:
        path = files[(row["runtime"], row["model"])]
        row.update(memory[(row["runtime"], row["model"])], size_mb=os.path.getsize(path) / 1e6)
    print(f"{'runtime':11s} {'model | form':24s} {'batch':>5s} {'ms / s audio':>12s} {'speed-up [range]':>20s} "
          f"{'MB':>6s} {'load s':>7s} {'peak MB':>8s}")
    for r in rows:
        lo, hi = r["speedup_range"]
        print(f"{r['runtime']:11s} {r['model']:24s} {r['batch']:5d} {r['ms_per_audio_s']:12.2f} "
              f"{r['speedup']:6.2f} [{lo:.2f}, {hi:.2f}] {r['size_mb']:6.2f} {r['load_s']:7.3f} {r['peak_mb']:8.1f}")
    result = {"model": "ESPnet ConformerEncoder, 6 blocks, d=144, ffn=576 (random weights)",
              "input": f"batch x {args.seconds} s of 80-dim features", "threads": args.threads,
              "rounds": args.rounds, "repeats": args.repeats,
              "note": "speed-up: dense fp32 of the same runtime and batch over the form (above 1: faster); "
                      f"load and peak memory: fresh process, one forward at batch {max(args.batch)}",
              "rows": rows}
    path = write_json(args.out, "deploy_latency", result)
    plot(args.out, rows)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
