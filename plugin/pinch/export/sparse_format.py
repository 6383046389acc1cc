"""A compact on-disk form for unstructured-sparse weights: bitmask + non-zero values.

Stored as safetensors (data, not code: nothing is unpickled on load). A tensor with
zeros is kept as a packed bitmask (1 bit per weight) plus its non-zero values, which at
65% sparsity is 1/32 + 0.35 = 0.38 of its dense size. A SHA-256 in the header covers
everything that decides the loaded tensors (the metadata, every tensor's name, dtype, shape
and bytes), so a truncated or altered file is refused rather than loaded wrong; every way a
file can be malformed ends in the same refusal, a ValueError naming the file.
"""
import hashlib
import json
import os
import tempfile

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT = "pinch-sparse"
VERSION = "2"  # 1 hashed the tensor bytes only, not the layout, names, dtypes and shapes
DIGEST_KEY = "sha256"


def digest(meta, tensors):
    """SHA-256 of the metadata (but the digest) and each tensor's name, dtype, shape, bytes,
    each part length-prefixed so that no two different files hash the same parts."""
    h = hashlib.sha256()

    def part(data):
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)

    for key in sorted(k for k in meta if k != DIGEST_KEY):
        part(key.encode())
        part(meta[key].encode())
    for name in sorted(tensors):
        value = tensors[name].contiguous()
        part(name.encode())
        part(f"{value.dtype}{list(value.shape)}".encode())
        part(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _state_dict(model_or_state_dict):
    if isinstance(model_or_state_dict, torch.nn.Module):
        return model_or_state_dict.state_dict()
    return model_or_state_dict


def save_sparse(model_or_state_dict, path):
    """Write a model (baked) or state dict in the compact form; returns bytes written."""
    from pinch.export.bake import bake_state_dict  # thresholds, if any, become zeros first

    state = bake_state_dict(_state_dict(model_or_state_dict))
    tensors, layout = {}, {}
    for name, value in state.items():
        value = value.detach().cpu().contiguous()
        dense_bits = value.numel() * value.element_size() * 8
        nonzero = value != 0
        sparse_bits = value.numel() + int(nonzero.sum()) * value.element_size() * 8
        if value.is_floating_point() and value.dim() >= 1 and sparse_bits < dense_bits:
            bits = np.packbits(nonzero.reshape(-1).numpy())
            tensors[name + ".mask"] = torch.from_numpy(bits)
            tensors[name + ".values"] = value[nonzero]
            layout[name] = {"kind": "bitmask", "shape": list(value.shape)}
        else:
            tensors[name] = value
            layout[name] = {"kind": "dense"}
    meta = {"format": FORMAT, "version": VERSION, "layout": json.dumps(layout)}
    meta[DIGEST_KEY] = digest(meta, tensors)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as any other output, not mkstemp's 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return os.path.getsize(path)


def read_metadata(path):
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return f.metadata() or {}


def looks_sparse(meta):
    """Whether a safetensors header is (or was, before damage) a pinch sparse file's: any
    one of its marks is enough, so one altered byte cannot pass it off as plain safetensors."""
    return meta.get("format") == FORMAT or bool({"layout", DIGEST_KEY} & set(meta))


def load_sparse(path):
    """Dense state dict from a compact file; refuses files that are not exactly what was saved."""
    try:
        meta = read_metadata(path)
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable pinch sparse file (truncated or corrupt?): {err}") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pinch sparse file (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path}: pinch sparse format version {meta.get('version')!r} is not supported "
                         f"(this pinch reads version {VERSION}; save the model again)")
    if digest(meta, tensors) != meta.get(DIGEST_KEY):
        raise ValueError(f"{path}: checksum mismatch, the file was altered or damaged")
    try:
        return _densify(meta, tensors)
    except Exception as err:  # a consistent checksum over an inconsistent layout: written wrong
        raise ValueError(f"{path}: not a readable pinch sparse file (inconsistent layout: {err!r})") from None


def _densify(meta, tensors):
    state = {}
    for name, entry in json.loads(meta["layout"]).items():
        if entry["kind"] == "dense":
            state[name] = tensors[name]
            continue
        values, shape = tensors[name + ".values"], entry["shape"]
        numel = int(np.prod(shape)) if shape else 1
        mask = torch.from_numpy(np.unpackbits(tensors[name + ".mask"].numpy(), count=numel).astype(bool))
        dense = torch.zeros(numel, dtype=values.dtype)
        dense[mask] = values
        state[name] = dense.reshape(shape)
    return state
