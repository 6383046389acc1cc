"""Read a weights file of any toolkit as a plain state dict, without unpickling code."""
import io
import os
import pickle
import re
import tarfile
from pathlib import PurePosixPath

import torch

from pinch.export.sparse_format import digest, load_sparse, looks_sparse, read_metadata

NEMO_WEIGHTS = "model_weights.ckpt"  # NeMo's SaveRestoreConnector.model_weights_ckpt (the core needs no NeMo)


def read_torch(source, name):
    """``torch.load`` of data only (tensors, containers, numbers), whatever torch's default;
    anything else is one line naming ``name``."""
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's message is a page that suggests loading it unsafely
        code = re.search(r"GLOBAL (\S+)", str(err))
        why = f"it would call {code.group(1)}, code rather than data" if code else "damaged or not a torch file"
        raise ValueError(f"{name}: cannot read as a weights-only torch checkpoint: {why}") from None
    except Exception as err:  # torch raises several types for damaged files
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{name}: cannot read as a weights-only torch checkpoint: {first}") from None


def nemo_members(tar, path):
    """The members of an open .nemo by the path NeMo extracts each to (``./x`` and ``x`` are one).
    What NeMo's extraction skips or cannot tell apart is refused (links, special files, paths
    outside the archive, two files at one path): there pinch and NeMo could read different weights."""
    members = {}
    for info in tar.getmembers():
        name = str(PurePosixPath(info.name))
        if name.startswith("/") or ".." in PurePosixPath(name).parts:
            raise ValueError(f"{path}: {name} is outside the archive")
        if info.issym() or info.islnk():
            raise ValueError(f"{path}: {name} is a link")
        if not (info.isfile() or info.isdir()):
            raise ValueError(f"{path}: {name} is not a regular file")
        if name in members and not (info.isdir() and members[name].isdir()):
            raise ValueError(f"{path}: two members named {name}")
        members[name] = info
    return members


def nemo_file(members, name, path):
    """The member NeMo opens as ``<extracted archive>/name``: a file at the archive's top."""
    if name not in members:
        raise ValueError(f"{path}: not a NeMo archive (no {name} inside)")
    if not members[name].isfile():
        raise ValueError(f"{path}: {name} is a directory")
    return members[name]


def _nemo_state(path):
    """What NeMo's ``restore_from`` unpickles from a .nemo, read as data."""
    try:
        with tarfile.open(path) as tar:
            data = tar.extractfile(nemo_file(nemo_members(tar, path), NEMO_WEIGHTS, path)).read()
    except (tarfile.TarError, OSError) as err:
        raise ValueError(f"{path}: not a .nemo archive ({err})") from None
    return read_torch(io.BytesIO(data), f"{path}: {NEMO_WEIGHTS}")


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
        return _unwrap(_nemo_state(path), path)
    return _unwrap(read_torch(path, path), path)


def fingerprint(path):
    """A short hash of the weights in ``path`` (names, dtypes, shapes, values: the compact
    format's digest), not of the file's bytes: a .nemo archive saved twice from the same
    weights differs in its tar headers only."""
    return digest({}, load_state_dict(path))[:16]
