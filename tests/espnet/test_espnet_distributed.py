"""Distributed data parallel (gloo on CPU): every rank keeps identical thresholds, masks
and schedule state while each sees different data. espnet2 launches multi-process
training only for GPUs, so the ranks here run espnet2's own Trainer.train_one_epoch
under torch.distributed directly."""
import socket

import torch
import torch.multiprocessing as mp

from espnet_tiny import distributed_worker


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_agree_on_pruning_state(tmp_path):
    world = 2
    mp.spawn(distributed_worker, args=(world, free_port(), str(tmp_path)), nprocs=world, join=True)
    states = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    assert states[0]["steps"] == states[1]["steps"] == 6
    assert states[0]["sparsity"] > 0.05, "the run must really prune for the check to mean something"
    for key in states[0]["thresholds"]:
        assert torch.equal(states[0]["thresholds"][key], states[1]["thresholds"][key]), key
    assert states[0]["sparsity"] == states[1]["sparsity"]
    assert states[0]["data_seen"] != states[1]["data_seen"], "ranks must see different batches"
