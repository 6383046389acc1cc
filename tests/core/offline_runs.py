"""Every ``python -m pinch...`` entry point, run in this one process on tiny inputs under WORKDIR.

``python offline_runs.py WORKDIR`` imports pinch.nemo and pinch.espnet, runs each entry point as
``python -m`` would (runpy), keeps the process alive until HOLD_S after the NeMo import (onnxruntime's
telemetry first reaches out about 9 s after its import) and writes each run's exit code to
WORKDIR/exit_codes.json. One process, because the toolkits' imports take most of the time; the
caller watches it (test_no_network.py).
"""
import json
import runpy
import sys
import time
from pathlib import Path

HOLD_S = 12.0


def runs(w):
    """(module, args) of each entry point, in order: later ones read what earlier ones wrote."""
    data, table = w / "data", w / "table"
    train, dev = data / "train", data / "dev"
    dense = {"system": "exp/dense", "toolkit": "nemo", "method": "dense", "wer": {"test_clean": 10.0},
             "notes": "corpus=embedded", "dense_fingerprint": "f", "params": 100, "nonzero_params": 100}
    pruned = {**dense, "system": "exp/sspg0.5", "method": "sspg", "target_sparsity": 0.5, "sparsity": 0.5,
              "nonzero_params": 50, "significance": {"test_clean": {"p_value": 0.5, "lossless": True}}}
    tiny = [
        ("pinch.data", ["prepare", "--corpus", "embedded", "--size", "tiny", "--out", data, "--jobs", "1"]),
        ("pinch.data", ["check", "--dir", train]),
        ("pinch.data.manifest", ["check", train / "manifest.json"]),
        ("pinch.data.manifest", ["text", dev / "manifest.json", w / "dev_text"]),
        ("pinch.offline", ["espnet2.bin.tokenize_text", "--token_type", "char", "--input", train / "text",
                           "--output", w / "chars.txt", "--field", "2-", "--write_vocabulary", "true"]),
        ("pinch.data", ["check-text", "--text", train / "text", "--token-list", w / "chars.txt",
                        "--space", "<space>", "--out-text", w / "speakable", "--bad", w / "bad"]),
        ("pinch.nemo.bin.tokenizer", ["--manifest", train / "manifest.json", "--out", w / "spe", "--vocab_size", "32"]),
        ("pinch.scoring", ["score", "--ref", dev / "text", "--hyp", dev / "text", "--out", w / "score"]),
        ("pinch.scoring", ["compare", "--ref", dev / "text", "--hyp-a", dev / "text", "--hyp-b", dev / "text",
                           "--out", w / "compare"]),
        ("pinch.scoring", ["tts", "--ref-scp", dev / "wav.scp", "--syn-scp", dev / "wav.scp", "--out", w / "tts"]),
        ("pinch.scoring", ["judge", "--wav-scp", data / "tts" / "dev" / "wav.scp", "--text", data / "tts" / "dev" / "text",
                           "--lm-text", train / "text", "--out", w / "judges"]),
        ("pinch.scoring", ["append-result", "--table", table, "--row", json.dumps(dense)]),
        ("pinch.scoring", ["append-result", "--table", table, "--row", json.dumps(pruned)]),
        ("pinch.scoring", ["recorded", "--table", table, "--toolkit", "nemo", "--dense", w / "ckpt.pth", "dense"]),
        ("pinch.scoring.side_by_side", ["--table", table]),
        ("pinch.sweep", ["--table", table]),
        ("pinch.sweep.doc_tables", ["--root", w, w / "README.md"]),
        ("pinch.cli.main", ["compare", "--table", table]),
        ("pinch.cli.main", ["report", w / "ckpt.pth"]),
        ("pinch.espnet.trainer", [w / "ckpt.pth"]),
        ("pinch.jobs", ["local", w / "log" / "job.log", "echo", "hello"]),
        ("pinch.deploy.download", ["--out", w / "ckpt.pth.gz", w / "ckpt.pth"]),
        ("pinch.config_changes", ["--old", w / "held.yaml", "--new", w / "run.yaml", "--out", w / "overrides.yaml"]),
    ]
    # Training, baking, export and decoding need a trained model (minutes), the deploy report the
    # decodes of exported ones: their module-level imports and parsers only.
    heavy = [f"pinch.espnet.bin.{m}" for m in ("asr_train", "asr_transducer_train", "tts_train", "bake",
                                                "export_onnx", "onnx_decode", "asr_inference", "pretrained",
                                                "pack", "tts_results", "teacher_durations", "ctc_durations")]
    heavy += [f"pinch.nemo.bin.{m}" for m in ("train", "bake", "export_onnx", "onnx_transcribe", "transcribe",
                                              "pretrained", "synthesize", "tts_sup_data", "tts_results")]
    heavy += ["pinch.deploy.report"]
    return [(m, [str(a) for a in args]) for m, args in tiny] + [(m, ["--help"]) for m in heavy]


def run_module(module, args):
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def main(workdir):
    w = Path(workdir)
    import pinch.nemo  # noqa: F401  (imports onnxruntime)

    imported = time.monotonic()
    import pinch.espnet  # noqa: F401
    import torch

    torch.save({"encoder.weight": torch.zeros(4, 4)}, w / "ckpt.pth")
    (w / "README.md").write_text("<!-- pinch-table: lossless table -->\n<!-- /pinch-table -->\n")
    (w / "held.yaml").write_text("optim: adam\noptim_conf: {lr: 0.002}\n")
    (w / "run.yaml").write_text("optim: adam\noptim_conf: {lr: 0.001}\n")
    codes = {}
    for module, args in runs(w):
        codes[" ".join([module, *args])] = run_module(module, args)
    time.sleep(max(0.0, HOLD_S - (time.monotonic() - imported)))
    (w / "exit_codes.json").write_text(json.dumps(codes, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
