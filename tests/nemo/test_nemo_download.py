"""The download forms of a baked NeMo model (issue 33 item 4): bake writes ``<model>.nemo.gz`` beside
the .nemo, much smaller for a 65%-sparse model, which ``gunzip`` turns back into the .nemo byte for
byte and NeMo's own ``restore_from`` opens as it is; the exported int8 graph and tokens.txt,
downloaded as a .tar.bz2, unpack with tar and sherpa-onnx decodes with them as with the originals."""
import json
import subprocess

import numpy as np
import torch

from pinch.nemo import save_nemo
from pinch.nemo.bin import export_onnx
from pinch.nemo.bin.bake import bake_file
from pinch.nemo.models import PinchEncDecCTCModelBPE
from pinch.deploy import write_download

SPARSITY = 0.65


def sparse_baked(cfg, tmp_path):
    """The tiny Conformer with 65% of each gated matrix's weights (the smallest) pruned, baked."""
    cfg.pruning = {"method": "sspg", "target_sparsity": SPARSITY, "preset": "conformer"}
    torch.manual_seed(0)
    model = PinchEncDecCTCModelBPE(cfg=cfg)
    pruner = model.attach_pruner(total_steps=1)
    with torch.no_grad():
        for g in pruner.method.gates:  # a weight is kept where |w| >= threshold
            cut = g.weight.abs().flatten().kthvalue(int(SPARSITY * g.weight.numel())).values
            g.threshold.fill_(float(cut) * 1.000001)
    return bake_file(save_nemo(model, tmp_path / "gated.nemo"), tmp_path / "model.nemo")


def decode(recognizer, audio):
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, audio)
    recognizer.decode_stream(stream)
    return stream.result.text, np.array(stream.result.timestamps)


def test_a_baked_nemo_downloads_gzipped_and_nemo_restores_that_file(tiny_model_cfg, tmp_path):
    from nemo.collections.asr.models import ASRModel, EncDecCTCModelBPE

    baked, report = sparse_baked(tiny_model_cfg, tmp_path)
    assert abs(report.gated - SPARSITY) < 0.01
    gz = tmp_path / "model.nemo.gz"
    record = json.loads(baked.with_suffix(".json").read_text())
    assert record["download_file"] == str(gz) and record["download_bytes"] == gz.stat().st_size
    assert subprocess.run(["gunzip", "-c", str(gz)], check=True, capture_output=True).stdout == baked.read_bytes()
    # Measured: 0.455 of the .nemo (0.49 -> 0.22 MB): its weights 0.35, the tokenizer's 0.24 MB
    # sentencepiece model, half the tiny file, 0.58.
    assert gz.stat().st_size < 0.5 * baked.stat().st_size
    stored, downloaded = (ASRModel.restore_from(str(p), map_location="cpu") for p in (baked, gz))
    assert type(downloaded) is EncDecCTCModelBPE  # NeMo's own class: no pinch in the file
    a, b = stored.state_dict(), downloaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_int8_graph_downloads_as_tar_bz2_that_sherpa_onnx_decodes_with(tiny_model_cfg, tmp_path):
    import sherpa_onnx

    baked, _ = sparse_baked(tiny_model_cfg, tmp_path)
    onnx = tmp_path / "onnx"
    export_onnx.export(baked, onnx)
    files = [onnx / "model.int8.onnx", onnx / "tokens.txt"]
    archive = tmp_path / "download" / "tiny-int8.tar.bz2"
    size = write_download(files, archive)
    # Measured: 0.22 of the int8 graph and tokens.txt (0.19 -> 0.04 MB).
    assert size < 0.3 * sum(f.stat().st_size for f in files)
    subprocess.run(["tar", "-xjf", str(archive), "-C", str(tmp_path)], check=True)
    audio = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1
    texts = [decode(sherpa_onnx.OfflineRecognizer.from_nemo_ctc(model=str(d / "model.int8.onnx"),
                                                                tokens=str(d / "tokens.txt"), num_threads=1), audio)
             for d in (onnx, tmp_path / "tiny-int8")]
    assert texts[0][0] == texts[1][0] and np.array_equal(texts[0][1], texts[1][1])
