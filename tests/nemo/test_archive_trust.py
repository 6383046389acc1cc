"""A .nemo is read by pinch as NeMo reads it (the same weights member, or a refusal), its links and
pickled code are refused with one line naming the member, and the pitch cache is read as data."""
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import pytest
import torch
from nemo.core.connectors.save_restore_connector import SaveRestoreConnector

from pinch.export.checkpoint import load_state_dict
from pinch.nemo.archive import check_nemo_file
from tests.evil import write_evil_checkpoint

CONFIG = b"target: nemo.collections.asr.models.EncDecCTCModel\n"


def _bytes(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _archive(path, members):
    """A .nemo of ``(name, bytes)`` files, ``(name, "dir")`` folders and ``(name, "->target")`` links."""
    with tarfile.open(path, "w:") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data == "dir":
                info.type = tarfile.DIRTYPE
            elif isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data[2:]
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _nemo_reads(path):
    """The state dict NeMo's restore_from loads from ``path``: its connector's own extraction."""
    connector = SaveRestoreConnector()
    with tempfile.TemporaryDirectory() as folder:
        connector._unpack_nemo_file(str(path), folder, members=connector._filtered_tar_info(str(path)))
        return connector._load_state_dict_from_disk(os.path.join(folder, connector.model_weights_ckpt))


def _report(path):
    return subprocess.run([sys.executable, "-m", "pinch.cli.main", "report", str(path)], capture_output=True,
                          text=True, timeout=300)


REAL = {"encoder.weight": torch.arange(1.0, 13.0).reshape(3, 4)}
DECOY = {"encoder.weight": torch.zeros(3, 4)}


def test_pinch_reads_the_weights_member_nemo_reads(tmp_path):
    decoy = _archive(tmp_path / "decoy.nemo", [("./model_config.yaml", CONFIG),
                                                ("./old_model_weights.ckpt", _bytes(DECOY)),
                                                ("./model_weights.ckpt", _bytes(REAL))])
    nemo = _nemo_reads(decoy)
    assert torch.equal(nemo["encoder.weight"], REAL["encoder.weight"])
    assert torch.equal(load_state_dict(str(decoy))["encoder.weight"], nemo["encoder.weight"])
    nested = _archive(tmp_path / "nested.nemo", [("./model_config.yaml", CONFIG),
                                                  ("./sub/model_weights.ckpt", _bytes(REAL))])
    with pytest.raises(FileNotFoundError):
        _nemo_reads(nested)
    with pytest.raises(ValueError, match=r"nested.nemo: not a NeMo archive \(no model_weights.ckpt inside\)"):
        load_state_dict(str(nested))


def test_two_weights_members_are_refused_in_one_line(tmp_path):
    twice = _archive(tmp_path / "twice.nemo", [("model_config.yaml", CONFIG), ("model_weights.ckpt", _bytes(DECOY)),
                                                ("./model_weights.ckpt", _bytes(REAL))])
    for check in (check_nemo_file, load_state_dict):
        with pytest.raises(ValueError, match="twice.nemo: two members named model_weights.ckpt"):
            check(str(twice))
    result = _report(twice)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    assert "twice.nemo" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("member, data, problem", [
    ("./model_weights.ckpt", "->old_model_weights.ckpt", "model_weights.ckpt is a link"),
    ("./model_weights.ckpt", "dir", "model_weights.ckpt is a directory"),
    ("./tokenizer.model", "->/etc/passwd", "tokenizer.model is a link"),
    ("../model_weights.ckpt", b"x", r"\.\./model_weights.ckpt is outside the archive"),
])
def test_links_folders_and_escapes_are_refused_naming_the_member(tmp_path, member, data, problem):
    members = [("./model_config.yaml", CONFIG), ("./old_model_weights.ckpt", _bytes(DECOY)), (member, data)]
    if member != "./model_weights.ckpt":
        members.append(("./model_weights.ckpt", _bytes(REAL)))
    archive = _archive(tmp_path / "odd.nemo", members)
    for check in (check_nemo_file, load_state_dict):
        with pytest.raises(ValueError, match=f"odd.nemo: {problem}"):
            check(str(archive))


def test_pickled_code_in_a_nemo_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = write_evil_checkpoint(tmp_path / "evil.pth", marker)
    archive = _archive(tmp_path / "evil.nemo", [("./model_config.yaml", CONFIG),
                                                 ("./model_weights.ckpt", evil.read_bytes())])
    for check in (check_nemo_file, load_state_dict):
        with pytest.raises(ValueError, match="evil.nemo: model_weights.ckpt: cannot read as a weights-only"):
            check(str(archive))
    result = _report(archive)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    assert "evil.nemo: model_weights.ckpt" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def test_the_pitch_cache_is_read_as_data_even_where_torch_load_unpickles(tmp_path, monkeypatch):
    import soundfile as sf

    from pinch.nemo.bin.tts_sup_data import PITCH_DIR, fill_pitch_cache

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # torch.load's default before torch 2.6
    sf.write(tmp_path / "a.wav", np.zeros(2205, dtype=np.float32), 22050)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"audio_filepath": str(tmp_path / "a.wav"), "duration": 0.1, "text": "a"}) + "\n")
    (tmp_path / "sup" / PITCH_DIR).mkdir(parents=True)
    marker = tmp_path / "pwned"
    cached = tmp_path / "sup" / PITCH_DIR / "a.pt"
    torch.save(torch.ones(5), cached)
    voiced, count = fill_pitch_cache(manifest, tmp_path / "sup", 22050, 256, 65.0, 2000.0)
    assert count == 1 and voiced.tolist() == [1.0] * 5
    write_evil_checkpoint(cached, marker)
    with pytest.raises(ValueError, match="a.pt: cannot read as a weights-only"):
        fill_pitch_cache(manifest, tmp_path / "sup", 22050, 256, 65.0, 2000.0)
    assert not marker.exists()
    torch.save({"pitch": torch.ones(5)}, cached)
    with pytest.raises(ValueError, match="a.pt: holds no tensor"):
        fill_pitch_cache(manifest, tmp_path / "sup", 22050, 256, 65.0, 2000.0)
