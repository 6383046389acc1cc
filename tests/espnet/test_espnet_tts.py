"""espnet2's TTS task with the pruning choice: Tacotron2's encoder gated (and nothing else),
the penalty in espnet2's training loss, and a baked model dir that plain espnet2 loads."""
import subprocess
import sys

import torch
import yaml

from espnet_tiny import save_and_bake
from pinch.espnet.tasks.tts import TTSTask

TOKENS = ["<blank>", "<unk>", "a", "b", "c", " ", "<sos/eos>"]


def tiny_tacotron2(tmp_path, *extra):
    token_list = tmp_path / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n")
    conf = {"embed_dim": 16, "elayers": 1, "eunits": 16, "econv_layers": 2, "econv_chans": 16, "econv_filts": 3,
            "dlayers": 1, "dunits": 16, "prenet_layers": 1, "prenet_units": 16, "postnet_layers": 0, "adim": 16,
            "aconv_chans": 4, "aconv_filts": 3, "reduction_factor": 1}
    cmd = ["--token_list", str(token_list), "--token_type", "char", "--cleaner", "none", "--g2p", "none",
           "--feats_extract", "fbank", "--feats_extract_conf", "n_fft=256", "--feats_extract_conf", "hop_length=64",
           "--feats_extract_conf", "win_length=256", "--feats_extract_conf", "n_mels=10",
           "--feats_extract_conf", "fs=16000", "--normalize", "none", "--tts", "tacotron2",
           "--pruning", "sspg", "--pruning_conf", "target_sparsity=0.5", "--pruning_conf", "preset=auto",
           "--pruning_conf", "eta=50.0", "--optim", "adam", "--optim_conf", "lr=0.01", *extra]
    for k, v in conf.items():
        cmd += ["--tts_conf", f"{k}={v}"]
    args = TTSTask.get_parser().parse_args(cmd)
    torch.manual_seed(0)
    model = TTSTask.build_model(args)
    return args, model, TTSTask.build_optimizers(args, model)


def batch(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"text": torch.randint(2, 6, (n, 6), generator=g), "text_lengths": torch.full((n,), 6),
            "speech": 0.1 * torch.randn(n, 3200, generator=g), "speech_lengths": torch.full((n,), 3200)}


def test_only_the_encoder_is_gated_and_the_penalty_reaches_only_its_thresholds(tmp_path):
    args, model, (optimizer,) = tiny_tacotron2(tmp_path)
    thresholds = [n for n, _ in model.named_parameters() if n.endswith("_threshold")]
    assert thresholds and all(n.startswith("tts.enc.") for n in thresholds), thresholds
    assert any("blstm" in n for n in thresholds) and any("convs" in n for n in thresholds)
    model.train()
    loss, stats, _ = model(**batch())
    assert float(stats["loss_sparsity"]) > 0
    model.zero_grad()
    model._pinch_pruner.penalty().backward()  # the penalty alone
    pushed = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert {n for n in pushed if n.endswith("_threshold")} == set(thresholds)
    assert all(n.startswith("tts.enc.") for n in pushed), sorted(pushed)


def test_trained_gated_model_bakes_to_a_dir_plain_espnet2_loads(tmp_path):
    args, model, (optimizer,) = tiny_tacotron2(tmp_path)
    model.train()
    for seed in range(8):
        loss, _, _ = model(**batch(seed=seed))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert int(model.pinch_steps) == 8 and model._pinch_pruner.sparsity().gated > 0
    model.eval()
    tokens = torch.tensor([[2, 3, 4, 5, 2]])
    with torch.no_grad():
        gated = model.tts.enc.inference(tokens[0])
    _, baked = save_and_bake("tts", args, model, tmp_path)
    torch.save(tokens, tmp_path / "tokens.pt")
    code = f"""
import sys, torch
from espnet2.bin.tts_inference import Text2Speech
t2s = Text2Speech(train_config={str(baked / 'config.yaml')!r}, model_file={str(baked / 'model.pth')!r})
assert not any(n.endswith("_threshold") for n in t2s.model.state_dict())
with torch.no_grad():
    out = t2s.model.tts.enc.inference(torch.load({str(tmp_path / 'tokens.pt')!r})[0])
torch.save(out, {str(tmp_path / 'plain.pt')!r})
assert "pinch" not in sys.modules
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.allclose(torch.load(tmp_path / "plain.pt"), gated, atol=1e-6)


def test_tts_train_entry_point_takes_the_pruning_section():
    proc = subprocess.run([sys.executable, "-m", "pinch.espnet.bin.tts_train", "--print_config", "--pruning", "sspg",
                           "--pruning_conf", "preset=tacotron2"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = yaml.safe_load(proc.stdout)
    assert config["pruning"] == "sspg" and config["pruning_conf"]["preset"] == "tacotron2"
    assert "target_sparsity" in config["pruning_conf"]  # the method's template, as for ASR


def test_decoder_opt_in_gates_its_lstm_cells_and_bakes_to_plain_espnet2(tmp_path):
    args, model, (optimizer,) = tiny_tacotron2(tmp_path, "--pruning_conf", "preset=[tacotron2, tacotron2_decoder]")
    thresholds = {n for n, _ in model.named_parameters() if n.endswith("_threshold")}
    assert {"tts.dec.lstm.0.cell.weight_ih_threshold", "tts.dec.lstm.0.cell.weight_hh_threshold",
            "tts.dec.att.loc_conv.weight_threshold"} <= thresholds
    assert any(n.startswith("tts.enc.") for n in thresholds) and not any("feat_out" in n for n in thresholds)
    model.train()
    for seed in range(4):
        loss, _, _ = model(**batch(seed=seed))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    cell = model.tts.dec.lstm[0].cell
    assert cell.weight_ih_threshold.grad is not None and cell.weight_hh_threshold.grad is not None
    model.eval()
    torch.manual_seed(0)  # Tacotron2's prenet keeps its dropout at inference
    with torch.no_grad():
        gated = model.tts.inference(torch.tensor([2, 3, 4, 5, 2]), maxlenratio=2.0)["feat_gen"]
    _, baked = save_and_bake("tts", args, model, tmp_path)
    code = f"""
import sys, torch
from espnet2.bin.tts_inference import Text2Speech
t2s = Text2Speech(train_config={str(baked / 'config.yaml')!r}, model_file={str(baked / 'model.pth')!r})
cell = t2s.model.tts.dec.lstm[0].cell
assert float((cell.weight_hh == 0).float().mean()) > 0.2, "the decoder's LSTM cell is not sparse"
torch.manual_seed(0)
with torch.no_grad():
    out = t2s.model.tts.inference(torch.tensor([2, 3, 4, 5, 2]), maxlenratio=2.0)["feat_gen"]
torch.save(out, {str(tmp_path / 'plain.pt')!r})
assert "pinch" not in sys.modules
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    torch.testing.assert_close(torch.load(tmp_path / "plain.pt"), gated)


def test_fastspeech2_decoder_opt_in_gates_the_decoder_and_the_predictors_not_the_outputs(tmp_path):
    token_list = tmp_path / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n")
    conf = {"adim": 16, "aheads": 2, "elayers": 1, "eunits": 16, "dlayers": 1, "dunits": 16,
            "positionwise_layer_type": "conv1d", "positionwise_conv_kernel_size": 3,
            "duration_predictor_chans": 8, "pitch_predictor_chans": 8, "energy_predictor_chans": 8,
            "postnet_layers": 1, "postnet_chans": 8}
    cmd = ["--token_list", str(token_list), "--token_type", "char", "--cleaner", "none", "--g2p", "none",
           "--normalize", "none", "--tts", "fastspeech2", "--pruning", "sspg",
           "--pruning_conf", "preset=[fastspeech2, fastspeech2_decoder]"]
    for k, v in conf.items():
        cmd += ["--tts_conf", f"{k}={v}"]
    model = TTSTask.build_model(TTSTask.get_parser().parse_args(cmd))
    gated = {n.removesuffix("_threshold") for n, _ in model.named_parameters() if n.endswith("_threshold")}
    parts = {n.split(".")[1] for n in gated}
    assert parts == {"encoder", "decoder", "duration_predictor", "pitch_predictor", "energy_predictor"}, parts
    assert "tts.decoder.encoders.0.feed_forward.w_2.weight" in gated
    assert "tts.pitch_predictor.conv.1.0.weight" in gated
    # The outputs, embeddings and the postnet stay dense: they shape every frame's mel values.
    assert not any(p in n for n in gated for p in ("feat_out", "embed", "postnet", "predictor.linear"))
