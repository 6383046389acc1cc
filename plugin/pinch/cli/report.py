"""``pinch report``: per-layer sparsity of a checkpoint, as the forward pass sees it, and,
for a checkpoint still gated, what the gates cover."""
import dataclasses
import json
import os

from pinch.export.checkpoint import load_state_dict
from pinch.export.bake import bake_state_dict
from pinch.gates.gate import THRESHOLD_SUFFIX
from pinch.targets.coverage import measure


def summarize(path):
    """Per-matrix sparsity (thresholds applied if the checkpoint is still gated) and totals."""
    raw = load_state_dict(path)
    gated = [k[: -len(THRESHOLD_SUFFIX)] for k in raw if k.endswith(THRESHOLD_SUFFIX)]
    state = bake_state_dict(raw)
    layers, params, nonzero = [], 0, 0
    for name, value in state.items():
        if not value.is_floating_point():
            continue
        n, nz = value.numel(), int((value != 0).sum())
        params, nonzero = params + n, nonzero + nz
        if value.dim() >= 2:
            layers.append({"name": name, "shape": list(value.shape), "params": n, "sparsity": 1 - nz / n})
    matrices = sum(entry["params"] for entry in layers)
    zero_in_matrices = sum(entry["params"] * entry["sparsity"] for entry in layers)
    coverage = measure({e["name"]: e["params"] for e in layers}, gated, params) if gated else None
    return {
        "path": path,
        "bytes_on_disk": os.path.getsize(path),
        "params": params,
        "nonzero": nonzero,
        "sparsity": 1 - nonzero / params if params else 0.0,
        "matrix_sparsity": zero_in_matrices / matrices if matrices else 0.0,
        "layers": layers,
        "coverage": (dataclasses.asdict(coverage) | {"encoder_share": coverage.encoder_share, "summary": coverage.summary(),
                                                   "warning": coverage.warning()}
                     if coverage else None),
    }


def format_table(summary):
    width = max([len(e["name"]) for e in summary["layers"]] + [20])
    lines = [f"{'layer':{width}s} {'shape':>16s} {'params':>10s} {'sparsity':>8s}"]
    for e in summary["layers"]:
        lines.append(f"{e['name']:{width}s} {'x'.join(map(str, e['shape'])):>16s} {e['params']:>10,d} {e['sparsity']:8.3f}")
    lines.append(f"{'matrices (>= 2-D)':{width}s} {'':>16s} {'':>10s} {summary['matrix_sparsity']:8.3f}")
    lines.append(
        f"{'whole model':{width}s} {'':>16s} {summary['params']:>10,d} {summary['sparsity']:8.3f}"
        f"   non-zero {summary['nonzero']:,}, {summary['bytes_on_disk'] / 1e6:.2f} MB on disk"
    )
    if summary["coverage"]:
        lines.append(f"the gates: {summary['coverage']['summary']}")
        if summary["coverage"]["warning"]:
            lines.append(f"warning: {summary['coverage']['warning']}")
    return "\n".join(lines)


def run(args):
    summary = summarize(args.path)
    print(json.dumps(summary, indent=2) if args.json else format_table(summary))
