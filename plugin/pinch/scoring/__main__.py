"""CLI: python -m pinch.scoring {score,compare,append-result,recorded,tts,judge} ..."""
from __future__ import annotations

import argparse
import json
import sys

from .mapsswe import ALPHA, compare, format_compare
from .results import append_result, recorded
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
    p = sub.add_parser("recorded", help="print the SYSTEMs the table holds from the dense model DENSE")
    p.add_argument("--table", required=True, help="directory holding the results table")
    p.add_argument("--toolkit", required=True)
    p.add_argument("--dense", required=True, help="the dense model's weights file (none recorded if missing)")
    p.add_argument("systems", nargs="*")
    p = sub.add_parser("tts", help="MCD (dB, DTW) and log-F0 RMSE of synthesized speech")
    p.add_argument("--ref-scp", required=True, help="wav.scp of the reference recordings")
    p.add_argument("--syn-scp", required=True, help="wav.scp of the synthesized audio")
    p.add_argument("--out", required=True, help="directory for tts_metrics.json")
    p = sub.add_parser("judge", help="pocketsphinx CER (the corpus's words) and DNSMOS SIG/BAK/OVRL: "
                       "judges not trained on the corpus")
    p.add_argument("--wav-scp", required=True, help="wav.scp of the speech to judge (16 kHz or more)")
    p.add_argument("--text", required=True, help="Kaldi text: the sentence of each utterance")
    p.add_argument("--lm-text", nargs="+", required=True, help="the corpus's training text(s): the language model")
    p.add_argument("--vocab-text", nargs="+", help="the test sentences whose words join the dictionary "
                   "(default --text; give the whole test set where systems speak parts of it)")
    p.add_argument("--compare", action="append", default=[], metavar="NAME:HYP",
                   help="MAPSSWE of the pocketsphinx hypotheses against another system's OUT/pocketsphinx/hyp")
    p.add_argument("--out", required=True, help="directory for judges.json and pocketsphinx/")
    args = parser.parse_args(argv)
    try:
        if args.command == "score":
            print(format_result(score(args.ref, args.hyp, args.out)))
        elif args.command == "compare":
            print(format_compare(compare(args.ref, args.hyp_a, args.hyp_b, args.out,
                                         alpha=args.alpha, name_a=args.name_a,
                                         name_b=args.name_b)))
        elif args.command == "recorded":
            from pathlib import Path

            from pinch.export.checkpoint import fingerprint  # loads torch: only here

            if Path(args.dense).is_file():
                print("\n".join(recorded(args.table, args.toolkit, fingerprint(args.dense), args.systems)))
        elif args.command == "tts":
            from .tts_metrics import score_tts  # heavy imports, TTS only

            r = score_tts(args.ref_scp, args.syn_scp, args.out)
            f0 = "n/a" if r["log_f0_rmse"] is None else f"{r['log_f0_rmse']:.4f}"
            print(f"MCD {r['mcd']:.3f} dB  log-F0 RMSE {f0}  ({r['utterances']} utts)")
        elif args.command == "judge":
            from .judges import format_judges, judge  # pocketsphinx, DNSMOS: judges only

            references = {}
            for spec in args.compare:
                name, sep, hyp = spec.partition(":")
                if not sep or not name or not hyp:
                    raise ValueError(f"--compare {spec!r} is not NAME:HYP")
                references[name] = hyp
            print(format_judges(judge(args.wav_scp, args.text, args.lm_text, args.out, args.vocab_text, references)))
        else:
            try:
                row = json.loads(args.row)
            except json.JSONDecodeError as e:
                raise ValueError(f"--row is not valid JSON: {e}") from None
            print(json.dumps(append_result(args.table, row)))
    except (ValueError, OSError, RuntimeError) as e:
        print(f"pinch.scoring: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
