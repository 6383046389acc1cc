"""CLI: python -m pinch.scoring {score,compare,append-result,tts,tts-results} ..."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .mapsswe import ALPHA, compare, format_compare
from .results import append_result
from .sclite import format_result, score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pinch.scoring")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="WER and CER with sclite (jiwer cross-check)")
    p.add_argument("--ref", required=True, help="Kaldi text file: uttid words")
    p.add_argument("--hyp", required=True, help="Kaldi text file: uttid words")
    p.add_argument("--out", required=True, help="directory for trn files, reports, result.json")
    p = sub.add_parser("compare", help="MAPSSWE significance test between two systems")
    p.add_argument("--ref", required=True)
    p.add_argument("--hyp-a", required=True, help="reference system (e.g. the dense model)")
    p.add_argument("--hyp-b", required=True, help="system under test (e.g. the pruned model)")
    p.add_argument("--out", required=True)
    p.add_argument("--name-a", default="A")
    p.add_argument("--name-b", default="B")
    p.add_argument("--alpha", type=float, default=ALPHA)
    p = sub.add_parser("append-result", help="append a row to results.md/results.json")
    p.add_argument("--table", required=True, help="directory holding the results table")
    p.add_argument("--row", required=True, help="the row as a JSON object")
    p = sub.add_parser("tts", help="MCD (dB, DTW) and log-F0 RMSE of synthesized speech")
    p.add_argument("--ref-scp", required=True, help="wav.scp of the reference recordings")
    p.add_argument("--syn-scp", required=True, help="wav.scp of the synthesized audio")
    p.add_argument("--out", required=True, help="directory for tts_metrics.json")
    p = sub.add_parser("tts-results", help="a TTS recipe's RESULTS.md, table rows, samples and mel plots")
    p.add_argument("--models", nargs="+", required=True,
                   help="DIR:WEIGHTS per model, the dense one first; DIR/<synth-tag>/<test-set> holds its scores")
    p.add_argument("--encoder-prefix", required=True, help="parameter names of the text encoder (tts.enc.)")
    p.add_argument("--toolkit", required=True, choices=["espnet", "nemo"])
    p.add_argument("--synth-tag", required=True)
    p.add_argument("--test-set", required=True)
    p.add_argument("--asr-tag", required=True, help="folder of the ASR-CER scores under each test set")
    p.add_argument("--reference-cer", required=True, help="result.json of the ASR model on the recordings")
    p.add_argument("--ref-scp", required=True, help="wav.scp of the recordings")
    p.add_argument("--n-samples", type=int, default=3)
    p.add_argument("--samples-dir", required=True)
    p.add_argument("--results-md", required=True)
    p.add_argument("--results-table", help="shared results table to append to (once per model dir)")
    p.add_argument("--overwrite", choices=["true", "false"], default="false")
    p.add_argument("--notes", default="")
    args = parser.parse_args(argv)
    try:
        if args.command == "score":
            print(format_result(score(args.ref, args.hyp, args.out)))
        elif args.command == "compare":
            print(format_compare(compare(args.ref, args.hyp_a, args.hyp_b, args.out,
                                         alpha=args.alpha, name_a=args.name_a,
                                         name_b=args.name_b)))
        elif args.command == "tts":
            from .tts_metrics import score_tts  # heavy imports, TTS only

            r = score_tts(args.ref_scp, args.syn_scp, args.out)
            f0 = "n/a" if r["log_f0_rmse"] is None else f"{r['log_f0_rmse']:.4f}"
            print(f"MCD {r['mcd']:.3f} dB  log-F0 RMSE {f0}  ({r['utterances']} utts)")
        elif args.command == "tts-results":
            from .tts_results import TTSModel, tts_results

            models = []
            for spec in args.models:
                directory, sep, weights = spec.partition(":")
                if not sep:
                    raise ValueError(f"--models: {spec!r} is not DIR:WEIGHTS")
                d = Path(directory)
                name = d.parent.name if d.name == "baked" else d.name
                models.append(TTSModel(name, d, Path(weights), d / args.synth_tag / args.test_set))
            rows = tts_results(models, args.encoder_prefix, args.asr_tag, Path(args.reference_cer),
                               Path(args.ref_scp), args.test_set, Path(args.results_md), Path(args.samples_dir),
                               args.n_samples, args.toolkit, args.results_table, args.overwrite == "true",
                               args.notes)
            print(Path(args.results_md).read_text(), end="")
            print(f"samples and mel spectrograms of {min(args.n_samples, rows[0]['utterances'])} sentences "
                  f"in {args.samples_dir}")
        else:
            try:
                row = json.loads(args.row)
            except json.JSONDecodeError as e:
                raise ValueError(f"--row is not valid JSON: {e}") from None
            print(json.dumps(append_result(args.table, row)))
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"pinch.scoring: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
