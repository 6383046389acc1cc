"""The tiny ESPnet ASR recipe as the recipe tests run it: its command line, a run, a second
experiment beside a finished one, and a run killed at a chosen moment."""
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "espnet" / "asr1"
DENSE = "asr_train_asr_conformer_ctc_raw_bpe30"
TARGET = "0.5"
# Decode dirs, named after the checkpoint decoded: the dense model's, and the baked last epoch
# of a stage-11 pass (compression runs and the dense control).
DENSE_TAG = "decode_ctc_asr_model_valid.loss.ave"
LATEST_TAG = "decode_ctc_asr_model_latest"
TINY_MODEL = ("--encoder_conf output_size=32 --encoder_conf linear_units=64 "
              "--encoder_conf num_blocks=1 --encoder_conf attention_heads=2 --batch_size 8")
# Few updates on a tiny corpus: a large learning rate and eta get the gates to the target.
FINETUNE = "--max_epoch 4 --optim adam --optim_conf lr=0.02 --scheduler none --keep_nbest_models 1"
COMPRESS = ""  # the preset's own default (eta: auto)


def recipe_cmd(root, *options):
    """One decoding job per test set unless a test asks for more: beside the other test worker, a
    second job's espnet2 import costs more than the 8 utterances it would take over."""
    return [
        "bash", str(RECIPE / "run.sh"), "--python", sys.executable, "--size", "tiny",
        "--datadir", str(root / "data"), "--dumpdir", str(root / "dump"),
        "--expdir", str(root / "exp"), "--results_table", str(root / "results"),
        "--nbpe", "30", "--test_sets", "test_clean", "--target_sparsity", TARGET,
        "--asr_args", f"--max_epoch 1 {TINY_MODEL}", "--finetune_args", FINETUNE,
        "--compress_args", COMPRESS, "--inference_nj", "1", *options,
    ]


def run_recipe(root, *options, check=True):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(recipe_cmd(root, *options), capture_output=True, text=True, env=env,
                          timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"run.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def root_beside(dense_root, tmp_path, name="root"):
    """A recipe root of its own on the data and dumps of ``dense_root`` (stages 1-11 done)."""
    root = tmp_path / name
    root.mkdir()
    for d in ("data", "dump"):
        (root / d).symlink_to(dense_root / d)
    return root


def experiment_beside(dense_root, tmp_path, decodes_of=None):
    """An experiment dir of its own with the statistics of ``dense_root`` and a copy of its dense
    model: what a run decodes into the dense model's dir stays its own. ``decodes_of``: an
    experiment dir whose decodes of that dense model are copied too (the recipe skips them)."""
    exp = tmp_path / "exp"
    exp.mkdir()
    for d in (dense_root / "exp").iterdir():
        if d.name.startswith("asr_stats"):
            (exp / d.name).symlink_to(d.resolve())
    shutil.copytree(dense_root / "exp" / DENSE, exp / DENSE, symlinks=True,
                    ignore=shutil.ignore_patterns("decode_*", "RESULTS.md"))
    for decode in (decodes_of / DENSE).glob("decode_*") if decodes_of else ():
        shutil.copytree(decode, exp / DENSE / decode.name)
    return exp


def written_whole(checkpoint):
    """torch writes a checkpoint's zip directory last."""
    return checkpoint.exists() and zipfile.is_zipfile(checkpoint)


def kill_recipe_when(root, options, condition, what):
    """Start the recipe and kill it, with every process it started, once ``condition()`` holds."""
    proc = subprocess.Popen(recipe_cmd(root, *options), env=dict(os.environ, OMP_NUM_THREADS="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not condition():
            assert proc.poll() is None, f"{what} ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
