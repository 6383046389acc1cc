"""A compact sparse file whose digest is consistent (recomputed: it is no signature) but whose
layout claims more weights than the file stores is refused before anything is allocated."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from pinch.export.checkpoint import load_state_dict
from pinch.export.sparse_format import DIGEST_KEY, FORMAT, VERSION, digest, load_sparse


def _forge(path, tensors, layout):
    """A sparse file with whatever layout, its digest recomputed as anyone can."""
    meta = {"format": FORMAT, "version": VERSION, "layout": json.dumps(layout)}
    meta[DIGEST_KEY] = digest(meta, tensors)
    save_file(tensors, str(path), metadata=meta)
    return path


def _bitmask(name, shape, mask_bytes, values):
    tensors = {name + ".mask": torch.tensor(mask_bytes, dtype=torch.uint8), name + ".values": values}
    return tensors, {name: {"kind": "bitmask", "shape": shape}}


FORGED = {
    # 3.6e9 weights from a one-byte mask: ~18 GB allocated by the unchecked loader.
    "huge": (*_bitmask("w", [60000, 60000], [255], torch.ones(8)), "w: .*mask"),
    # 4e6 weights from 32 values: unpackbits pads a 4-byte mask with zeros, so it loaded.
    "padded": (*_bitmask("w", [4_000_000], [255] * 4, torch.ones(32)), "w: .*mask"),
    # np.prod wraps around to 0 on these.
    "overflow": (*_bitmask("w", [2**32, 2**32], [], torch.ones(0)), "w: .*mask"),
    "popcount": (*_bitmask("w", [16], [255, 1], torch.ones(3)), "w: .*9 .*3 values"),
    "negative": (*_bitmask("w", [-8], [0], torch.ones(0)), "w: .*shape"),
    "fraction": (*_bitmask("w", [2.5], [0], torch.ones(0)), "w: .*shape"),
    "bool": (*_bitmask("w", [True], [128], torch.ones(1)), "w: .*shape"),
    "2-d values": (*_bitmask("w", [8], [255], torch.ones(2, 4)), "w: .*values"),
    "missing dense": ({"a": torch.ones(2)}, {"a": {"kind": "dense"}, "b": {"kind": "dense"}}, "b: .*no stored tensor"),
    "unclaimed": ({"a": torch.ones(2), "hidden": torch.ones(1000)}, {"a": {"kind": "dense"}},
                  "hidden: .*not in the layout"),
    "claimed twice": ({"w.mask": torch.tensor([1], dtype=torch.uint8), "w.values": torch.ones(1)},
                      {"w": {"kind": "bitmask", "shape": [1]}, "w.mask": {"kind": "dense"}}, "w.mask: .*twice"),
    "kind": ({"a": torch.ones(2)}, {"a": {"kind": "rle"}}, "a: .*kind"),
    "layout": ({"a": torch.ones(2)}, ["a"], "layout is not a JSON object"),
}


@pytest.mark.parametrize("case", FORGED)
def test_a_layout_that_does_not_fit_the_stored_bytes_is_refused(tmp_path, case):
    tensors, layout, problem = FORGED[case]
    path = _forge(tmp_path / "forged.safetensors", tensors, layout)
    for loader in (load_sparse, load_state_dict):
        with pytest.raises(ValueError, match=f"forged.safetensors: .*{problem}"):
            loader(str(path))


def test_pinch_report_refuses_the_huge_layout_in_one_line(tmp_path):
    tensors, layout, _ = FORGED["huge"]
    path = _forge(tmp_path / "huge.safetensors", tensors, layout)
    assert path.stat().st_size < 1000
    result = subprocess.run([sys.executable, "-m", "pinch.cli.main", "report", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1 and "huge.safetensors" in result.stderr
    assert "w:" in result.stderr and "Traceback" not in result.stderr


def test_an_exact_layout_still_loads(tmp_path):
    dense = torch.zeros(20)
    dense[[0, 3, 19]] = torch.tensor([1.0, -2.0, 3.0])
    mask = np.packbits((dense != 0).numpy())
    tensors, layout = _bitmask("w", [4, 5], mask.tolist(), dense[dense != 0])
    path = _forge(tmp_path / "exact.safetensors", {**tensors, "n": torch.tensor(3)}, {**layout, "n": {"kind": "dense"}})
    state = load_sparse(str(path))
    assert torch.equal(state["w"], dense.reshape(4, 5)) and torch.equal(state["n"], torch.tensor(3))
