"""Untrusted files are read as data, damaged ones are refused with one message, and a killed
writer's leftovers are cleaned up: what docs/trust.md promises."""
import os
import subprocess
import sys

import pytest
import torch

import pinch
from pinch.data.atomic import OWNER, atomic_output_dir
from pinch.export.checkpoint import load_state_dict
from tests.evil import write_evil_checkpoint


def test_a_malicious_pickle_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = write_evil_checkpoint(tmp_path / "evil.pth", marker)
    with pytest.raises(ValueError, match="evil.pth: cannot read as a weights-only"):
        load_state_dict(str(evil))
    result = subprocess.run([sys.executable, "-m", "pinch.cli.main", "report", str(evil)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "evil.pth" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the file really is what the test claims
    assert marker.exists()


def _small_sparse_file(tmp_path):
    torch.manual_seed(0)
    state = {"a.weight": torch.randn(6, 5) * (torch.rand(6, 5) > 0.6), "a.bias": torch.randn(3),
             "steps": torch.tensor(4)}
    path = tmp_path / "m.safetensors"
    pinch.save_sparse(state, path)
    return path, pinch.load_sparse(path)


def test_every_single_byte_flip_is_refused_or_loads_identical_tensors(tmp_path):
    path, reference = _small_sparse_file(tmp_path)
    data = path.read_bytes()
    flipped = tmp_path / "flipped.safetensors"
    outcomes = {"refused": 0, "identical": 0}
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[i] ^= bit
            flipped.write_bytes(bytes(damaged))
            for loader in (pinch.load_sparse, load_state_dict):  # pinch report reads through the latter
                try:
                    state = loader(str(flipped))
                except ValueError as err:
                    assert "flipped.safetensors" in str(err)
                    outcomes["refused"] += 1
                    continue
                assert state.keys() == reference.keys(), f"byte {i} bit {bit:#x}: other tensors loaded"
                for k, v in reference.items():
                    assert state[k].dtype == v.dtype and torch.equal(state[k], v), f"byte {i}: {k} differs"
                outcomes["identical"] += 1
    # README's figure: every damaged load refused, none even loads identical tensors. Measured on
    # this 628-byte file: 2,512 of 2,512 loads refused (the digest covers the metadata and every
    # tensor's name, dtype, shape and bytes; safetensors refuses a header altered anywhere else).
    assert outcomes == {"refused": 4 * len(data), "identical": 0}


def test_an_old_format_file_is_refused_with_the_version(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "v1.safetensors"
    save_file({"w": torch.zeros(3)}, path, metadata={"format": "pinch-sparse", "version": "1", "layout": "{}",
                                                      "sha256": "0"})
    with pytest.raises(ValueError, match="version '1' is not supported"):
        pinch.load_sparse(path)


def test_compact_files_get_the_mode_of_any_other_output(tmp_path):
    path, _ = _small_sparse_file(tmp_path)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_a_killed_writers_temporary_is_removed_by_the_next_run(tmp_path):
    final = tmp_path / "data"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / ".data.tmp-killed"
    stale.mkdir()
    (stale / "big.wav").write_bytes(b"0" * 1000)
    (stale / OWNER).write_text(f"{os.uname().nodename} {dead.stdout.strip()}\n")
    live = tmp_path / ".data.tmp-running"  # a concurrent writer (this process) keeps its own
    live.mkdir()
    (live / OWNER).write_text(f"{os.uname().nodename} {os.getpid()}\n")
    with atomic_output_dir(final) as tmp:
        (tmp / "x").write_text("done")
    assert not stale.exists() and live.exists()
    assert sorted(p.name for p in final.iterdir()) == ["x"], "the owner mark does not reach the output"
