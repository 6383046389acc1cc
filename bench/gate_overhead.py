"""Train-step time and peak memory of gated vs ungated encoders, on a CPU or a GPU.

Dense and four gated variants, the gate bank's two paths (``per_matrix``, ``fused``:
pinch.gates.masking) each with its math compiled (the default) and eager
(``PINCH_COMPILE=0``), train in one process with their steps interleaved, so machine load
hits all alike; each repeat gives one gated/dense ratio of median step times, and the
figures are the median and range over repeats, for every batch and precision asked for.
Peak memory: on a CPU the growth of resident memory over steps in a fresh process per
variant; on a GPU the allocator's peak during two steps above what was allocated before
them (model, optimizer state), in the same process. Also timed alone: the gates' forward and
backward per variant, the per-step bookkeeping per path, one threshold projection. The JSON
names the device, whether any compiled gate function fell back to eager, and the load of
the machine (a CPU shared with other jobs gives upper bounds).
Usage: python bench/gate_overhead.py [--model conformer wav2vec2] [--device cpu|cuda]
    [--batch 1x10 8x10] [--dtype fp32 bf16] [--threads 1 2] [--repeats 3] [--steps 20] [--quick]
    [--whole_pass STEPS [--max_repeats 9]]   (a whole pass instead, projections included)
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
from pinch.gates import masking  # noqa: E402
from pinch.gates.fused import Fused  # noqa: E402
from pinch.methods import sspg  # noqa: E402
from pinch.methods.sspg import common_threshold_scale  # noqa: E402
from tests.conftest import optimizer_step  # noqa: E402
from common import (bar_plot, conformer_encoder, features, median, params_of, spread, timed, wav2vec2_base,  # noqa: E402
                    waveform, write_json)

MODELS = {
    "conformer": ("ESPnet ConformerEncoder, 6 blocks, d=144, ffn=576, 80-dim features", "conformer", "8x3"),
    "wav2vec2": ("Hugging Face Wav2Vec2Model at wav2vec2-base size (random weights), the paper's 6 linears "
                 "per block gated", "wav2vec2", "1x10"),
}
# --quick: the same code at toy sizes, a smoke test of the benchmark (its numbers mean nothing).
QUICK = {"conformer": dict(d_model=32, blocks=2, heads=2, ffn=64),
         "wav2vec2": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)}
QUICK_BATCH = "2x1"
# variant -> (gate path, compiled); dense has no gates
VARIANTS = {"dense": None, "per_matrix": ("per_matrix", True), "fused": ("fused", True),
            "per_matrix_eager": ("per_matrix", False), "fused_eager": ("fused", False)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
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


def parse_batch(spec):
    """``"8x10"``: 8 utterances of 10 s."""
    try:
        batch, seconds = spec.split("x")
        return int(batch), float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch {spec!r} is not BATCHxSECONDS, e.g. 8x10") from None


def inputs(model_name, device, batch):
    size, seconds = parse_batch(batch)
    if model_name == "conformer":
        x, lens = features(batch=size, seconds=seconds)
        return x.to(device), lens.to(device)
    return (waveform(batch=size, seconds=seconds).to(device),)


def make(model_name, variant, device, quick=False, total_steps=1000, lr=2e-4):
    sizes = QUICK[model_name] if quick else {}
    model = (conformer_encoder(**sizes) if model_name == "conformer" else wav2vec2_base(**sizes)).to(device)
    pruner = None
    if VARIANTS[variant]:
        pruner = pinch.Pruner(model, target_sparsity=0.65, preset=MODELS[model_name][1], total_steps=total_steps,
                              gate_path=VARIANTS[variant][0])
    return model, pruner, torch.optim.AdamW(model.parameters(), lr=lr)


def step_fn(model, pruner, opt, args, variant, dtype):
    """One training step; the forward under autocast for bf16, as mixed-precision training runs it."""
    compiled = bool(VARIANTS[variant] and VARIANTS[variant][1])
    device = args[0].device

    def step():
        with compiling(compiled):
            with torch.autocast(device.type, dtype=DTYPES[dtype], enabled=dtype != "fp32"):
                out = model(*args)
                out = out[0] if isinstance(out, tuple) else out.last_hidden_state
                loss = out.float().square().mean()
            optimizer_step(loss, opt, pruner)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def compile_gate_kernels(pruner):
    """Run the model's gates once on copies of their weights, which compiles the kernels its
    steps use (their one-time cost is not training memory)."""
    bank = pruner.method.bank
    weights = [g.weight.detach().clone().requires_grad_(True) for g in bank.gates]
    thresholds = [g.threshold.detach().clone().requires_grad_(True) for g in bank.gates]
    with compiling(True):
        masked, kept = masking.pinch_weights(weights, thresholds, 0.3, bank.groups, bank.costs, bank.soft,
                                             path=bank.path)
        (sum(m.sum() for m in masked) + kept).backward()
        masking.kept_total([(w, t, g.groups, g.cost) for w, t, g in zip(weights, thresholds, bank.gates)],
                           bank.costs, bank.path)


def rss_peak_mb(spec, steps=3):
    """Peak resident-memory growth over training steps, in a fresh process (CPU)."""
    out = subprocess.run([sys.executable, __file__, "--memory-of", json.dumps(spec), "--steps", str(steps)],
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"peak-memory run of {spec['variant']} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_of(spec, steps):
    """The body of `rss_peak_mb`'s process: prints the growth in MB."""
    from common import peak_rss_growth_mb

    model, pruner, opt = make(spec["model"], spec["variant"], "cpu", spec["quick"])
    step = step_fn(model, pruner, opt, inputs(spec["model"], "cpu", spec["batch"]), spec["variant"], spec["dtype"])
    if VARIANTS[spec["variant"]] and VARIANTS[spec["variant"]][1]:
        compile_gate_kernels(pruner)
    print(json.dumps(peak_rss_growth_mb(lambda: [step() for _ in range(steps)])))


def cuda_peak_mb(step, steps=2):
    """The allocator's peak during ``steps`` steps above what was allocated before them."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    for _ in range(steps):
        step()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


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


def synced(fn):
    """``fn`` that waits for the GPU, so that timing it times the work."""
    def call():
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    return call


def projection_cost(pruner, overshoot=0.01, repeats=5):
    """Seconds for one threshold projection (a quantile of |w| / t, then a recount), from
    sparsity one point above the target, as after an update that overshot it."""
    method = pruner.method
    groups = [g.weight.detach().reshape(g.groups, -1) for g in method.gates]
    thresholds = [g.threshold.detach() for g in method.gates]
    factor = common_threshold_scale(groups, thresholds, method.target_sparsity + overshoot)
    start = [t * factor for t in thresholds]

    @synced
    def project():
        with torch.no_grad():
            for g, t in zip(method.gates, start):
                g.threshold.copy_(t)
            method._project()
            method._kept()

    project()
    return median([timed(project) for _ in range(repeats)])


def gate_cost(pruner, compiled, repeats=5):
    """Seconds for the gates alone, as a training step runs them: every gated weight masked
    and counted, and both gradients (the bank's one autograd call, nothing added around it)."""
    bank = pruner.method.bank
    weights, thresholds = [g.weight for g in bank.gates], [g.threshold for g in bank.gates]
    g = torch.Generator(device=weights[0].device).manual_seed(0)
    upstream = [torch.randn(w.shape, generator=g, device=w.device) for w in weights]

    @synced
    def gate_pass():
        with compiling(compiled):
            masked, kept = masking.pinch_weights(weights, thresholds, bank.tau(), bank.groups, bank.costs_on_device(),
                                                 bank.soft, path=bank.path)
            torch.autograd.grad([kept, *masked], weights + thresholds, [torch.ones_like(kept), *upstream])

    gate_pass()
    return median([timed(gate_pass) for _ in range(repeats)])


def bookkeeping_cost(pruner, repeats=5):
    """Seconds for the per-step work after the optimizer update (kept count, eta switch)."""
    after = synced(pruner.method.after_step)
    after()
    return median([timed(after) for _ in range(repeats)])


def fused_functions():
    """Every compiled-or-eager gate function: which were compiled, and which fell back to eager."""
    return {f"{m.__name__.rsplit('.', 1)[-1]}.{name}": f for m in (masking, sspg)
            for name, f in vars(m).items() if isinstance(f, Fused)}


def device_name(device):
    if device == "cuda":
        return torch.cuda.get_device_name()
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "cpu")


def measure(model_name, args):
    """Every batch and precision of one model: the JSON of `main`."""
    device, quick = args.device, args.quick
    batches = args.batch or [QUICK_BATCH if quick else MODELS[model_name][2]]
    variants = ["dense"] + [v for v in args.variants if v != "dense"]
    models = {v: make(model_name, v, device, quick) for v in variants}
    for v in variants[1:]:
        models[v][0].load_state_dict(models["dense"][0].state_dict(), strict=False)
    thread_counts = [str(t) for t in (args.threads if device == "cpu" else [torch.get_num_threads()])]
    settings = []
    for batch in batches:
        data = inputs(model_name, device, batch)
        for dtype in args.dtype:
            runs = {v: step_fn(*models[v], data, v, dtype) for v in variants}
            for threads in thread_counts:
                torch.set_num_threads(int(threads))
                for fn in runs.values():  # warm-up (compiled variants compile here, once per process)
                    fn()
                medians, ratios = step_ratios(runs, args.repeats, args.steps)
                setting = {"batch": batch, "dtype": dtype, "threads": threads,
                           "step_s_median_per_repeat": medians,
                           "step_time_ratio": {k: dict(zip(("median", "min", "max"), spread(r)))
                                               for k, r in ratios.items()}}
                if device == "cuda":
                    setting["peak_memory_mb"] = {v: cuda_peak_mb(runs[v]) for v in variants}
                elif threads == thread_counts[0]:
                    setting["peak_memory_mb"] = {v: rss_peak_mb({"model": model_name, "variant": v, "batch": batch,
                                                                 "dtype": dtype, "quick": quick}) for v in variants}
                if "peak_memory_mb" in setting:
                    memory = setting["peak_memory_mb"]
                    setting["peak_memory_ratio"] = {v: memory[v] / memory["dense"] for v in variants[1:]}
                settings.append(setting)
    # Alone, after every step timing (the projection leaves sparsity at the target).
    alone = {}
    for threads in thread_counts:
        torch.set_num_threads(int(threads))
        gated = variants[1:]
        alone[threads] = {
            "gate_forward_backward_s": {v: gate_cost(models[v][1], VARIANTS[v][1]) for v in gated},
            "after_step_s": {v: bookkeeping_cost(models[v][1]) for v in gated if VARIANTS[v][1]},
        }
        with compiling(True):
            alone[threads]["projection_s"] = projection_cost(models[gated[0]][1])
        for v in gated:
            models[v][0].zero_grad(set_to_none=True)
    functions = fused_functions()
    any_gated = next(models[v][1] for v in variants[1:])
    stacks = masking._Stacked([g.weight for g in any_gated.method.gates], any_gated.method.bank.groups).stacks
    return {
        "model": MODELS[model_name][0] + (" (--quick: toy sizes)" if quick else ""),
        "device": device, "device_name": device_name(device),
        "quick": quick,
        "note": ("--quick: toy models, a smoke test that the code runs; its numbers are no measurement"
                 if quick else None),
        "params": params_of(models["dense"][0]),
        "gated_params": any_gated.sparsity().gated_params,
        "gated_matrices": len(any_gated.method.gates),
        "fused_stacks": len(stacks),
        "repeats": args.repeats, "steps_per_repeat": args.steps,
        "settings": settings,
        "alone": alone,
        "compiled": sorted(name for name, f in functions.items() if f.compiled),
        "compile_fell_back_to_eager": sorted(name for name, f in functions.items() if f.failed),
        "target_step_time_ratio": TARGET_TIME, "target_peak_memory_ratio": TARGET_MEMORY,
    }


def whole_pass(model_name, args):
    """A whole compression pass against a dense pass of as many steps, from the same weights:
    the gated pass's schedule ramps to the target (reach_at) and projects the thresholds whenever
    an update overshoots it, so its total time holds every projection, amortized over the pass
    (the early steps that ``measure`` times have none). The steps of the two passes interleave,
    so machine load hits both alike; each repeat is a fresh pair of passes, and repeats go on
    until the spread of the ratio is smaller than its distance from 1 (or --max_repeats). The
    first pair warms the process and is recorded, not counted: on the Conformer it was 1.366
    against the others' [1.096, 1.108] (bench/results/gate_overhead_conformer_whole_pass.json)."""
    device, steps, variant = args.device, args.whole_pass, args.variants[0]
    batch = (args.batch or [QUICK_BATCH if args.quick else MODELS[model_name][2]])[0]
    data = inputs(model_name, device, batch)
    torch.set_num_threads(args.threads[0])
    seconds, ratios, passes, warmup = {"dense": [], variant: []}, [], [], None
    while len(ratios) < args.max_repeats:
        models = {v: make(model_name, v, device, args.quick, total_steps=steps, lr=args.whole_pass_lr)
                  for v in ("dense", variant)}
        models[variant][0].load_state_dict(models["dense"][0].state_dict(), strict=False)
        pruner = models[variant][1]
        method = pruner.method
        projections = []
        project = method._project

        def counted_project():
            projections.append(method.clock.step)
            return project()

        method._project = counted_project
        if VARIANTS[variant][1]:
            compile_gate_kernels(pruner)  # its one-time cost is no step's
        runs = {v: step_fn(*models[v], data, v, "fp32") for v in models}
        total = {v: 0.0 for v in runs}
        for _ in range(steps):
            for v, fn in runs.items():
                total[v] += timed(fn)
        done = {"projections": len(projections), "first_reached": method.first_reached,
                "sparsity_end": round(pruner.sparsity().gated, 4)}
        if warmup is None:
            warmup = {**done, "pass_seconds": total, "ratio": total[variant] / total["dense"]}
            continue
        for v in runs:
            seconds[v].append(total[v])
        ratios.append(total[variant] / total["dense"])
        passes.append(done)
        if len(ratios) >= args.repeats:
            mid, lo, hi = spread(ratios)
            if hi - lo < abs(mid - 1):
                break
    mid, lo, hi = spread(ratios)
    functions = fused_functions()
    return {
        "model": MODELS[model_name][0] + (" (--quick: toy sizes)" if args.quick else ""),
        "device": device, "device_name": device_name(device), "quick": args.quick,
        "batch": batch, "threads": args.threads[0], "variant": variant, "steps": steps, "lr": args.whole_pass_lr,
        "target_sparsity": 0.65, "warmup_pass": warmup, "pass_seconds": seconds, "passes": passes,
        "pass_time_ratio": {"median": mid, "min": lo, "max": hi}, "repeats": len(ratios),
        "spread_below_effect": hi - lo < abs(mid - 1),
        "compiled": sorted(name for name, f in functions.items() if f.compiled),
        "compile_fell_back_to_eager": sorted(name for name, f in functions.items() if f.failed),
        "target_step_time_ratio": TARGET_TIME,
    }


def report(result, path):
    print(f"{result['model']} on {result['device_name']}: {result['gated_params']:,} of {result['params']:,} "
          f"parameters gated, {result['gated_matrices']} matrices in {result['fused_stacks']} fused stacks")
    print(f"{'batch':>6s} {'dtype':5s} {'thr':>3s} {'variant':17s} {'time ratio median [min, max]':>30s} "
          f"{'dense s/step':>12s} {'memory ratio':>12s}")
    for s in result["settings"]:
        dense = median(s["step_s_median_per_repeat"]["dense"])
        for v, r in s["step_time_ratio"].items():
            memory = s.get("peak_memory_ratio", {}).get(v)
            print(f"{s['batch']:>6s} {s['dtype']:5s} {s['threads']:>3s} {v:17s} {r['median']:12.3f} "
                  f"[{r['min']:.3f}, {r['max']:.3f}] {dense:12.4f} {'' if memory is None else f'{memory:12.3f}'}")
    for threads, a in result["alone"].items():
        print(f"{threads:>3s} threads, the gates alone, forward + backward: " + ", ".join(
            f"{v} {s * 1e3:.2f} ms" for v, s in a["gate_forward_backward_s"].items()))
        print(f"{threads:>3s} threads, after-step bookkeeping: " + ", ".join(
            f"{v} {s * 1e3:.2f} ms" for v, s in a["after_step_s"].items())
            + f"; one threshold projection {a['projection_s'] * 1e3:.2f} ms")
    fell_back = result["compile_fell_back_to_eager"]
    print(f"compile fell back to eager: {', '.join(fell_back) if fell_back else 'no'}; "
          f"targets: time <= {TARGET_TIME}, memory <= {TARGET_MEMORY}; wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), nargs="+", default=["conformer"])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch", nargs="+", help="BATCHxSECONDS each, e.g. 1x10 8x10 "
                        f"(default: the model's own, {', '.join(f'{k} {v[2]}' for k, v in MODELS.items())})")
    parser.add_argument("--dtype", choices=sorted(DTYPES), nargs="+", default=["fp32"],
                        help="bf16: the forward under autocast")
    parser.add_argument("--variants", choices=[v for v in VARIANTS if v != "dense"], nargs="+",
                        default=[v for v in VARIANTS if v != "dense"], help="gated variants beside dense")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="interleaved steps per repeat")
    parser.add_argument("--quick", action="store_true",
                        help=f"toy models, batch {QUICK_BATCH}, 3 steps, one thread: proves the code runs")
    parser.add_argument("--whole_pass", type=int, default=0, metavar="STEPS",
                        help="instead: a whole compression pass of STEPS steps against a dense one (the first "
                             "--variants, the first --threads), projections included")
    parser.add_argument("--max_repeats", type=int, default=9, help="--whole_pass: most repeats")
    parser.add_argument("--whole_pass_lr", type=float, default=1e-3,
                        help="--whole_pass: AdamW's rate (the recipes' fine-tuning rate: thresholds climb to the "
                             "target within the pass, so projections happen as in a recipe's)")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_of:
        return memory_of(json.loads(args.memory_of), args.steps)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3: a median and spread need them")
    for spec in args.batch or []:
        try:
            parse_batch(spec)
        except argparse.ArgumentTypeError as err:
            parser.error(str(err))
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    if args.quick:
        args.steps, args.threads = min(args.steps, 3), args.threads[:1]
    results = []
    for model_name in args.model:
        load = os.getloadavg()[0]
        if args.whole_pass:
            result = whole_pass(model_name, args)
            result["load_average_1min"] = {"start": load, "end": os.getloadavg()[0]}
            name = f"gate_overhead_{model_name}_whole_pass" + ("" if args.device == "cpu" else "_gpu") + (
                "_smoke" if args.quick else "")
            path = write_json(args.out, name, result)
            r = result["pass_time_ratio"]
            print(f"{result['model']}: a whole pass of {result['steps']} steps ({result['variant']}) / dense: "
                  f"{r['median']:.3f} [{r['min']:.3f}, {r['max']:.3f}] over {result['repeats']} repeats; projections "
                  f"per pass {[p['projections'] for p in result['passes']]}; wrote {path}")
            results.append(result)
            continue
        result = measure(model_name, args)
        result["load_average_1min"] = {"start": load, "end": os.getloadavg()[0]}
        name = f"gate_overhead_{model_name}" + ("" if args.device == "cpu" else "_gpu") + ("_smoke" if args.quick else "")
        path = write_json(args.out, name, result)
        labels = [f"{v}\n{s['batch']} {s['dtype']}" + (f" {s['threads']}t" if args.device == "cpu" else "")
                  for s in result["settings"] for v in s["step_time_ratio"]]
        values = [r["median"] for s in result["settings"] for r in s["step_time_ratio"].values()]
        bar_plot(args.out, name, labels, values, "step time / dense", f"Gated train step, {model_name} ({args.device})",
                 width=max(6, 0.9 * len(labels)))
        report(result, path)
        results.append(result)
    return results


if __name__ == "__main__":
    main()
