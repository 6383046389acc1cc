"""Train-step time and peak memory of a gated vs an ungated encoder (CPU, or GPU with --device).

Dense, gated (the gate's math compiled, the default) and gated with ``PINCH_COMPILE=0``
(eager) train in one process with their steps interleaved, so machine load hits all
alike; each repeat gives one gated/dense ratio of median step times, and the figures are
the median and range over repeats. Peak memory is measured in a fresh process per variant.
The threshold projection, which runs only on steps where sparsity exceeds the target,
is timed on its own.
Usage: python bench/gate_overhead.py [--model conformer|wav2vec2] [--threads 1 2] [--repeats 3] [--steps 20]
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import pinch  # noqa: E402
from pinch.methods.sspg import common_threshold_scale  # noqa: E402
from tests.conftest import optimizer_step  # noqa: E402
from common import (bar_plot, conformer_encoder, features, median, params_of, spread, timed, wav2vec2_base,  # noqa: E402
                    waveform, write_json)

MODELS = {
    "conformer": ("ESPnet ConformerEncoder, 6 blocks, d=144, ffn=576, batch 8 x 3 s of 80-dim features",
                  "conformer"),
    "wav2vec2": ("Hugging Face Wav2Vec2Model at wav2vec2-base size (random weights), the paper's 6 linears "
                 "per block gated, batch 1 x 10 s", "wav2vec2"),
}
VARIANTS = ("dense", "gated", "gated_eager")
TARGET_TIME, TARGET_MEMORY = 1.05, 1.10


@contextlib.contextmanager
def compiling(on):
    old = os.environ.get("PINCH_COMPILE")
    os.environ["PINCH_COMPILE"] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["PINCH_COMPILE"]
        else:
            os.environ["PINCH_COMPILE"] = old


def inputs(model_name, device):
    if model_name == "conformer":
        x, lens = features()
        return x.to(device), lens.to(device)
    return (waveform().to(device),)


def make(model_name, gated, device):
    model = (conformer_encoder() if model_name == "conformer" else wav2vec2_base()).to(device)
    pruner = None
    if gated:
        pruner = pinch.Pruner(model, target_sparsity=0.65, preset=MODELS[model_name][1], total_steps=1000)
    return model, pruner, torch.optim.AdamW(model.parameters(), lr=2e-4)


def step_fn(model, pruner, opt, args, compiled=True):
    def step():
        with compiling(compiled):
            out = model(*args)
            out = out[0] if isinstance(out, tuple) else out.last_hidden_state
            optimizer_step(out.square().mean(), opt, pruner)
        if args[0].is_cuda:
            torch.cuda.synchronize()

    return step


def compile_gate_kernels(pruner):
    """Run the model's gates once on copies of their weights, which compiles the kernels its
    steps use (their one-time cost is not training memory)."""
    bank = pruner.method.bank
    weights = [g.weight.detach().clone().requires_grad_(True) for g in bank.gates]
    thresholds = [g.threshold.detach().clone().requires_grad_(True) for g in bank.gates]
    with compiling(True):
        masked, kept = pinch.gates.masking.pinch_weights(weights, thresholds, 0.3, bank.groups, bank.costs, bank.soft)
        (sum(m.sum() for m in masked) + kept).backward()
        pinch.gates.masking.kept_total([(w, t, g.groups, g.cost) for w, t, g in zip(weights, thresholds, bank.gates)],
                                       bank.costs)


def peak_memory_mb(model_name, variant, device, steps=3):
    """Peak memory growth over training steps (max RSS on CPU, the allocator's peak on
    GPU), in a fresh process per variant."""
    code = f"""
import json, sys, torch
sys.path.insert(0, 'bench')
import gate_overhead as g, common
m, p, o = g.make({model_name!r}, {variant != 'dense'}, {device!r})
s = g.step_fn(m, p, o, g.inputs({model_name!r}, {device!r}), compiled={variant == 'gated'})
if {variant == 'gated'}:  # compile the kernels first: their one-time cost is not training memory
    g.compile_gate_kernels(p)
if {device!r} == 'cpu':
    print(json.dumps(common.peak_rss_growth_mb(lambda: [s() for _ in range({steps})])))
else:
    torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
    [s() for _ in range({steps})]
    print(json.dumps((torch.cuda.max_memory_allocated() - base) / 2**20))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"peak-memory run of {variant} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def step_ratios(runs, repeats, steps):
    """Per repeat: median step time per variant; returns those and each variant's ratio to dense."""
    medians = {k: [] for k in runs}
    for _ in range(repeats):
        times = {k: [] for k in runs}
        for _ in range(steps):
            for name, fn in runs.items():
                times[name].append(timed(fn))
        for k in runs:
            medians[k].append(median(times[k]))
    ratios = {k: [g / d for g, d in zip(medians[k], medians["dense"])] for k in runs if k != "dense"}
    return medians, ratios


def projection_cost(pruner, overshoot=0.01, repeats=5):
    """Seconds for one threshold projection (a quantile of |w| / t, then a recount), from
    sparsity one point above the target, as after an update that overshot it."""
    method = pruner.method
    groups = [g.weight.detach().reshape(g.groups, -1) for g in method.gates]
    thresholds = [g.threshold.detach() for g in method.gates]
    factor = common_threshold_scale(groups, thresholds, method.target_sparsity + overshoot)
    start = [t * factor for t in thresholds]

    def project():
        with torch.no_grad():
            for g, t in zip(method.gates, start):
                g.threshold.copy_(t)
            method._project()
            method._kept()

    project()
    return median([timed(project) for _ in range(repeats)])


def gate_cost(pruner, compiled, repeats=5):
    """Seconds for the gates alone: every gated weight masked and counted, and both gradients."""
    gates = pruner.method.gates

    def gate_pass():
        with compiling(compiled):
            total = sum(g.masked_weight().sum() for g in gates) + pruner.method.bank.kept()
            total.backward()

    gate_pass()
    return median([timed(gate_pass) for _ in range(repeats)])


def bookkeeping_cost(pruner, repeats=5):
    """Seconds for the per-step work after the optimizer update (kept count, eta switch)."""
    pruner.method.after_step()
    return median([timed(pruner.method.after_step) for _ in range(repeats)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="conformer")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="interleaved steps per repeat")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3: a median and spread need them")
    device = args.device
    data = inputs(args.model, device)
    models = {v: make(args.model, v != "dense", device) for v in VARIANTS}
    for v in VARIANTS[1:]:
        models[v][0].load_state_dict(models["dense"][0].state_dict(), strict=False)
    runs = {v: step_fn(*models[v], data, compiled=v == "gated") for v in VARIANTS}
    thread_counts = [str(t) for t in (args.threads if device == "cpu" else [torch.get_num_threads()])]
    by_threads = {}
    for threads in thread_counts:
        torch.set_num_threads(int(threads))
        for fn in runs.values():  # warm-up (the compiled variant compiles here)
            fn()
        medians, ratios = step_ratios(runs, args.repeats, args.steps)
        by_threads[threads] = {
            "step_s_median_per_repeat": medians,
            "step_time_ratio": {k: dict(zip(("median", "min", "max"), spread(r))) for k, r in ratios.items()},
        }
    # After every step timing: the projection leaves sparsity at the target, where the next
    # steps would project again (its cost is reported here, not inside the step ratios).
    pruner = models["gated"][1]
    for threads in thread_counts:
        torch.set_num_threads(int(threads))
        with compiling(True):
            by_threads[threads].update(after_step_s=bookkeeping_cost(pruner), projection_s=projection_cost(pruner))
        by_threads[threads]["gate_forward_backward_s"] = {"compiled": gate_cost(pruner, True),
                                                           "eager": gate_cost(pruner, False)}
        pruner.model.zero_grad(set_to_none=True)
    memory = {v: peak_memory_mb(args.model, v, device) for v in VARIANTS}
    result = {
        "model": MODELS[args.model][0],
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "params": params_of(models["dense"][0]),
        "gated_params": models["gated"][1].sparsity().gated_params,
        "repeats": args.repeats,
        "steps_per_repeat": args.steps,
        "threads": by_threads,
        "peak_training_memory_mb": memory,
        "peak_memory_ratio": {v: memory[v] / memory["dense"] for v in VARIANTS[1:]},
        "target_step_time_ratio": TARGET_TIME,
        "target_peak_memory_ratio": TARGET_MEMORY,
    }
    name = f"gate_overhead_{args.model}" + ("" if device == "cpu" else "_gpu")
    path = write_json(args.out, name, result)
    labels, values = [], []
    for threads, r in by_threads.items():
        for v in VARIANTS[1:]:
            labels.append(f"{v}\n{threads} thr" if device == "cpu" else v)
            values.append(r["step_time_ratio"][v]["median"])
    bar_plot(args.out, name, labels, values, "step time / dense", f"Gated train step, {args.model} ({device})")
    print(f"{result['model']}: {result['gated_params']:,} of {result['params']:,} parameters gated")
    print(f"{'threads':>7s} {'variant':12s} {'time ratio median [min, max]':>30s} {'dense s/step':>12s}")
    for threads, r in by_threads.items():
        dense = median(r["step_s_median_per_repeat"]["dense"])
        for v in VARIANTS[1:]:
            s = r["step_time_ratio"][v]
            print(f"{threads:>7s} {v:12s} {s['median']:12.3f} [{s['min']:.3f}, {s['max']:.3f}] {dense:12.3f}")
        gate = r["gate_forward_backward_s"]
        print(f"{threads:>7s} the gates alone, forward + backward: compiled {gate['compiled'] * 1e3:.1f} ms, "
              f"eager {gate['eager'] * 1e3:.1f} ms")
        print(f"{threads:>7s} after-step bookkeeping {r['after_step_s'] * 1e3:.2f} ms; "
              f"one threshold projection {r['projection_s'] * 1e3:.2f} ms")
    for v in VARIANTS[1:]:
        print(f"peak memory {v}/dense: {memory[v]:.1f} / {memory['dense']:.1f} MB = {result['peak_memory_ratio'][v]:.3f}")
    print(f"targets: time <= {TARGET_TIME}, memory <= {TARGET_MEMORY}; wrote {path}")
    return result


if __name__ == "__main__":
    main()
