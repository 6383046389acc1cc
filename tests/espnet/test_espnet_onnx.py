"""ONNX export of espnet2 CTC models: plain, and a structured pruning run shrunk, with the
refusals the deploy stage relies on."""
import numpy as np
import pytest
import torch

from espnet_tiny import TOKENS, batch, parse_tiny, save_and_bake
from pinch.deploy import onnx_session
from pinch.espnet.bin import export_onnx, onnx_decode
from pinch.espnet.tasks.asr import ASRTask

STRUCTURED = ["--pruning", "sspg", "--pruning_conf", "target_sparsity=0.5", "--pruning_conf", "preset=conformer",
              "--pruning_conf", "granularity=structured"]


@pytest.fixture
def structured_run(tmp_path):
    """A tiny structured run: about half of each gate's groups pruned, non-trivial BatchNorm
    statistics; saved as a training run leaves it and baked."""
    args = parse_tiny(tmp_path, *STRUCTURED)
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    with torch.no_grad():
        for g in model._pinch_pruner.method.gates:
            g.threshold.fill_(float(g.weight.reshape(g.groups, -1).square().mean(1).sqrt().median()))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    exp, baked = save_and_bake("asr", args, model, tmp_path)
    return model.eval(), exp, baked


def _logprobs(onnx, feats):
    return onnx_session(onnx).run(None, {"feats": feats.numpy(), "feats_lengths": np.array([feats.shape[1]])})[0]


def test_plain_and_shrunk_exports_give_the_masked_models_outputs(structured_run, tmp_path):
    model, exp, baked = structured_run
    feats = batch(n=1, frames=50, seed=7)["speech"]
    with torch.no_grad():
        masked = model.ctc.log_softmax(model.encoder(feats, torch.tensor([50]))[0]).numpy()
    plain, _ = export_onnx.export(baked / "config.yaml", baked / "model.pth", tmp_path / "plain")
    shrunk, shrunk_int8 = export_onnx.export(exp / "config.yaml", exp / "model.pth", tmp_path / "shrunk",
                                             shrink=True)
    assert np.abs(_logprobs(plain, feats) - masked).max() < 1e-4
    assert np.abs(_logprobs(shrunk, feats) - masked).max() < 1e-4
    # Smaller by the pruned groups' weights (the tiny graph is mostly its positional-encoding table).
    assert shrunk.stat().st_size < plain.stat().st_size - 4 * 1000
    int8 = _logprobs(shrunk_int8, feats)  # its accuracy is the recipes' deploy rows; here: it runs
    assert int8.shape == masked.shape and np.isfinite(int8).all()
    assert (tmp_path / "plain" / "tokens.txt").read_text().splitlines()[0] == "<blank> 0"
    # The positional sinusoids are computed in the graph: no (1, 2 * 5000 - 1, d) table inside.
    assert all(9999 not in dims for dims in tensor_shapes(plain))


def tensor_shapes(path):
    import onnx

    graph = onnx.load(str(path)).graph
    return [list(t.dims) for t in graph.initializer] + [
        list(a.t.dims) for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]


def test_refusals_name_the_problem(structured_run, tmp_path, capsys):
    _, exp, baked = structured_run
    with pytest.raises(ValueError, match="still has its gates; bake it first"):
        export_onnx.export(exp / "config.yaml", exp / "model.pth", tmp_path / "a")
    with pytest.raises(ValueError, match="no structured gates to shrink"):
        export_onnx.export(baked / "config.yaml", baked / "model.pth", tmp_path / "b", shrink=True)
    onnx, _ = export_onnx.export(baked / "config.yaml", baked / "model.pth", tmp_path / "c")
    wrong = tmp_path / "wrong_tokens.txt"
    wrong.write_text("".join(f"{t} {i}\n" for i, t in enumerate(TOKENS[:-2])))
    scp = tmp_path / "wav.scp"
    scp.write_text("u1 /nonexistent.wav\n")
    assert onnx_decode.main(["--tokens", str(wrong), "--decode", str(onnx), str(scp), str(tmp_path / "text")]) == 1
    assert "9 outputs per frame, the token list 7: they do not belong together" in capsys.readouterr().err
    assert not (tmp_path / "text").exists()
