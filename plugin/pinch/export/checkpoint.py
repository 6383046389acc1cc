"""Read a weights file of any toolkit as a plain state dict, without unpickling code."""
import io
import os
import tarfile

import torch

from pinch.export.sparse_format import digest, load_sparse, looks_sparse, read_metadata


def _torch_load(source, path):
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for damaged or unsafe files
        raise ValueError(f"{path}: cannot read as a weights-only torch checkpoint: {err}") from None


def _unwrap(obj, path):
    # Lightning keeps weights under "state_dict", ESPnet's resumable checkpoint under "model".
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: holds no state dict of tensors")
    return obj


def load_state_dict(path):
    """State dict from .pth/.pt/.ckpt, .safetensors (plain or pinch-sparse) or .nemo."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    if path.endswith(".safetensors"):
        try:
            is_sparse = looks_sparse(read_metadata(path))
        except Exception as err:
            raise ValueError(f"{path}: not a readable safetensors file: {err}") from None
        if is_sparse:
            return load_sparse(path)
        from safetensors.torch import load_file

        return load_file(path)
    if path.endswith(".nemo"):
        try:
            with tarfile.open(path) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith("model_weights.ckpt"))
                data = tar.extractfile(member).read()
        except (tarfile.TarError, StopIteration) as err:
            raise ValueError(f"{path}: not a .nemo archive with model_weights.ckpt ({err or 'missing'})") from None
        return _unwrap(_torch_load(io.BytesIO(data), path), path)
    return _unwrap(_torch_load(path, path), path)



def fingerprint(path):
    """A short hash of the weights in ``path`` (names, dtypes, shapes, values: the compact
    format's digest), not of the file's bytes: a .nemo archive saved twice from the same
    weights differs in its tar headers only."""
    return digest({}, load_state_dict(path))[:16]
