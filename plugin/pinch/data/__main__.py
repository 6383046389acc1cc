"""CLI: python -m pinch.data prepare --corpus {embedded,librispeech,ljspeech} --out DIR ...

`python -m pinch.data check --dir DIR` validates a data dir written by any tool;
`python -m pinch.data check-text` keeps the sentences a TTS model's token list can speak.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace

from .atomic import check_outputs
from .embedded import SIZES, prepare_embedded
from .librispeech import LIBRISPEECH_SPLITS, prepare_librispeech
from .ljspeech import prepare_ljspeech
from .tts_text import check_tts_text
from .validate import check_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pinch.data")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="write Kaldi data dirs and NeMo manifests")
    p.add_argument("--corpus", required=True, choices=["embedded", "librispeech", "ljspeech"])
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--src", help="corpus directory on disk (librispeech, ljspeech)")
    p.add_argument("--seed", type=int, default=0, help="embedded: generator seed")
    p.add_argument("--size", default="default", choices=sorted(SIZES),
                   help="embedded: size preset (override single splits with --n-*)")
    for field in asdict(SIZES["default"]):
        p.add_argument(f"--n-{field.replace('_', '-')}", type=int, dest=f"n_{field}",
                       help=f"embedded: utterances in {field}")
    p.add_argument("--jobs", type=int, default=2, help="embedded: parallel synthesizer calls")
    p.add_argument("--splits", nargs="+", choices=LIBRISPEECH_SPLITS,
                   help="librispeech: splits that must exist (default: all present)")
    p.add_argument("--lj-dev", type=int, default=250, help="ljspeech: dev utterances")
    p.add_argument("--lj-test", type=int, default=250, help="ljspeech: test utterances")
    c = sub.add_parser("check", help="validate a split: Kaldi files, manifest, audio")
    c.add_argument("--dir", required=True, help="split directory (wav.scp, text, ...)")
    c.add_argument("--sample-rate", type=int, default=None, help="expected rate in Hz")
    t = sub.add_parser("check-text", help="TTS: keep the sentences a character token list can speak")
    t.add_argument("--text", required=True, help="Kaldi text file: uttid sentence")
    t.add_argument("--token-list", required=True, help="the model's tokens, one per line")
    t.add_argument("--out-text", required=True, help="the speakable lines")
    t.add_argument("--bad", required=True, help="the other lines, each with its reason")
    t.add_argument("--space", default="<space>", help="the token of a space")
    args = parser.parse_args(argv)
    try:
        if args.command == "check-text":
            check_outputs({"--out-text": args.out_text, "--bad": args.bad},
                          {"--text": args.text, "--token-list": args.token_list})
            kept, problems = check_tts_text(args.text, args.token_list, args.out_text, args.bad, args.space)
            for problem in problems:
                print(f"pinch.data: warning: skipped {problem}", file=sys.stderr)
            print(f"{args.text}: {kept} sentences to synthesize, {len(problems)} skipped ({args.bad})")
            return 0
        if args.command == "check":
            utts = check_data_dir(args.dir, args.sample_rate)
            print(f"{args.dir}: {len(utts)} utterances, "
                  f"{sum(u.duration for u in utts) / 3600:.3f} h, ok")
            return 0
        if args.corpus == "embedded":
            overrides = {f: getattr(args, f"n_{f}") for f in asdict(SIZES["default"])
                         if getattr(args, f"n_{f}") is not None}
            size = replace(SIZES[args.size], **overrides) if overrides else args.size
            stats = prepare_embedded(args.out, seed=args.seed, size=size, jobs=args.jobs)
        else:
            if not args.src:
                parser.error(f"--corpus {args.corpus} needs --src DIR")
            check_outputs({"--out": args.out}, {"--src": args.src})  # --out is replaced whole
            if args.corpus == "librispeech":
                stats = prepare_librispeech(args.src, args.out, splits=args.splits)
            else:
                stats = prepare_ljspeech(args.src, args.out, n_dev=args.lj_dev,
                                         n_test=args.lj_test)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"pinch.data: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
