"""pinch.nemo.bin.transcribe decodes where it is asked to, as NeMo's transcribe_speech.py's ``cuda``
says: a GPU asked for on a machine without one is a one-line error before any work, and the CPU
still transcribes, each model with the decoding its own config names."""
import json

import pytest
import torch

from pinch.nemo.bin import transcribe


@pytest.fixture
def no_gpu(monkeypatch):
    """This machine as one without CUDA devices, whatever it has."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.mark.parametrize("args", [
    ["model_path=m.nemo", "dataset_manifest=x.json", "cuda=0"],
    ["--model", "m.nemo", "--set", "x.json", "hyp.txt", "--cuda", "0"],
])
def test_a_gpu_asked_for_without_one_is_one_line(args, no_gpu, capsys):
    assert transcribe.main(args) == 1
    err = capsys.readouterr().err
    assert err == "pinch.nemo.bin.transcribe: error: cuda=0: no CUDA device 0 on this machine (torch sees 0)\n"


def test_cuda_must_be_an_integer(capsys):
    assert transcribe.main(["model_path=m.nemo", "dataset_manifest=x.json", "cuda=gpu"]) == 1
    assert "cuda must be an integer (a CUDA device; negative: the CPU), not 'gpu'" in capsys.readouterr().err


def test_the_device_of_each_cuda_value(no_gpu):
    assert transcribe.inference_device(None).type == "cpu"  # no GPU: the CPU, as transcribe_speech.py
    assert transcribe.inference_device(-1).type == "cpu"


def test_cpu_transcription_with_the_models_own_decoding(tmp_path, tiny_model_cfg, tiny_corpus, capsys):
    from nemo.collections.asr.models import EncDecCTCModelBPE

    torch.manual_seed(0)
    model = tmp_path / "tiny.nemo"
    EncDecCTCModelBPE(cfg=tiny_model_cfg).save_to(str(model))
    manifest = tiny_corpus / "test_clean" / "manifest.json"
    out = tmp_path / "pred.json"
    assert transcribe.main([f"model_path={model}", f"dataset_manifest={manifest}", f"output_filename={out}",
                            "cuda=-1", "batch_size=4"]) == 0
    lines = manifest.read_text().splitlines()
    pred = [json.loads(line) for line in out.read_text().splitlines()]
    assert [{k: v for k, v in p.items() if k != "pred_text"} for p in pred] == [json.loads(x) for x in lines]
    assert all(isinstance(p["pred_text"], str) for p in pred)
    strategy = EncDecCTCModelBPE.restore_from(str(model), map_location="cpu").cfg.decoding.strategy
    assert f"EncDecCTCModelBPE on cpu, its own decoding ({strategy})" in capsys.readouterr().out
    hyp = tmp_path / "hyp.txt"
    assert transcribe.main(["--model", str(model), "--set", str(manifest), str(hyp), "--cuda", "-1"]) == 0
    assert len(hyp.read_text().splitlines()) == len(lines)
