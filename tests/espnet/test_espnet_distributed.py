"""Distributed data parallel (gloo on CPU): every rank keeps identical thresholds, masks
and schedule state while each sees different data. espnet2 launches multi-process
training only for GPUs, so the ranks here run espnet2's own Trainer.train_one_epoch
under torch.distributed directly, or under srun with espnet2's own Slurm launcher option."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from espnet_tiny import distributed_worker


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(world, out_dir, timeout=300):
    """Spawn the ranks and wait for them. torch's destroy_process_group can hang in
    teardown after both ranks have finished and saved their state (pytorch#75097): then
    the ranks are killed and the saved states are checked; a rank that never saved fails."""
    ctx = mp.spawn(distributed_worker, args=(world, free_port(), str(out_dir)), nprocs=world, join=False)
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=1):  # raises if a rank fails
        if time.monotonic() > deadline:
            for proc in ctx.processes:
                proc.kill()
            missing = [r for r in range(world) if not (out_dir / f"rank{r}.pt").exists()]
            if missing:
                pytest.fail(f"DDP ranks {missing} did not finish within {timeout} s")
            return


def test_ranks_agree_on_pruning_state(tmp_path):
    run_ranks(2, tmp_path)
    assert_ranks_agree(tmp_path)


def test_ranks_started_by_slurm_agree_on_pruning_state(tmp_path, slurm):
    """Two tasks of one srun step on the test's Slurm: DistributedOption(dist_launcher="slurm")
    takes each rank, the world size and the master node from Slurm's variables."""
    cmd = ["srun", "--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", "--export=ALL", "--job-name=ddp",
           sys.executable, str(Path(__file__).with_name("espnet_tiny.py")), str(tmp_path)]
    env = dict(os.environ, MASTER_PORT=str(free_port()), OMP_NUM_THREADS="1")
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
    except subprocess.TimeoutExpired:  # the teardown hang of run_ranks' docstring: the states tell
        subprocess.run(["scancel", "--name=ddp"])
    assert_ranks_agree(tmp_path)


def assert_ranks_agree(out_dir, world=2):
    missing = [r for r in range(world) if not (out_dir / f"rank{r}.pt").exists()]
    assert not missing, f"DDP ranks {missing} saved no state"
    states = [torch.load(out_dir / f"rank{r}.pt") for r in range(world)]
    assert states[0]["steps"] == states[1]["steps"] == 6
    assert states[0]["sparsity"] > 0.05, "the run must really prune for the check to mean something"
    for key in states[0]["thresholds"]:
        assert torch.equal(states[0]["thresholds"][key], states[1]["thresholds"][key]), key
    assert states[0]["sparsity"] == states[1]["sparsity"]
    assert states[0]["data_seen"] != states[1]["data_seen"], "ranks must see different batches"
