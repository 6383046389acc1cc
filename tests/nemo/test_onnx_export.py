"""A structured gated .nemo exports shrunk: smaller than its masked export, and the shrunk
graph gives the masked model's log-probabilities."""
import numpy as np
import torch

from pinch.deploy.onnx_files import onnx_session
from pinch.nemo import save_nemo
from pinch.nemo.bin import export_onnx
from pinch.nemo.bin.bake import bake_file
from pinch.nemo.models import PinchEncDecCTCModelBPE


def test_a_structured_gated_nemo_exports_shrunk(tiny_model_cfg, tmp_path):
    tiny_model_cfg.pruning = {"method": "sspg", "target_sparsity": 0.5, "preset": "conformer",
                              "granularity": "structured"}
    torch.manual_seed(0)
    model = PinchEncDecCTCModelBPE(cfg=tiny_model_cfg)
    pruner = model.attach_pruner(total_steps=1)
    with torch.no_grad():  # prune half the groups of every gated matrix
        for g in pruner.method.gates:
            rms = g.weight.reshape(g.groups, -1).square().mean(1).sqrt()
            g.threshold.fill_(float(rms.median()) * (1 + 1e-6))
    model.eval()
    feats = torch.randn(1, tiny_model_cfg.preprocessor.features, 160)
    with torch.no_grad():
        masked = model.forward_for_export(audio_signal=feats, length=torch.tensor([160]))
    masked = (masked[0] if isinstance(masked, (tuple, list)) else masked).numpy()
    gated = save_nemo(model, tmp_path / "gated.nemo")
    shrunk, _ = export_onnx.export(gated, tmp_path / "onnx", shrink=True)
    got = onnx_session(shrunk).run(None, {"audio_signal": feats.numpy(), "length": np.array([160])})[0]
    assert np.abs(got - masked).max() < 1e-3
    baked, _ = bake_file(gated, tmp_path / "model.nemo")  # the same model, masked, not shrunk
    plain, _ = export_onnx.export(baked, tmp_path / "plain")
    assert shrunk.stat().st_size < plain.stat().st_size
