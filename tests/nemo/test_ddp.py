"""Lightning DDP on CPU (gloo, 2 processes), started by Lightning or by Slurm's srun: every
rank ends with the same gates."""
import os
import subprocess
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

WORKER = Path(__file__).with_name("ddp_worker.py")


def write_cfg(tmp_path, tiny_model_cfg, sspg_block):
    tiny_model_cfg.pruning = sspg_block(target_sparsity=0.5)
    tiny_model_cfg.optim.lr = 0.05  # thresholds move ~lr per step: sparsity within a few steps
    cfg_path = tmp_path / "model.yaml"
    OmegaConf.save(tiny_model_cfg, cfg_path)
    return cfg_path


def test_ddp_ranks_agree(tmp_path, tiny_model_cfg, sspg_block):
    cfg_path = write_cfg(tmp_path, tiny_model_cfg, sspg_block)
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29533")
    proc = subprocess.run([sys.executable, str(WORKER), str(cfg_path), str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert_ranks_agree(tmp_path, "LightningEnvironment")


def test_ddp_ranks_started_by_slurm_agree(tmp_path, tiny_model_cfg, sspg_block, slurm):
    """Two tasks of one srun step on the test's Slurm: Lightning's SLURMEnvironment."""
    cfg_path = write_cfg(tmp_path, tiny_model_cfg, sspg_block)
    proc = subprocess.run(["srun", "--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", "--export=ALL",
                           sys.executable, str(WORKER), str(cfg_path), str(tmp_path)], cwd=tmp_path,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert_ranks_agree(tmp_path, "SLURMEnvironment")


def assert_ranks_agree(tmp_path, cluster):
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert ranks[0]["cluster"] == ranks[1]["cluster"] == cluster
    # 24 utterances, batch 8, 2 ranks: 2 batches per rank and epoch, 2 epochs.
    assert ranks[0]["total_steps"] == ranks[0]["steps"] == 4
    assert ranks[0]["sparsity"] > 0.1  # the gates did prune: agreement is not trivial
    assert ranks[0]["thresholds"].keys() == ranks[1]["thresholds"].keys() != set()
    for name, t in ranks[0]["thresholds"].items():
        assert torch.equal(t, ranks[1]["thresholds"][name]), name
    for name, m in ranks[0]["masks"].items():
        assert torch.equal(m, ranks[1]["masks"][name]), name
