"""A compact on-disk form for unstructured-sparse weights: bitmask + non-zero values.

Stored as safetensors (data, not code: nothing is unpickled on load). A tensor with
zeros is kept as a packed bitmask (1 bit per weight) plus its non-zero values, which at
65% sparsity is 1/32 + 0.35 = 0.38 of its dense size. A SHA-256 in the header covers
everything that decides the loaded tensors (the metadata, every tensor's name, dtype, shape
and bytes), so a truncated or altered file is refused rather than loaded wrong. The digest is
no signature (anyone can recompute it), so the layout is also checked against the stored
bytes before anything is allocated: a few hundred bytes cannot declare billions of weights.
Every way a file can be malformed ends in the same refusal, a ValueError naming the file.
"""
import hashlib
import json
import math
import os
import tempfile
from collections import Counter

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


def compact_bytes(state_dict):
    """Bytes the compact file of ``state_dict`` takes: the results' compact size, the same
    measure in both toolkits whatever file each ships."""
    with tempfile.TemporaryDirectory() as tmp:
        return save_sparse(state_dict, os.path.join(tmp, "model.safetensors"))


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
    except ValueError as err:  # a consistent checksum over a layout that does not fit the stored tensors
        raise ValueError(f"{path}: not a readable pinch sparse file: {err}") from None


def _parts(name, entry):
    """The stored tensors a layout entry is made of."""
    kind = entry.get("kind") if isinstance(entry, dict) else None
    if kind == "dense":
        return [name]
    if kind == "bitmask":
        return [name + ".mask", name + ".values"]
    raise ValueError(f"{name}: unknown layout kind {kind!r}")


def _check_claims(layout, tensors):
    """Every stored tensor belongs to exactly one layout entry and every entry's tensors are stored."""
    claims = Counter(part for name, entry in layout.items() for part in _parts(name, entry))
    for part, count in sorted(claims.items()):
        if count > 1:
            raise ValueError(f"{part}: claimed twice by the layout")
        if part not in tensors:
            raise ValueError(f"{part}: in the layout but no stored tensor")
    unclaimed = sorted(set(tensors) - set(claims))
    if unclaimed:
        raise ValueError(f"{unclaimed[0]}: stored but not in the layout")


def _checked_mask(name, entry, mask, values):
    """A bitmask entry's mask, one bool per weight, once its shape, mask and values agree with
    each other: the mask is exactly ceil(numel / 8) bytes, so numel is bounded by the file's size."""
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError(f"{name}: shape {shape!r} is not a list of non-negative integers")
    numel = math.prod(shape)
    if mask.dtype != torch.uint8 or list(mask.shape) != [-(-numel // 8)]:
        raise ValueError(f"{name}: mask of {mask.dtype} {list(mask.shape)} is not the {-(-numel // 8)} "
                         f"bytes of shape {shape}")
    if values.dim() != 1:
        raise ValueError(f"{name}: values of shape {list(values.shape)}, not 1-D")
    bits = np.unpackbits(mask.numpy(), count=numel).astype(bool)
    if int(bits.sum()) != values.numel():
        raise ValueError(f"{name}: its mask marks {int(bits.sum())} weights but {values.numel()} values are stored")
    return torch.from_numpy(bits)


def _densify(meta, tensors):
    try:
        layout = json.loads(meta.get("layout", "null"))
    except json.JSONDecodeError:
        layout = None
    if not isinstance(layout, dict):
        raise ValueError("layout is not a JSON object of tensor entries")
    _check_claims(layout, tensors)
    state = {}
    for name, entry in layout.items():
        if entry["kind"] == "dense":
            state[name] = tensors[name]
            continue
        values = tensors[name + ".values"]
        mask = _checked_mask(name, entry, tensors[name + ".mask"], values)
        dense = torch.zeros(mask.numel(), dtype=values.dtype)
        dense[mask] = values
        state[name] = dense.reshape(entry["shape"])
    return state
