"""A junk config stops pinch.nemo.bin.train before any work, with one line naming the key."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from pinch.nemo.bin.train import build_trainer

CONF = Path(__file__).resolve().parents[2] / "conf" / "nemo" / "asr"
TRAINER = {"accelerator": "cpu", "devices": 1, "max_epochs": 1, "logger": False, "enable_checkpointing": False}


@pytest.mark.parametrize("key, message", [
    ("trainer.max_epoch", "trainer.max_epoch: not a Lightning Trainer argument"),
    ("exp_manager.resume_if_exist", "exp_manager.resume_if_exist: Key 'resume_if_exist' not in 'ExpManagerConfig'"),
    ("exp_manager.checkpoint_callback_params.save_lst",
     "exp_manager.checkpoint_callback_params.save_lst: Key 'save_lst' not in 'CallbackParams'"),
])
def test_a_misspelt_trainer_or_exp_manager_key_is_named(tmp_path, key, message):
    cfg = OmegaConf.create({"trainer": TRAINER, "exp_manager": {"exp_dir": str(tmp_path), "name": "run"}})
    OmegaConf.update(cfg, key, True)
    with pytest.raises(ValueError) as err:
        build_trainer(cfg)
    assert str(err.value) == message
    assert not any(tmp_path.iterdir())  # stopped before exp_manager made its log dir


def test_a_misspelt_output_nemo_is_one_line_before_training(tmp_path):
    """The model's path misspelt: OmegaConf's traceback once training was over, before."""
    proc = subprocess.run(
        [sys.executable, "-m", "pinch.nemo.bin.train", "--config-path", str(CONF), "--config-name", "conformer_ctc_bpe",
         f"+output_neme={tmp_path / 'model.nemo'}", f"exp_manager.exp_dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 1
    last_line = proc.stderr.splitlines()[-1]
    assert last_line == "pinch.nemo.bin.train: error: output_nemo: Missing mandatory value: output_nemo"
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not any(tmp_path.iterdir())
