"""Entry point of the ``pinch`` command: report, compare, sweep-report, bench."""
import argparse
import sys


def build_parser():
    parser = argparse.ArgumentParser(prog="pinch", description="One-pass compression of speech models")
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="per-layer sparsity table and whole-model figures of a checkpoint")
    report.add_argument("path", help=".pth/.pt/.ckpt, .safetensors (plain or pinch sparse) or .nemo")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    compare = sub.add_parser("compare", help="ESPnet and NeMo results of one corpus side by side")
    compare.add_argument("--table", default="exp/results", help="folder of the shared results.json")
    compare.add_argument("--corpus", help="only rows of this corpus (e.g. embedded)")
    compare.add_argument("--out", help="also write the table to this Markdown file")
    compare.add_argument("--plot", help="also plot WER (TTS: ASR-CER) against measured sparsity to this PNG")
    compare.add_argument("--task", choices=["asr", "tts"], default="asr", help="which rows: asr or tts")
    sweep = sub.add_parser("sweep-report", help="REPORT.md of an evidence sweep, with its figures")
    sweep.add_argument("--table", required=True, help="folder of the sweep's results.json (and runs/)")
    sweep.add_argument("--corpus", default="embedded", help="the rows of this corpus")
    sweep.add_argument("--out", help="REPORT.md to write (default: TABLE/REPORT.md)")
    bench = sub.add_parser("bench", help="benchmarks: gate overhead in training, inference speed and size, "
                                         "every deployable form at batch 1 and 8")
    bench.add_argument("which", choices=["overhead", "inference", "deploy", "all"])
    bench.add_argument("--out", default="bench/results", help="folder for the JSON results")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "report":
            from pinch.cli.report import run
        elif args.command == "compare":
            from pinch.scoring.side_by_side import main as side_by_side

            argv = ["--table", args.table] + [f"--{k}={v}" for k in ("corpus", "out", "plot", "task") if (v := getattr(args, k))]
            return side_by_side(argv)
        elif args.command == "sweep-report":
            from pinch.sweep.report import main as sweep_report

            return sweep_report(["--table", args.table, "--corpus", args.corpus] + (["--out", args.out] if args.out else []))
        else:
            from pinch.cli.bench import run
        run(args)
    except (ValueError, OSError) as err:
        print(f"pinch {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
