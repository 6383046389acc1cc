"""Train-step time and peak memory of a gated vs an ungated Conformer encoder (CPU).

Both models run in the same process with their steps interleaved, so machine load hits
both alike. Peak memory is measured in separate processes (max RSS), one per variant.
Usage: python bench/gate_overhead.py [--steps 20] [--out bench/results]
"""
import argparse
import subprocess
import sys

import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
import pinch  # noqa: E402
from common import bar_plot, conformer_encoder, features, median, params_of, timed, write_json  # noqa: E402


def make(gated, total_steps=1000):
    model = conformer_encoder()
    pruner = pinch.Pruner(model, target_sparsity=0.65, preset="conformer", total_steps=total_steps) if gated else None
    return model, pruner, torch.optim.AdamW(model.parameters(), lr=2e-4)


def step_fn(model, pruner, opt, x, lens):
    def step():
        out, _, _ = model(x, lens)
        loss = out.square().mean()
        if pruner is not None:
            loss = loss + pruner.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if pruner is not None:
            pruner.step()

    return step


def peak_rss_mb(variant, steps=3):
    """Peak memory growth over training steps, in a fresh process per variant."""
    code = (
        "import sys; sys.path.insert(0, 'bench'); import gate_overhead as g, common; "
        f"m, p, o = g.make({variant == 'gated'}); x, l = g.features(); s = g.step_fn(m, p, o, x, l); "
        f"print(common.peak_rss_growth_mb(lambda: [s() for _ in range({steps})]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    x, lens = features()
    dense = make(False)
    gated = make(True)
    gated[0].load_state_dict(dense[0].state_dict(), strict=False)
    runs = {"dense": step_fn(*dense, x, lens), "gated": step_fn(*gated, x, lens)}
    for fn in runs.values():  # warm-up
        fn()
    times = {k: [] for k in runs}
    for _ in range(args.steps):
        for name, fn in runs.items():
            times[name].append(timed(fn))
    med = {k: median(v) for k, v in times.items()}
    rss = {k: peak_rss_mb(k) for k in runs}
    result = {
        "model": "ESPnet ConformerEncoder, 6 blocks, d=144, ffn=576, batch 8 x 3 s of 80-dim features",
        "params": params_of(dense[0]),
        "gated_params": gated[1].sparsity().gated_params,
        "steps": args.steps,
        "step_s_median": med,
        "step_time_ratio": med["gated"] / med["dense"],
        "peak_training_memory_mb": rss,
        "peak_memory_ratio": rss["gated"] / rss["dense"],
        "target_step_time_ratio": 1.10,
    }
    path = write_json(args.out, "gate_overhead", result)
    bar_plot(args.out, "gate_overhead", ["dense", "gated"], [med["dense"], med["gated"]], "s / train step",
             "Train step, Conformer encoder (CPU)")
    print(f"{'variant':8s} {'step s (median)':>16s} {'peak MB (training)':>18s}")
    for k in runs:
        print(f"{k:8s} {med[k]:16.4f} {rss[k]:18.1f}")
    print(f"step-time ratio gated/dense: {result['step_time_ratio']:.3f} (target <= 1.10); "
          f"peak-memory ratio: {result['peak_memory_ratio']:.3f}")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
