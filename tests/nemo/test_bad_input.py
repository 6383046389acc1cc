"""Bad input fails early with a message naming the culprit, and leaves no partial .nemo."""
import json
import tarfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from pinch.nemo import check_nemo_file, pruning_config, save_nemo
from pinch.nemo.bin.train import merged_pruning
from pinch.nemo.bin.transcribe import utterances

PRUNING = Path(__file__).resolve().parents[2] / "conf" / "pruning"



def test_unknown_pruning_key_is_named(sspg_block):
    with pytest.raises(ValueError, match=r"model\.pruning: unknown pruning key\(s\) \['tau_strat'\]"):
        pruning_config({"pruning": sspg_block(tau_strat=0.3)})


@pytest.mark.parametrize("target", [1.0, -0.1, 1.5])
def test_out_of_range_target(target, sspg_block):
    with pytest.raises(ValueError, match="target_sparsity must be a number in"):
        pruning_config({"pruning": sspg_block(target_sparsity=target)})


def test_pinch_model_rejects_bad_pruning_before_building(tiny_model_cfg, sspg_block):
    from pinch.nemo import PinchEncDecCTCModelBPE

    tiny_model_cfg.pruning = sspg_block(granularity="diagonal")
    with pytest.raises(ValueError, match="model.pruning: unknown granularity 'diagonal'"):
        PinchEncDecCTCModelBPE(cfg=tiny_model_cfg)


def test_pruning_config_file_errors(tmp_path):
    cfg = OmegaConf.create({"pruning_config": str(tmp_path / "nope.yaml"), "model": {}})
    with pytest.raises(ValueError, match="nope.yaml: cannot read"):
        merged_pruning(cfg)
    empty = tmp_path / "empty.yaml"  # must not give an ordinary dense run
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.yaml: expected a mapping of pruning keys, found nothing"):
        merged_pruning(OmegaConf.create({"pruning_config": str(empty), "model": {}}))
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: sspg\ntarget_sparsity: 0.65\npreset: conformer\netaa: 2\n")
    cfg = OmegaConf.create({"pruning_config": str(bad), "model": {}})
    with pytest.raises(ValueError, match=r"\['etaa'\].*\(from .*bad.yaml\)"):
        merged_pruning(cfg)


def test_model_pruning_overrides_the_preset_file():
    cfg = OmegaConf.create({"pruning_config": str(PRUNING / "sspg.yaml"),
                            "model": {"pruning": {"target_sparsity": 0.5}}})
    block = merged_pruning(cfg)
    assert block["target_sparsity"] == 0.5 and block["method"] == "sspg"


def test_nemo_file_checks(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nemo: no such .nemo file"):
        check_nemo_file(tmp_path / "missing.nemo")
    text = tmp_path / "text.nemo"
    text.write_text("not an archive")
    with pytest.raises(ValueError, match="text.nemo: not a NeMo archive"):
        check_nemo_file(text)
    other = tmp_path / "other.nemo"
    (tmp_path / "x.txt").write_text("x")
    with tarfile.open(other, "w") as tar:
        tar.add(tmp_path / "x.txt", arcname="./x.txt")
    with pytest.raises(ValueError, match="no model_config.yaml inside"):
        check_nemo_file(other)


def test_failed_save_leaves_nothing(tmp_path):
    class Crashing:
        def save_to(self, path):
            with open(path, "wb") as f:
                f.write(b"half an archive")
            raise RuntimeError("disk full")

    out = tmp_path / "exp" / "model.nemo"
    with pytest.raises(RuntimeError, match="disk full"):
        save_nemo(Crashing(), out)
    assert list(out.parent.iterdir()) == []


def _split(tmp_path, lines, audio):
    split = tmp_path / "split"
    split.mkdir()
    (split / "manifest.json").write_text("\n".join(lines) + "\n")
    (split / "wav.scp").write_text(f"u1 {audio}\n")
    return split


def test_manifest_line_not_json(tmp_path, tiny_corpus):
    wav = json.loads((tiny_corpus / "test_clean" / "manifest.json").read_text().splitlines()[0])["audio_filepath"]
    good = json.dumps({"audio_filepath": wav, "duration": 1.0, "text": "a"})
    split = _split(tmp_path, [good, "{not json"], wav)
    with pytest.raises(ValueError, match=r"manifest.json:2: not JSON"):
        utterances(split)


def test_manifest_missing_field(tmp_path, tiny_corpus):
    wav = json.loads((tiny_corpus / "test_clean" / "manifest.json").read_text().splitlines()[0])["audio_filepath"]
    split = _split(tmp_path, [json.dumps({"audio_filepath": wav, "text": "a"})], wav)
    with pytest.raises(ValueError, match=r"manifest.json:1: missing key 'duration'"):
        utterances(split)


def test_manifest_audio_missing(tmp_path):
    gone = str(tmp_path / "gone.wav")
    split = _split(tmp_path, [json.dumps({"audio_filepath": gone, "duration": 1.0, "text": "a"})], gone)
    with pytest.raises(FileNotFoundError, match=r"manifest.json:1: audio file .*gone.wav does not exist"):
        utterances(split)


def test_bake_refuses_a_dense_model(tmp_path, tiny_model_cfg):
    from nemo.collections.asr.models import EncDecCTCModelBPE

    from pinch.nemo.bin.bake import bake_file

    dense = tmp_path / "dense.nemo"
    EncDecCTCModelBPE(cfg=tiny_model_cfg).save_to(str(dense))
    with pytest.raises(ValueError, match="dense.nemo: its config has no 'pruning' block"):
        bake_file(dense, tmp_path / "baked.nemo")
    assert not (tmp_path / "baked.nemo").exists()
