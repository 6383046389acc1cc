"""Entry point of the ``pinch`` command: report, bench."""
import argparse
import sys


def build_parser():
    parser = argparse.ArgumentParser(prog="pinch", description="One-pass compression of speech models")
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="per-layer sparsity table and whole-model figures of a checkpoint")
    report.add_argument("path", help=".pth/.pt/.ckpt, .safetensors (plain or pinch sparse) or .nemo")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench = sub.add_parser("bench", help="benchmarks: gate overhead in training, inference speed and size")
    bench.add_argument("which", choices=["overhead", "inference", "all"])
    bench.add_argument("--out", default="bench/results", help="folder for the JSON results")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "report":
            from pinch.cli.report import run
        else:
            from pinch.cli.bench import run
        run(args)
    except ValueError as err:
        print(f"pinch {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
