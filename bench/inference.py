"""CPU inference latency and size: dense vs baked (zeros) vs CSR sparse vs shrunk-structured.

The unstructured variants carry 65% sparsity in the conformer preset's matrices (magnitude
masks: latency and size do not depend on how the mask was learned). Each structured variant
prunes a share of every block's FFN units, attention heads and convolution channels, then
`pinch.shrink` removes them. Latency: ``--rounds`` rounds of ``--repeats`` interleaved
forwards; each round's median gives a speed-up, reported as the median and range over rounds.
The front end (conv2d subsampling and positional encoding), which no group covers, is timed in
the same rounds, so each row also states its share and the speed-up of the blocks without it.
Usage: python bench/inference.py [--threads 1] [--rounds 3] [--repeats 20] [--seconds 10] [--structured 0.5 0.65 0.8]
"""
import argparse
import copy
import os
import sys
import tempfile

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
import pinch  # noqa: E402
from common import bar_plot, conformer_encoder, features, median, params_of, timed, write_json  # noqa: E402


class CSRLinear(nn.Module):
    """A Linear whose weight is a torch sparse CSR matrix (MKL sparse GEMM on CPU)."""

    def __init__(self, linear):
        super().__init__()
        self.weight = linear.weight.detach().to_sparse_csr()
        self.bias = linear.bias.detach() if linear.bias is not None else None

    def forward(self, x):
        out = torch.nn.functional.linear(x.reshape(-1, x.shape[-1]), self.weight, self.bias)
        return out.reshape(*x.shape[:-1], -1)


def to_csr(model):
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and float((child.weight == 0).float().mean()) > 0.5:
                setattr(module, child_name, CSRLinear(child))
    return model


def unstructured(model, sparsity):
    pruner = pinch.Pruner(model, method="ump", target_sparsity=sparsity, preset="conformer", total_steps=1)
    pruner.start()
    return pinch.bake(model)


def structured(model, fraction):
    pruner = pinch.Pruner(model, target_sparsity=fraction, preset="conformer", granularity="structured",
                          total_steps=1)
    with torch.no_grad():  # per tensor, a threshold at the fraction-quantile group RMS
        for g in pruner.method.gates:
            rms = g.weight.reshape(g.groups, -1).square().mean(1).sqrt()
            g.threshold.fill_(float(torch.quantile(rms, fraction)) * (1 + 1e-6))
    return pinch.shrink(model)


def latencies(runs, repeats, rounds):
    """Per round, median seconds per call of each of ``runs`` (name: callable); interleaved so
    machine load hits all alike."""
    out = {name: [] for name in runs}
    with torch.no_grad():
        for run in runs.values():
            run()
        for _ in range(rounds):
            times = {name: [] for name in runs}
            for _ in range(repeats):
                for name, run in runs.items():
                    times[name].append(timed(run))
            for name, t in times.items():
                out[name].append(median(t))
    return out


def front_end(encoder, x, lens):
    """A call of the encoder's front end alone (``embed``: subsampling, positional encoding)."""
    from espnet.nets.pytorch_backend.nets_utils import make_pad_mask

    masks = ~make_pad_mask(lens)[:, None, :]
    return lambda: encoder.embed(x, masks)


def size_on_disk(model, sparse):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m")
        if sparse:
            return pinch.save_sparse(model, path)
        torch.save(model.state_dict(), path)
        return os.path.getsize(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the issue's figure: 1)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--structured", type=float, nargs="+", default=[0.5, 0.65, 0.8],
                        help="shares of FFN units, heads and conv channels to remove")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    x, lens = features(batch=1, seconds=args.seconds)
    dense = conformer_encoder()
    baked = unstructured(copy.deepcopy(dense), 0.65)
    # name: (model that runs, model it stores, on-disk size: torch.save, or pinch's sparse file)
    variants = {
        "dense": (dense, dense, size_on_disk(dense, False)),
        "baked 65% (zeros)": (baked, baked, size_on_disk(baked, False)),
        "CSR sparse 65%": (to_csr(copy.deepcopy(baked)), baked, size_on_disk(baked, True)),
    }
    for fraction in args.structured:
        shrunk = structured(copy.deepcopy(dense), fraction)
        variants[f"shrunk {fraction:.0%} (FFN, heads, conv)"] = (shrunk, shrunk, size_on_disk(shrunk, False))
    rows = []
    for model, _, _ in variants.values():
        model.eval()
    runs = {name: (lambda m=v[0]: m(x, lens)) for name, v in variants.items()}
    seconds = latencies({**runs, "front end": front_end(dense, x, lens)}, args.repeats, args.rounds)
    front = seconds.pop("front end")
    for name, (model, stored, size) in variants.items():
        speedups = [d / s for d, s in zip(seconds["dense"], seconds[name])]
        blocks = [(d - f) / (s - f) for d, s, f in zip(seconds["dense"], seconds[name], front)]
        nonzero = sum(int((p != 0).sum()) for p in stored.parameters())
        rows.append({"variant": name, "latency_ms": median(seconds[name]) * 1000, "speedup": median(speedups),
                     "speedup_range": [min(speedups), max(speedups)], "params": params_of(stored),
                     "nonzero_params": nonzero, "bytes": size,
                     "front_end_share": median(f / s for s, f in zip(seconds[name], front)),
                     "speedup_without_front_end": median(blocks),
                     "speedup_without_front_end_range": [min(blocks), max(blocks)]})
    dense_bytes = rows[0]["bytes"]
    print(f"{'variant':34s} {'latency ms':>10s} {'speed-up [range]':>20s} {'params':>10s} {'non-zero':>10s} "
          f"{'MB':>7s} {'x dense':>7s}")
    for r in rows:
        r["size_ratio"] = r["bytes"] / dense_bytes
        lo, hi = r["speedup_range"]
        print(f"{r['variant']:34s} {r['latency_ms']:10.1f} {r['speedup']:6.2f} [{lo:.2f}, {hi:.2f}] "
              f"{r['params']:>10,d} {r['nonzero_params']:>10,d} {r['bytes'] / 1e6:7.2f} {r['size_ratio']:7.2f}")
    result = {"model": "ESPnet ConformerEncoder, 6 blocks, d=144, ffn=576",
              "input": f"batch 1 x {args.seconds} s of 80-dim features", "rounds": args.rounds,
              "repeats": args.repeats, "threads": args.threads, "front_end_ms": median(front) * 1000,
              "rows": rows, "target_structured_speedup": 1.6}
    name = "inference" if args.threads == 1 else f"inference_{args.threads}threads"
    path = write_json(args.out, name, result)
    bar_plot(args.out, name, [r["variant"].split(" (")[0] for r in rows], [r["latency_ms"] for r in rows],
             "ms", f"Encoder latency, {args.seconds:g} s of audio (CPU)")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
