"""bake, shrink and the compact sparse format give back exactly the model that was pruned."""
import subprocess
import sys

import pytest
import torch

import pinch
from tests.conftest import ToyNet, train

TARGETS = [r"encoder\.\d+"]


def _pruned_toy(toy_data, sparsity=0.65):
    torch.manual_seed(0)
    model = ToyNet()
    pruner = pinch.Pruner(model, target_sparsity=sparsity, targets=TARGETS, total_steps=400)
    train(model, toy_data, 400, 3e-3, pruner)
    return model, pruner


def test_gated_state_dict_keeps_original_names_plus_thresholds(toy_data):
    model, _ = _pruned_toy(toy_data)
    plain = set(ToyNet().state_dict())
    extra = set(model.state_dict()) - plain
    assert plain <= set(model.state_dict())
    assert extra == {"encoder.0.weight_threshold", "encoder.2.weight_threshold", "encoder.4.weight_threshold",
                     "pinch_steps", "pinch_eta"}


def test_bake_gives_same_outputs_and_loads_into_the_plain_class(toy_data):
    model, pruner = _pruned_toy(toy_data)
    x = toy_data[0]
    model.eval()
    with torch.no_grad():
        gated_out = model(x)
    sparsity = pruner.sparsity().gated
    pinch.bake(model)
    with torch.no_grad():
        assert torch.equal(model(x), gated_out)
    fresh = ToyNet()
    fresh.load_state_dict(model.state_dict())  # strict: no pinch keys left
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), gated_out)
    weights = [fresh.encoder[i].weight for i in (0, 2, 4)]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(sparsity)


def test_bake_state_dict_lands_averaged_checkpoints_on_target(toy_data):
    model, _ = _pruned_toy(toy_data)
    a = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, toy_data, 30, 3e-3)  # drift: another "epoch"
    b = model.state_dict()
    averaged = {k: (a[k] + b[k]) / 2 if a[k].is_floating_point() else b[k] for k in a}
    baked = pinch.bake_state_dict(averaged, target_sparsity=0.65)
    weights = [baked[f"encoder.{i}.weight"] for i in (0, 2, 4)]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert abs(zeros - 0.65) < 0.001
    ToyNet().load_state_dict(baked)


def test_sparse_file_round_trip_is_exact_and_small(toy_data, tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Linear(256, 256))
    pruner = pinch.Pruner(model, method="ump", target_sparsity=0.65, targets=[r"\d"], total_steps=1)
    pruner.start()
    pinch.bake(model)
    dense_path, sparse_path = tmp_path / "dense.pt", tmp_path / "model.safetensors"
    torch.save(model.state_dict(), dense_path)
    size = pinch.save_sparse(model, sparse_path)
    assert size <= 0.40 * dense_path.stat().st_size
    loaded = pinch.load_sparse(sparse_path)
    assert loaded.keys() == model.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    x = torch.randn(3, 256)
    twin = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Linear(256, 256))
    twin.load_state_dict(loaded)
    assert torch.equal(twin(x), model(x))


def test_sparse_file_refuses_truncated_and_tampered_files(tmp_path):
    model = torch.nn.Linear(64, 64)
    with torch.no_grad():
        model.weight[:, :40] = 0
    path = tmp_path / "m.safetensors"
    pinch.save_sparse(model, path)
    data = path.read_bytes()
    (tmp_path / "short.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(ValueError, match="truncated or corrupt|checksum"):
        pinch.load_sparse(tmp_path / "short.safetensors")
    tampered = bytearray(data)
    tampered[-3] ^= 0xFF
    (tmp_path / "bad.safetensors").write_bytes(bytes(tampered))
    with pytest.raises(ValueError, match="checksum"):
        pinch.load_sparse(tmp_path / "bad.safetensors")


def _espnet_conformer():
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

    torch.manual_seed(0)
    return ConformerEncoder(input_size=20, output_size=32, attention_heads=4, linear_units=64, num_blocks=2,
                            input_layer="linear", macaron_style=True, use_cnn_module=True, cnn_module_kernel=3)


def _prune_about_half_and_randomize_norms(model, pruner):
    """Thresholds that prune about half of each gate's groups, and BatchNorm statistics that
    are not the identity, so a pruned conv channel leaves a non-zero constant behind."""
    with torch.no_grad():
        for g in pruner.method.gates:
            g.threshold.fill_(float(g.weight.reshape(g.groups, -1).square().mean(1).sqrt().median()))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-1, 1)


def _shrinks_exactly(model, run, preset, min_cut, prune=_prune_about_half_and_randomize_norms, **options):
    dense_params = sum(p.numel() for p in model.parameters())
    pruner = pinch.Pruner(model, target_sparsity=0.5, preset=preset, granularity="structured", total_steps=10,
                          **options)
    prune(model, pruner)
    report = pruner.sparsity()
    model.eval()
    with torch.no_grad():
        masked = run()
    pinch.shrink(model)
    assert not hasattr(model, "pinch_steps")
    with torch.no_grad():
        shrunk = run()
    assert torch.allclose(shrunk, masked, atol=1e-5)
    shrunk_params = sum(p.numel() for p in model.parameters())
    assert shrunk_params < (1 - min_cut) * dense_params
    # The report counts what shrink removes (groups' costs), not the zeros on the gated rows;
    # only the biases, norm and position-bias entries of removed groups are left out of it
    # (about 1% of these tiny models; counting gated-row zeros misses a quarter or more).
    assert report.params == dense_params and 0 <= report.nonzero - shrunk_params < 0.02 * dense_params
    assert report.gated == pytest.approx((dense_params - report.nonzero) / report.gated_params)
    return pruner


def test_structured_shrink_gives_a_smaller_model_with_the_same_outputs():
    encoder = _espnet_conformer()
    x, lens = torch.randn(2, 30, 20), torch.tensor([30, 24])
    pruner = _shrinks_exactly(encoder, lambda: encoder(x, lens)[0], "conformer", 0.3)
    kinds = {t.module_name.rsplit(".", 1)[-1]: t.layout.kind for t in pruner.method.targets}
    assert kinds == {"w_1": "row", "linear_v": "head", "depthwise_conv": "row"}
    assert all(1 <= b.self_attn.h < 4 for b in encoder.encoders)
    for block in encoder.encoders:  # the conv module narrower, its GLU halves paired
        conv = block.conv_module
        channels = conv.depthwise_conv.out_channels
        assert 1 <= channels < 32 and conv.depthwise_conv.groups == channels
        assert conv.pointwise_conv1.out_channels == 2 * channels and conv.norm.num_features == channels
        assert conv.pointwise_conv2.in_channels == channels


def test_structured_groups_cost_the_weights_they_remove():
    encoder = _espnet_conformer()
    pruner = pinch.Pruner(encoder, target_sparsity=0.5, preset="conformer", granularity="structured",
                          total_steps=10)
    costs = {t.module_name.split(".", 2)[-1]: t.layout.cost for t in pruner.method.targets}
    # d=32, ffn 64, 4 heads of 8, kernel 3: FFN unit w_1 row + w_2 column; a head's rows of
    # q, k, v, pos and columns of out; a channel's two GLU rows, its kernel, a pointwise2 column.
    assert costs["feed_forward.w_1"] == 32 + 32
    assert costs["self_attn.linear_v"] == 8 * 32 * 5
    assert costs["conv_module.depthwise_conv"] == 2 * 32 + 3 + 32
    assert pruner.method.gated == sum(t.layout.cost * g.groups for t, g in zip(pruner.method.targets,
                                                                             pruner.method.gates))


def test_group_cost_rows_charges_the_gated_rows_and_reports_what_shrink_removes():
    """group_cost: rows (the count before pinch's deviation) charges a group only the weights
    its gate sits on, in the L0 count and at the target, while the report still counts what
    shrink removes, so both counts are read at the size a user ships."""
    runs = {}
    for cost in ("weights", "rows"):
        encoder = _espnet_conformer()
        pruner = pinch.Pruner(encoder, target_sparsity=0.5, preset="conformer", granularity="structured",
                              total_steps=10, group_cost=cost)
        with torch.no_grad():  # about 80% of each gate's groups pruned, then projected to the target
            for g in pruner.method.gates:
                g.threshold.fill_(float(g.weight.reshape(g.groups, -1).square().mean(1).sqrt().quantile(0.8)))
        before = pruner.sparsity()
        with torch.no_grad():
            pruner.method._project()
        runs[cost] = pruner, before, pruner.sparsity()
    (weights, before_w, after_w), (rows, before_r, after_r) = runs["weights"], runs["rows"]
    charged = {t.module_name.split(".", 2)[-1]: g.cost for t, g in zip(rows.method.targets, rows.method.gates)}
    # d=32, 4 heads of 8, kernel 3: an FFN unit's w_1 row, a head's value rows, a channel's kernel row
    assert charged == {"feed_forward.w_1": 32, "feed_forward_macaron.w_1": 32, "self_attn.linear_v": 8 * 32,
                       "conv_module.depthwise_conv": 3}
    assert rows.method.gated == sum(g.groups * g.cost for g in rows.method.gates) < weights.method.gated
    # The same weights and thresholds give the same report, whatever the count.
    assert before_r.gated == pytest.approx(before_w.gated) and before_w.gated > 0.6
    assert before_r.params == before_w.params
    # Projected, each count meets the target in its own terms; the report is shrink's.
    assert after_w.gated == pytest.approx(0.5, abs=0.02)
    assert 1 - rows.method._kept() / rows.method.gated == pytest.approx(0.5, abs=0.02)
    assert after_r.gated < before_r.gated


def test_group_cost_rows_is_refused_for_single_weights():
    encoder = _espnet_conformer()
    with pytest.raises(ValueError, match="group_cost: rows is for granularity: structured"):
        pinch.Pruner(encoder, target_sparsity=0.5, preset="conformer", total_steps=10, group_cost="rows")


def _pruning_blocks(*names):
    """About half of each gate's groups pruned, and the branches whose output matrices are
    ``names`` whole (their block gates' thresholds above their matrices' RMS)."""
    def prune(model, pruner):
        _prune_about_half_and_randomize_norms(model, pruner)
        with torch.no_grad():
            for g, t in zip(pruner.method.gates, pruner.method.targets):
                if t.layout.kind == "block":
                    g.threshold.fill_(float(g.weight.square().mean().sqrt()) * (1.5 if t.module_name in names else 0.5))
    return prune


def test_block_gates_remove_whole_branches_and_count_their_groups_with_them():
    """block_gates: a gate on each branch's output matrix; a pruned branch's groups count as
    removed (in the L0 count and the report), shrink cuts it to one zeroed group, and the
    shrunk encoder computes what the masked one does."""
    encoder = _espnet_conformer()
    x, lens = torch.randn(2, 30, 20), torch.tensor([30, 24])
    two_blocks = _pruning_blocks("encoders.0.conv_module.pointwise_conv2", "encoders.1.self_attn.linear_out")
    pruner = _shrinks_exactly(encoder, lambda: encoder(x, lens)[0], "conformer", 0.4, prune=two_blocks,
                              block_gates=True)
    targets = {t.module_name.split(".", 2)[-1]: (t.layout.kind, t.block and t.block.split(".", 2)[-1][:-7])
               for t in pruner.method.targets}  # without ".weight"
    assert targets == {"feed_forward.w_2": ("block", None), "feed_forward.w_1": ("row", "feed_forward.w_2"),
                       "feed_forward_macaron.w_2": ("block", None),
                       "feed_forward_macaron.w_1": ("row", "feed_forward_macaron.w_2"),
                       "self_attn.linear_out": ("block", None), "self_attn.linear_v": ("head", "self_attn.linear_out"),
                       "conv_module.pointwise_conv2": ("block", None),
                       "conv_module.depthwise_conv": ("row", "conv_module.pointwise_conv2")}
    # The block gates cost nothing of their own: the governed weights are their groups'.
    assert pruner.method.gated == sum(t.layout.cost * g.groups for t, g in zip(pruner.method.targets,
                                                                             pruner.method.gates)
                                      if t.layout.kind != "block")
    # The training count is the same product: a pruned branch's groups charge nothing.
    fresh = _espnet_conformer()
    counted = pinch.Pruner(fresh, target_sparsity=0.5, preset="conformer", granularity="structured", total_steps=10,
                           block_gates=True)
    two_blocks(fresh, counted)
    gates = counted.method.gates
    assert counted.method._kept() == sum(g.cost * int(g.kept_groups().sum()) for g in gates) < sum(
        g.cost * int(g.group_keep().sum()) for g in gates)
    blocks = [g for g in gates if g.layout.kind == "block"]
    with torch.no_grad():  # projected onto the target from above, whole branches counted
        for g in gates:
            g.threshold.mul_(1.6)
        before = [float(g.threshold) for g in blocks]
        counted.method._project()
    assert 0.5 - 0.02 < 1 - counted.method._kept() / counted.method.gated <= 0.5
    assert [float(g.threshold) for g in blocks] == before  # the finer groups sufficed: no branch moved
    with torch.no_grad():  # every branch removed: only reviving branches meets the target
        for i, g in enumerate(blocks):
            g.threshold.fill_(float(g.weight.square().mean().sqrt()) * (1.2 + 0.05 * i))
        assert counted.method._kept() == 0
        counted.method._project()
    assert 0.5 - 0.02 < 1 - counted.method._kept() / counted.method.gated <= 0.5
    assert 0 < sum(int(g.group_keep().sum()) for g in blocks) < len(blocks)
    conv, attention = encoder.encoders[0].conv_module, encoder.encoders[1].self_attn
    assert conv.depthwise_conv.out_channels == 1 and not conv.pointwise_conv2.weight.any()
    assert attention.h == 1 and not attention.linear_out.weight.any() and not attention.linear_out.bias.any()
    assert encoder.encoders[1].conv_module.depthwise_conv.out_channels > 1 and encoder.encoders[0].self_attn.h > 1


def test_block_gates_are_refused_for_single_weights():
    with pytest.raises(ValueError, match="block_gates: true is for granularity: structured"):
        pinch.Pruner(_espnet_conformer(), target_sparsity=0.5, preset="conformer", total_steps=10, block_gates=True)


def test_structured_shrink_of_nemo_conformer_and_hugging_face_attention():
    from nemo.collections.asr.modules import ConformerEncoder
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    nemo = ConformerEncoder(feat_in=20, n_layers=2, d_model=32, n_heads=4, conv_kernel_size=3,
                            subsampling_factor=4, subsampling_conv_channels=8, ff_expansion_factor=2)
    x, lens = torch.randn(2, 20, 40), torch.tensor([40, 33])
    _shrinks_exactly(nemo, lambda: nemo(audio_signal=x, length=lens)[0], "conformer", 0.3)
    assert all(1 <= layer.self_attn.h < 4 and layer.conv.depthwise_conv.out_channels < 32 for layer in nemo.layers)
    nemo = ConformerEncoder(feat_in=20, n_layers=2, d_model=32, n_heads=4, conv_kernel_size=3,
                            subsampling_factor=4, subsampling_conv_channels=8, ff_expansion_factor=2)
    _shrinks_exactly(nemo, lambda: nemo(audio_signal=x, length=lens)[0], "conformer", 0.4,
                     prune=_pruning_blocks("layers.0.conv.pointwise_conv2", "layers.1.self_attn.linear_out"),
                     block_gates=True)
    assert nemo.layers[0].conv.depthwise_conv.out_channels == 1 and nemo.layers[1].self_attn.h == 1

    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                            conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=4,
                            num_conv_pos_embedding_groups=2, layerdrop=0.0)
    hf = Wav2Vec2Model(config)
    audio = torch.randn(2, 1600)
    _shrinks_exactly(hf, lambda: hf(audio).last_hidden_state, "wav2vec2", 0.25)
    assert all(1 <= layer.attention.num_heads < 4 for layer in hf.encoder.layers)
    assert all(layer.attention.q_proj.out_features == 8 * layer.attention.num_heads for layer in hf.encoder.layers)


def test_gates_work_on_conv1d_and_lstm_weights():
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"conv": torch.nn.Conv1d(4, 8, 3), "lstm": torch.nn.LSTM(8, 8, bidirectional=True)})
    pruner = pinch.Pruner(model, target_sparsity=0.5, targets=["conv", "lstm"], total_steps=10)
    names = [n for n, _ in pinch.gates.iter_gates(model)]
    assert "conv.weight" in names and "lstm.weight_hh_l0_reverse" in names and len(names) == 5
    with torch.no_grad():
        for g in pruner.method.gates:
            g.threshold.fill_(float(g.weight.abs().median()))
    x = torch.randn(2, 4, 10)

    def run():
        h = model["conv"](x).transpose(1, 2)
        return model["lstm"](h)[0]

    out = run()
    out.sum().backward()
    assert all(g.threshold.grad is not None for g in pruner.method.gates)
    pinch.bake(model)
    assert torch.allclose(run(), out, atol=1e-6)
    assert abs(float((model["conv"].weight == 0).float().mean()) - 0.5) < 0.05


def test_report_command_reads_a_checkpoint_without_pinch_state(toy_data, tmp_path):
    model, pruner = _pruned_toy(toy_data)
    path = tmp_path / "gated.pth"
    torch.save(model.state_dict(), path)
    result = subprocess.run([sys.executable, "-m", "pinch.cli.main", "report", str(path)], capture_output=True,
                            text=True, check=True)
    assert "encoder.2.weight" in result.stdout and "whole model" in result.stdout
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("encoder.2.weight"))
    assert float(line.split()[-1]) == pytest.approx(pruner.sparsity().layers["encoder.2.weight"], abs=1e-3)
    bad = tmp_path / "junk.pth"
    bad.write_bytes(b"not a checkpoint")
    result = subprocess.run([sys.executable, "-m", "pinch.cli.main", "report", str(bad)], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "junk.pth" in result.stderr


def test_report_reads_nemo_archives_and_sparse_files(toy_data, tmp_path):
    import tarfile

    from pinch.cli.report import summarize

    model, pruner = _pruned_toy(toy_data)
    pinch.bake(model)
    weights = tmp_path / "model_weights.ckpt"
    torch.save(model.state_dict(), weights)
    archive = tmp_path / "m.nemo"
    with tarfile.open(archive, "w:") as tar:
        tar.add(weights, arcname="./model_weights.ckpt")
    sparse = tmp_path / "m.safetensors"
    pinch.save_sparse(model, sparse)
    for path in (archive, sparse):
        summary = summarize(str(path))
        layer = next(e for e in summary["layers"] if e["name"] == "encoder.0.weight")
        assert layer["sparsity"] == pytest.approx(float((model.encoder[0].weight == 0).float().mean()))
    (tmp_path / "empty.nemo").write_bytes(b"")
    with pytest.raises(ValueError, match="not a .nemo archive"):
        summarize(str(tmp_path / "empty.nemo"))


def test_report_says_what_a_gated_checkpoint_covers_and_warns_when_it_is_little(tmp_path, caplog):
    import logging

    from pinch.cli.report import format_table, summarize

    for targets, share in ((TARGETS, None), ([r"encoder\.0"], 16 * 64 / (16 * 64 + 2 * 64 * 64))):
        model = ToyNet()
        with caplog.at_level(logging.INFO, logger="pinch"):
            pinch.Pruner(model, target_sparsity=0.5, targets=targets, total_steps=10)
        torch.save(model.state_dict(), tmp_path / "gated.pth")
        coverage = summarize(str(tmp_path / "gated.pth"))["coverage"]
        assert coverage["encoder"] == "encoder." and coverage["params"] == sum(
            p.numel() for p in ToyNet().parameters())
        if share is None:  # every encoder matrix gated
            assert coverage["matrices"] == 3 and coverage["encoder_share"] == 1.0 and coverage["warning"] is None
        else:
            assert coverage["matrices"] == 1 and coverage["encoder_share"] == pytest.approx(share)
            assert "cover only 11.1% of the encoder's matrix weights; not gated: * (8,192)" in coverage["warning"]
            assert "warning: the gates cover only 11.1%" in format_table(summarize(str(tmp_path / "gated.pth")))
            assert "cover only 11.1%" in caplog.text  # said when gating, too
