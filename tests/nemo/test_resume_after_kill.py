"""A killed NeMo compression resumes from its last whole checkpoint.

The recipe's nemo_train runs ``python -m pinch.nemo.bin.train`` on a tiny Conformer; its process
group is SIGKILLed three times, each time after a later epoch's checkpoint appeared, and rerun
each time; the fourth attempt ends the pass. An unbroken run beside it is the reference. The
tiny model has no dropout, dither or augmentation and reads its data in order, so the resumed
pass is the unbroken one to the bit: same sparsity, steps, thresholds and weights.
"""
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf" / "nemo" / "asr"
PRUNING = REPO / "conf" / "pruning"
RECIPE_LIB = REPO / "recipes" / "utils" / "recipe_lib.sh"
NAME = "conformer_ctc_bpe_sspg"
EPOCHS = 8             # 24 utterances in batches of 8: 3 updates an epoch, a checkpoint at each end
KILL_AFTER = (1, 3, 5)  # the epochs whose checkpoint a kill waits for
EPOCH_LINE = re.compile(r"^Epoch (\d+), global step (\d+):", re.M)


@pytest.fixture
def dense(tmp_path, tiny_model_cfg):
    from nemo.collections.asr.models import EncDecCTCModelBPE

    torch.manual_seed(0)
    path = tmp_path / "dense.nemo"
    EncDecCTCModelBPE(cfg=tiny_model_cfg).save_to(str(path))
    return path


def nemo_train(run_dir, dense, corpus):
    """One attempt of the recipe's compression step into run_dir, in a process group of its own."""
    script = (f'source "{RECIPE_LIB}"; python="{sys.executable}"; config_dir="{CONF}"; overwrite=false; '
              'nemo_train "$@"')
    overrides = [
        f"init_from_nemo_model={dense}", f"pruning_config={PRUNING / 'sspg.yaml'}",
        f"output_nemo={run_dir / 'gated.nemo'}", f"trainer.max_epochs={EPOCHS}",
        f"model.train_ds.manifest_filepath={corpus / 'train' / 'manifest.json'}",
        f"model.validation_ds.manifest_filepath={corpus / 'dev' / 'manifest.json'}",
        "model.train_ds.batch_size=8", "model.validation_ds.batch_size=8", "model.train_ds.shuffle=false",
        "model.optim.lr=0.02",  # thresholds move by about lr a step: well pruned in 24 steps
        "trainer.log_every_n_steps=1", "exp_manager.create_tensorboard_logger=false",
    ]
    return subprocess.Popen(["bash", "-c", script, "nemo_train", str(run_dir), "compression", NAME, *overrides],
                            cwd=run_dir.parent, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS="1"))


def checkpoints(run_dir):
    return run_dir / NAME / "checkpoints"


def last_epoch(run_dir):
    """The epoch of the newest whole last checkpoint (what a resume starts after), or -1."""
    found = [int(re.search(r"epoch=(\d+)-last\.ckpt$", p.name).group(1))
             for p in checkpoints(run_dir).glob("*-last.ckpt") if zipfile.is_zipfile(p)]
    return max(found, default=-1)


def marker(path):
    """The file NeMoModelCheckpoint keeps beside a checkpoint while it saves or deletes it."""
    from nemo.utils.callbacks.nemo_model_checkpoint import NeMoModelCheckpoint

    return NeMoModelCheckpoint.format_checkpoint_unfinished_marker_path(path)


def kill_after(proc, run_dir, epoch):
    deadline = time.monotonic() + 600
    while last_epoch(run_dir) < epoch:
        assert proc.poll() is None and time.monotonic() < deadline, \
            f"no checkpoint of epoch {epoch} in {checkpoints(run_dir)}: {log_tail(run_dir)}"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def cut_short(run_dir):
    """What kills in the middle of saves leave: the last checkpoint written whole but still marked
    unfinished (NeMo alone refuses to resume from it) and a newer one cut short (a temporary file
    copied across file systems), marked."""
    last = next(p for p in checkpoints(run_dir).glob("*-last.ckpt") if zipfile.is_zipfile(p))
    marker(last).touch()
    cut = last.with_name(re.sub(r"epoch=\d+", "epoch=99", last.name))
    cut.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    marker(cut).touch()
    return cut


def log_tail(run_dir):
    return (run_dir / "train.log").read_text()[-3000:]


def finish(proc, run_dir):
    assert proc.wait(timeout=900) == 0, log_tail(run_dir)


def test_three_kills_resume_to_the_unbroken_model(tmp_path, dense, tiny_corpus):
    from pinch.nemo.archive import restore_gated
    from pinch.scoring.training_record import training_facts

    unbroken, killed = tmp_path / "unbroken", tmp_path / "killed"
    reference = nemo_train(unbroken, dense, tiny_corpus)  # beside the killed attempts: one core each
    resumed_from, logs, planted = [], [], None
    for n, epoch in enumerate(KILL_AFTER):
        if n:
            resumed_from.append(last_epoch(killed))
        if n == 2:
            planted = cut_short(killed)
        start = (killed / "train.log").stat().st_size if n else 0
        kill_after(nemo_train(killed, dense, tiny_corpus), killed, epoch)
        logs.append((killed / "train.log").read_text()[start:])
    resumed_from.append(last_epoch(killed))
    start = (killed / "train.log").stat().st_size
    finish(nemo_train(killed, dense, tiny_corpus), killed)
    logs.append((killed / "train.log").read_text()[start:])
    finish(reference, unbroken)

    # Each rerun went on after the checkpoint it found (none replayed the pass from the dense model).
    for log, epoch in zip(logs[1:], resumed_from):
        first = EPOCH_LINE.search(log)
        assert first and (int(first[1]), int(first[2])) == (epoch + 1, 3 * (epoch + 2)), log[-3000:]
    assert 0 < resumed_from[0] < resumed_from[1] < resumed_from[2] < EPOCHS - 1

    # ... to the unbroken run's model: same steps, sparsity, thresholds and weights.
    want, got = restore_gated(unbroken / "gated.nemo"), restore_gated(killed / "gated.nemo")
    assert int(got.pinch_steps) == int(want.pinch_steps) == 3 * EPOCHS
    assert got.pruner.sparsity().gated == want.pruner.sparsity().gated > 0.3
    mine, theirs = got.state_dict(), want.state_dict()
    assert mine.keys() == theirs.keys() and any(k.endswith("_threshold") for k in mine)
    for key, value in theirs.items():
        assert torch.equal(mine[key], value), key
    for run in (unbroken, killed):
        last, = checkpoints(run).glob("*-last.ckpt")
        assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 3 * EPOCHS

    # No pile: one log dir (no version dir per attempt), one last checkpoint, the cut one gone.
    assert not planted.exists() and not list(checkpoints(killed).glob("*-unfinished"))
    assert {p.name for p in (killed / NAME).iterdir() if p.is_dir()} <= {"checkpoints", "run_0", "run_1", "run_2"}
    assert len(list(checkpoints(killed).glob("*.ckpt"))) <= 2  # the last one and the best one
    assert not any((killed / "tmp").iterdir())

    # The row's wall time is that of the four attempts, and says so.
    lines = (killed / "wall_time_s").read_text().split()
    facts, _ = training_facts(killed)
    assert facts["attempts"] == len(lines) == 4 and facts["wall_time_s"] == sum(map(float, lines))


def test_only_the_newest_whole_last_checkpoint_is_left_to_resume_from(tmp_path):
    """What NeMo's own check refuses, settled: two last checkpoints (a kill between writing the
    new one and deleting the old one), or a single one marked unfinished. The newest whole one
    is kept, unmarked; older ones and those cut short are deleted."""
    from types import SimpleNamespace

    from nemo.utils.exp_manager import check_resume

    from pinch.nemo.bin.train import settle_last_checkpoint

    def resume_from():
        trainer = SimpleNamespace(ckpt_path=None)
        check_resume(trainer, str(tmp_path), resume_if_exists=True, resume_ignore_no_checkpoint=True)
        return trainer.ckpt_path

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    older, whole, cut = (folder / f"run--val_wer=0.5-epoch={epoch}-last.ckpt" for epoch in (1, 2, 3))
    for age, path in enumerate((older, whole)):
        torch.save({"epoch": age}, path)
        os.utime(path, (1000 + age, 1000 + age))
    cut.write_bytes(whole.read_bytes()[:100])
    marker(cut).touch()
    with pytest.raises(ValueError, match="Multiple checkpoints"):
        resume_from()
    settle_last_checkpoint(folder)
    assert list(folder.iterdir()) == [whole]
    assert resume_from() == str(whole)

    # The first save killed after it was written, before its marker was taken off: resumed from.
    marker(whole).touch()
    with pytest.raises(ValueError, match="Last checkpoint is unfinished"):
        resume_from()
    settle_last_checkpoint(folder)
    assert list(folder.iterdir()) == [whole] and resume_from() == str(whole)

    # ... cut short: nothing to resume from, the run starts from the beginning.
    whole.write_bytes(b"half")
    marker(whole).touch()
    settle_last_checkpoint(folder)
    assert not any(folder.iterdir()) and resume_from() is None
