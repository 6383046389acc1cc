"""Distributed data parallel (gloo on CPU): every rank keeps identical thresholds, masks
and schedule state while each sees different data. espnet2 launches multi-process
training only for GPUs, so the ranks here run espnet2's own Trainer.train_one_epoch
under torch.distributed directly."""
import socket
import time

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
    world = 2
    run_ranks(world, tmp_path)
    states = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    assert states[0]["steps"] == states[1]["steps"] == 6
    assert states[0]["sparsity"] > 0.05, "the run must really prune for the check to mean something"
    for key in states[0]["thresholds"]:
        assert torch.equal(states[0]["thresholds"][key], states[1]["thresholds"][key]), key
    assert states[0]["sparsity"] == states[1]["sparsity"]
    assert states[0]["data_seen"] != states[1]["data_seen"], "ranks must see different batches"
