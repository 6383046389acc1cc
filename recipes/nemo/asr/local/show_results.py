"""Collect one NeMo recipe model's scores into RESULTS.md and the shared results table.

Reads what the recipe's stages wrote in MODEL_DIR: model.nemo (size on disk), model.json
(parameters and non-zero parameters, counted over the model's parameters, not buffers
such as the mel filterbank; for a compressed model bake's measured sparsity), wall_time_s
(compression time), decode_<set>/score_wer/result.json (sclite) and
decode_<set>/mapsswe_vs_<reference>/compare.json (significance against the dense model and,
where the recipe trained it, the dense control; the verdict uses the control). The shared table is
append-only: a model dir's row is appended once per dense model it descends from (the table
is asked), so a rerun adds no second row.
"""
import argparse
import json
import sys
from pathlib import Path

from pinch.config import variant
from pinch.data.atomic import write_text_atomic
from pinch.deploy.download import gzip_size
from pinch.export.checkpoint import fingerprint, load_state_dict
from pinch.export.sparse_format import compact_bytes
from pinch.scoring import append_result, render_markdown
from pinch.scoring.by_source import by_source_markdown
from pinch.scoring.sclite import normalized_markdown
from pinch.scoring.results import all_tests, recorded, verdicts
from pinch.scoring.training_record import training_facts, write_details


def _json(path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing (run the stage that writes it)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def result_row(model_dir, test_sets, corpus, method="dense", notes="", dense=None, seed=None, epochs=None):
    """The results-table row of one model directory (dense, dense control or baked), and the
    per-layer sparsity and training history of a compressed one (else None)."""
    model_dir = Path(model_dir)
    nemo_file = model_dir / "model.nemo"
    if not nemo_file.is_file():
        raise FileNotFoundError(f"{nemo_file}: missing (run the stage that writes it)")
    report = _json(model_dir / "model.json")
    row = {"system": model_dir.name, "toolkit": "nemo", "params": report["params"],
           "nonzero_params": report["nonzero"], "size_mb": nemo_file.stat().st_size / 1e6,  # what a user ships
           "download_mb": gzip_size(nemo_file) / 1e6,
           "compact_mb": compact_bytes(load_state_dict(str(nemo_file))) / 1e6,
           "notes": "; ".join(filter(None, [f"corpus={corpus}", notes])), "dense_fingerprint": dense, "seed": seed,
           "epochs": epochs}
    details = None
    if "pruning" in report:
        target = float(report["pruning"]["target_sparsity"])
        facts, history = training_facts(model_dir, target)
        # NeMo's bake writes the masks as trained (nothing rescaled): both figures are one
        row.update(method=report["pruning"]["method"], target_sparsity=target, sparsity=report["gated"],
                   sparsity_trained=report["gated"], granularity=report["pruning"].get("granularity", "unstructured"),
                   variant=variant(report["pruning"]),
                   model_sparsity=report["model"], steps=report["steps"], **facts)
        details = (report["layers"], history)
    else:
        row["method"] = method
    row["wer"], tests = {}, {}
    for dset in test_sets:
        row["wer"][dset] = score_of(model_dir, dset)["wer"]
        for compare in sorted((model_dir / f"decode_{dset}").glob("mapsswe_vs_*/compare.json")):
            tests.setdefault(compare.parent.name.removeprefix("mapsswe_vs_"), {})[dset] = _json(compare)
    if tests:
        row["reference"], row["significance"], other = verdicts(tests)
        row["notes"] = "; ".join([row["notes"], *other])
        row["mapsswe"] = all_tests(tests)
    return {k: v for k, v in row.items() if v is not None}, details


def score_of(model_dir, dset):
    return _json(Path(model_dir) / f"decode_{dset}" / "score_wer" / "result.json")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="local/show_results.py", description=__doc__.split("\n")[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--test_sets", required=True, nargs="+")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--results_table", required=True, help="folder of the shared results.{json,md}")
    parser.add_argument("--method", default="dense",
                        help="method column of an unpruned model (dense, dense_finetune)")
    parser.add_argument("--notes", default="", help="more notes (the fine-tuning of a dense control, ...)")
    parser.add_argument("--overwrite", default="false", choices=["true", "false"],
                        help="append again although this model's row was appended before")
    parser.add_argument("--dense_model", required=True,
                        help="the dense model's .nemo: every row names the dense model it descends from")
    parser.add_argument("--data_dir", required=True, help="holds <test set>/text, the references")
    parser.add_argument("--seed", type=int, help="the compression run's seed, where the recipe set one")
    parser.add_argument("--epochs", type=int, help="the compression pass's epochs, where the recipe set them")
    args = parser.parse_args(argv)
    try:
        dense = fingerprint(args.dense_model)
        row, details = result_row(args.model_dir, args.test_sets, args.corpus, args.method, args.notes, dense,
                                  args.seed, args.epochs)
        local = Path(args.model_dir) / "RESULTS.md"
        scores = {d: score_of(args.model_dir, d) for d in args.test_sets}
        write_text_atomic(local, "\n".join([render_markdown([row]), *normalized_markdown(scores),
                                            *by_source_markdown(scores)]))
        if args.overwrite == "false" and recorded(args.results_table, "nemo", dense, [row["system"]]):
            print(f"pinch.nemo: {args.model_dir} is already in {args.results_table}; not appending again")
        else:
            stored = append_result(args.results_table, row)
            write_details(args.results_table, stored,
                          {d: Path(args.model_dir) / f"decode_{d}" / "hyp.txt" for d in args.test_sets},
                          {d: Path(args.data_dir) / d / "text" for d in args.test_sets}, *(details or ()))
    except (ValueError, FileNotFoundError) as err:
        print(f"show_results.py: error: {err}", file=sys.stderr)
        return 1
    print(local.read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
