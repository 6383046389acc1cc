"""ONNX export of espnet2 CTC models: plain, and a structured pruning run shrunk, with the
refusals the deploy stage relies on; the fp32 form of a trained model decoded as espnet2 decodes it."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet_tiny import TOKENS, batch, parse_tiny, save_and_bake
from pinch.data.kaldi import read_table
from pinch.deploy import greedy_ctc, onnx_session, pieces_to_text, read_tokens
from pinch.espnet.bin import export_onnx, onnx_decode
from pinch.espnet.tasks.asr import ASRTask

ROOT = Path(__file__).resolve().parents[2]
DENSE_ZIP = ROOT / "bench" / "sweep" / "embedded" / "espnet_conformer_ctc.zip"  # the main job's dense model
DECODE_CONFIG = ROOT / "recipes" / "espnet" / "asr1" / "conf" / "decode_ctc.yaml"  # stage 12's decoding

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


def test_fp32_onnx_decodes_the_dense_model_as_espnet2_decodes_it(tmp_path):
    """Issue 31 item 5: the committed dense model on the tiny corpus's 16 test utterances. Its fp32
    ONNX form through onnx_decode gives, word for word, the transcripts of espnet2's Speech2Text with
    the recipe's decoding config (stage 12's reference); greedy CTC on the same graph does not, so
    the test fails if either side's rule changes."""
    from espnet2.bin.asr_inference import Speech2Text
    from espnet2.main_funcs.pack_funcs import unpack

    from pinch.data.embedded import prepare_embedded

    prepare_embedded(tmp_path / "corpus", seed=0, size="tiny", progress=False)
    files = unpack(str(DENSE_ZIP), str(tmp_path / "model"))
    onnx, _ = export_onnx.export(files["asr_train_config"], files["asr_model_file"], tmp_path / "onnx")
    speech2text = Speech2Text(**files, device="cpu", **yaml.safe_load(DECODE_CONFIG.read_text()))
    tokens = read_tokens(tmp_path / "onnx" / "tokens.txt")
    graph = onnx_decode.EspnetOnnxCTC(str(onnx), tokens)
    pytorch, greedy, jobs = {}, {}, []
    for dset in ("test_clean", "test_other"):
        scp = tmp_path / "corpus" / dset / "wav.scp"
        jobs += ["--decode", str(onnx), str(scp), str(tmp_path / dset / "text")]
        for utt, wav in read_table(scp).items():
            pytorch[utt] = speech2text(sf.read(wav)[0])[0][0].split()  # float64, as espnet2's sound loader reads
            logprobs, lengths = graph.session.run(None, export_onnx.wav_features(graph.frontend, wav))
            greedy[utt] = pieces_to_text(tokens[i] for i in greedy_ctc(logprobs[0], lengths[0], blank=0)).split()
    assert onnx_decode.main(["--tokens", str(tmp_path / "onnx" / "tokens.txt"), *jobs]) == 0
    decoded = {utt: words for dset in ("test_clean", "test_other")
               for utt, *words in map(str.split, (tmp_path / dset / "text").read_text().splitlines())}
    assert sum(map(len, pytorch.values())) > 3 * len(pytorch)  # a trained model: words, not blanks
    assert decoded == pytorch
    assert sum(greedy[u] != pytorch[u] for u in pytorch) >= 3  # measured: 6 of 16
