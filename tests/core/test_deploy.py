"""The toolkit-free deployment helpers: greedy CTC, token tables, int8 files, gated-model refusal."""
import numpy as np
import pytest
import torch

import pinch
from pinch.deploy import check_ungated, greedy_ctc, onnx_session, pieces_to_text, quantize_int8, read_tokens
from pinch.deploy.report import latency_feeds


def test_greedy_ctc_merges_repeats_and_drops_blanks():
    frames = [2, 2, 0, 2, 1, 1, 0, 0, 3]
    logprobs = np.log(np.eye(4)[frames] * 0.97 + 0.01)
    assert greedy_ctc(logprobs, len(frames), blank=0) == [2, 2, 1, 3]
    assert greedy_ctc(logprobs, 5, blank=0) == [2, 2, 1]  # frames past the length are padding
    assert pieces_to_text(["\u2581he", "llo", "\u2581wor", "ld"]) == "hello world"


def test_token_tables_are_checked(tmp_path):
    good = tmp_path / "tokens.txt"
    good.write_text("<blk> 1\n\u2581a 0\n")
    assert read_tokens(good) == ["\u2581a", "<blk>"]
    for text, message in (("a 0\nb 2\n", "not 0..1"), ("a\n", "not a 'piece id' line")):
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_tokens(bad)


def _export(model, path, example):
    torch.onnx.export(model, example, str(path), input_names=["feats", "feats_lengths"], output_names=["out"],
                      dynamic_axes={"feats": {0: "batch", 1: "time"}, "feats_lengths": {0: "batch"}},
                      opset_version=17, dynamo=False)


class Net(torch.nn.Module):
    def __init__(self, nan=False):
        super().__init__()
        self.linear, self.nan = torch.nn.Linear(16, 8), nan

    def forward(self, feats, feats_lengths):
        out = self.linear(feats) * (feats_lengths > 0).float()[:, None, None]  # both inputs in the graph
        return out * float("nan") if self.nan else out


def test_int8_file_is_written_only_when_its_outputs_are_finite(tmp_path):
    torch.manual_seed(0)
    example = (torch.randn(1, 20, 16), torch.tensor([20]))
    _export(Net(), tmp_path / "m.onnx", example)
    feeds = latency_feeds(tmp_path / "m.onnx", frames=20)
    assert feeds["feats"].shape == (1, 20, 16) and feeds["feats_lengths"].tolist() == [20]
    quantize_int8(tmp_path / "m.onnx", tmp_path / "m.int8.onnx", feeds)
    fp32, int8 = (onnx_session(tmp_path / f).run(None, feeds)[0] for f in ("m.onnx", "m.int8.onnx"))
    assert np.abs(fp32 - int8).max() < 0.05 * np.abs(fp32).max()
    _export(Net(nan=True), tmp_path / "nan.onnx", example)
    with pytest.raises(ValueError, match="non-finite"):
        quantize_int8(tmp_path / "nan.onnx", tmp_path / "nan.int8.onnx", feeds)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.int8.onnx", "m.onnx", "nan.onnx"]


def test_static_int8_is_calibrated_on_the_given_inputs_and_runs_int8_kernels(tmp_path):
    import onnx

    torch.manual_seed(0)
    _export(Net(), tmp_path / "m.onnx", (torch.randn(1, 20, 16), torch.tensor([20])))
    feeds = latency_feeds(tmp_path / "m.onnx", frames=20)
    calibration = [{"feats": np.random.default_rng(i).standard_normal((1, 30, 16), dtype=np.float32),
                    "feats_lengths": np.array([30])} for i in range(4)]
    quantize_int8(tmp_path / "m.onnx", tmp_path / "static.onnx", feeds, calibration=calibration)
    quantize_int8(tmp_path / "m.onnx", tmp_path / "dynamic.onnx", feeds)
    ops = {f: {n.op_type for n in onnx.load(str(tmp_path / f)).graph.node} for f in ("static.onnx", "dynamic.onnx")}
    assert "QLinearMatMul" in ops["static.onnx"] and "DynamicQuantizeLinear" not in ops["static.onnx"]
    assert "DynamicQuantizeLinear" in ops["dynamic.onnx"]
    fp32, static = (onnx_session(tmp_path / f).run(None, feeds)[0] for f in ("m.onnx", "static.onnx"))
    assert np.abs(fp32 - static).max() < 0.05 * np.abs(fp32).max()
    with pytest.raises(ValueError, match="needs calibration utterances"):
        quantize_int8(tmp_path / "m.onnx", tmp_path / "none.onnx", feeds, calibration=[])
    assert not (tmp_path / "none.onnx").exists()


def test_a_gated_model_is_refused_for_export_until_baked():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8))
    pinch.Pruner(model, target_sparsity=0.5, targets=["0"], total_steps=4)
    with pytest.raises(ValueError, match="still has pinch gates.*bake it"):
        check_ungated(model)
    check_ungated(pinch.bake(model))
