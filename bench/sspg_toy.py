"""SSPG on the test suite's toy MLP: where it lands, what it costs, when it gets there.

The toy is the one ``tests/`` compresses (16-64-64-64-4 regression MLP under ``encoder``):
a converged model pruned to 50%, and a model still learning pruned to 65%, each for 1500
AdamW updates at lr 2e-4 and 3e-3, with the task loss as it is and scaled by 30 (espnet2's
CTC sums over an utterance where NeMo's averages: one preset must serve both scales).
Global magnitude pruning with the same updates is the yardstick of what the toy can keep.

    python bench/sspg_toy.py --label auto                       # pinch's default
    python bench/sspg_toy.py --label eta1000 --eta 1000
    python bench/sspg_toy.py --label settle08 --settle_at 0.8   # the mask settled for the last 20%
    PYTHONPATH=<old checkout>/plugin python bench/sspg_toy.py --label old   # another pinch
Each label writes bench/results/sspg_toy_<label>.json and prints a table.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import pinch  # noqa: E402
from common import write_json  # noqa: E402
from tests.conftest import ToyNet, make_toy_data, train  # noqa: E402

TARGETS = [r"encoder\.\d+"]
STEPS = 1500


def dense_state(data):
    torch.manual_seed(0)
    model = ToyNet()
    loss = train(model, data, STEPS, 3e-3)[-1]
    return model.state_dict(), loss


def run(data, dense, converged, lr, scale, options):
    if converged:
        model, target = ToyNet(), 0.5
        model.load_state_dict(dense)
    else:
        torch.manual_seed(1)
        model, target = ToyNet(), 0.65
    pruner = pinch.Pruner(model, target_sparsity=target, targets=TARGETS, total_steps=STEPS, **options)
    x, y = data
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    reached, losses = None, []
    for step in range(STEPS):
        loss = ((model(x) - y) ** 2).mean()
        losses.append(loss.item())
        opt.zero_grad()
        (scale * loss + pruner.penalty()).backward()
        opt.step()
        pruner.step()
        if reached is None and pruner.stats()["sparsity"] >= target - 1e-4:  # rounding to whole weights
            reached = step + 1
    return {"model": "converged" if converged else "learning", "target": target, "lr": lr, "loss_scale": scale,
            "sparsity": pruner.sparsity().gated, "loss_start": losses[0], "loss_end": losses[-1],
            "first_reached_update": reached, "eta_end": getattr(pruner.method, "eta", None)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--method", default="sspg")
    parser.add_argument("--eta", default=None, help="a number, or auto (this pinch's default when left out)")
    parser.add_argument("--settle_at", type=float, default=None, help="sspg's settle_at (left out: the default)")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    options = {"method": args.method}
    if args.eta is not None:
        options["eta"] = args.eta if args.eta == "auto" else float(args.eta)
    if args.settle_at is not None:
        options["settle_at"] = args.settle_at
    data = make_toy_data()
    dense, dense_loss = dense_state(data)
    rows = [run(data, dense, converged, lr, scale, options)
            for converged in (True, False) for lr in (2e-4, 3e-3) for scale in (1.0, 30.0)]
    print(f"{args.label}: dense loss {dense_loss:.2e} (pinch from {os.path.dirname(pinch.__file__)})")
    print(f"{'model':10s} {'lr':>7s} {'scale':>5s} {'sparsity':>8s} {'loss end':>9s} {'x dense':>8s} "
          f"{'end/start':>9s} {'reached at':>10s} {'eta end':>8s}")
    for r in rows:
        eta = r["eta_end"]
        print(f"{r['model']:10s} {r['lr']:7.0e} {r['loss_scale']:5.0f} {r['sparsity']:8.4f} {r['loss_end']:9.2e} "
              f"{r['loss_end'] / dense_loss:8.1f} {r['loss_end'] / r['loss_start']:9.3f} "
              f"{str(r['first_reached_update']):>10s} {'' if eta is None else f'{eta:.3g}':>8s}")
    path = write_json(args.out, f"sspg_toy_{args.label}", {
        "label": args.label, "options": options, "dense_loss": dense_loss, "updates": STEPS, "runs": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
