""".nemo files in and out: checked on the way in, complete or absent on the way out.

NeMo's ``save_to`` writes the tar in place, so a crash leaves a truncated .nemo that
looks finished; here it is written next to the target and renamed over it. After
``bake`` the config names the unmodified NeMo class and has no pruning block, so that
class's ``restore_from`` (``ASRModel``'s, ``FastPitchModel``'s) loads the file with pinch
not even installed.
"""
import os
import tarfile
import tempfile
from pathlib import Path

from nemo.core.connectors.save_restore_connector import SaveRestoreConnector
from omegaconf import open_dict

import pinch
from pinch.export.checkpoint import load_state_dict, nemo_file, nemo_members
from pinch.nemo.mixin import PRUNING_KEY

CONFIG_NAME = SaveRestoreConnector().model_config_yaml


def check_nemo_file(path):
    """Fail clearly on a missing file, one that is not a NeMo archive, one whose members NeMo
    would skip or could confuse, and one whose weights hold more than data: NeMo's own
    ``torch.load`` unpickles them fully where torch's default allows (torch < 2.6)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .nemo file")
    if not tarfile.is_tarfile(path):
        raise ValueError(f"{path}: not a NeMo archive (not a tar file)")
    with tarfile.open(path) as tar:
        members = nemo_members(tar, path)
    nemo_file(members, CONFIG_NAME, path)
    load_state_dict(str(path))
    return path


def nemo_config(path):
    """A .nemo file's model config, without building the model (ModelPT's reader: the file
    may hold any NeMo model, ASR or TTS)."""
    from nemo.core.classes.modelPT import ModelPT

    return ModelPT.restore_from(str(check_nemo_file(path)), return_config=True, map_location="cpu")


def save_nemo(model, path):
    """``model.save_to(path)`` that never leaves a partial file at ``path``."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".nemo", dir=path.parent)
    os.close(fd)
    try:
        model.save_to(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the model from other users
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def restore_gated(path):
    """A compressed (gated) .nemo as its pinch class, gates and thresholds loaded, or None for a
    plain one."""
    from pinch.nemo.models import pinch_class_for

    cfg = nemo_config(path)
    if cfg.get(PRUNING_KEY) is None:
        return None
    cls = pinch_class_for(cfg.get("target"))
    # Weights first without the gates (restore_from builds the network and unpacks the
    # tokenizer), then the gates, then the full state dict with thresholds and step.
    model = cls.restore_from(str(path), override_config_path=cfg, strict=False, map_location="cpu")
    model.attach_pruner(total_steps=1)
    model.load_state_dict(load_state_dict(str(path)), strict=True)
    return model


def write_counts(model, nemo_file):
    """``<nemo_file>.json``: parameter counts of a dense model, for the results table (bake
    writes the same for a compressed one)."""
    from pinch.data.atomic import write_json_atomic

    params = list(model.parameters())
    path = Path(nemo_file).with_suffix(".json")
    write_json_atomic(path, {"nemo_file": str(nemo_file), "params": sum(p.numel() for p in params),
                             "nonzero": sum(int((p != 0).sum()) for p in params)})
    return path


def bake_nemo_model(model):
    """Masks into the weights, gates removed, config turned back into the plain NeMo class's."""
    if model.nemo_class is None:
        raise TypeError(f"{type(model).__name__} does not name the NeMo class to bake into")
    pinch.bake(model)
    with open_dict(model._cfg):
        model._cfg.pop(PRUNING_KEY, None)
        model._cfg.target = f"{model.nemo_class.__module__}.{model.nemo_class.__name__}"
    model._pinch_config = None
    return model
