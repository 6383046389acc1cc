"""A Hugging Face Wav2Vec2 / HuBERT / WavLM encoder from a local dir, gated with the paper's
6-linears-per-block preset, trained in espnet2's Trainer, baked and decoded."""
import pytest
import torch
import espnet2.bin.asr_inference as asr_inference

from espnet_tiny import TOKENS, save_and_bake, train_steps
from pinch.espnet.choices import resolve_pruning
from pinch.espnet.tasks.asr import ASRTask

transformers = pytest.importorskip("transformers")

SMALL = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
             conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
MODELS = {
    "wav2vec2": (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model, {}),
    "hubert": (transformers.HubertConfig, transformers.HubertModel, {}),
    "wavlm": (transformers.WavLMConfig, transformers.WavLMModel, {"num_buckets": 8}),
}


def save_tiny(kind, directory):
    config_cls, model_cls, extra = MODELS[kind]
    torch.manual_seed(0)
    model_cls(config_cls(**SMALL, **extra)).save_pretrained(directory)


def parse(tmp_path, model_dir, *extra):
    token_list = tmp_path / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n")
    return ASRTask.get_parser().parse_args([
        "--token_list", str(token_list), "--input_size", "1",
        "--normalize", "none", "--encoder", "hf_ssl", "--encoder_conf", f"model_dir={model_dir}",
        "--model_conf", "ctc_weight=1.0", "--pruning", "sspg", "--pruning_conf", "preset=wav2vec2",
        "--pruning_conf", "target_sparsity=0.5", "--optim", "adam", "--optim_conf", "lr=0.01", *extra,
    ])


def audio_batch(n=2, samples=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"speech": torch.randn(n, samples, generator=g), "speech_lengths": torch.tensor([samples, 3000]),
            "text": torch.randint(2, 7, (n, 3), generator=g), "text_lengths": torch.tensor([3, 2])}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_paper_preset_gates_six_linears_per_block(tmp_path, kind):
    save_tiny(kind, tmp_path / kind)
    args = parse(tmp_path, tmp_path / kind)
    model = ASRTask.build_model(args)
    gated = [n for n, _ in model.named_parameters() if n.endswith("weight_threshold")]
    assert len(gated) == 6 * SMALL["num_hidden_layers"]
    assert all(n.startswith("encoder.model.encoder.layers.") for n in gated)  # CNN not gated
    model.train()
    loss, stats, _ = model(**audio_batch())
    loss.backward()
    assert torch.isfinite(loss) and "sparsity" in stats


def test_gated_hf_model_bakes_and_decodes_the_same(tmp_path, monkeypatch):
    save_tiny("wav2vec2", tmp_path / "w2v")
    args = parse(tmp_path, tmp_path / "w2v")
    resolve_pruning(args)
    model = ASRTask.build_model(args)
    optimizer = ASRTask.build_optimizers(args, model)[0]
    train_steps(model, optimizer, [audio_batch(seed=step) for step in range(40)])
    assert model._pinch_pruner.sparsity().gated > 0.2
    exp, _ = save_and_bake("asr", args, model, tmp_path)

    speech = [audio_batch(seed=99 + i)["speech"][0] for i in range(3)]

    def decode(config, model_file):
        s2t = asr_inference.Speech2Text(asr_train_config=str(config), asr_model_file=str(model_file),
                                        beam_size=1, ctc_weight=1.0, lm_weight=0.0)
        return [s2t(x)[0][2] for x in speech]  # token ids

    baked = decode(tmp_path / "baked" / "config.yaml", tmp_path / "baked" / "model.pth")
    # The gated model: Speech2Text building it through pinch's task from the training config.
    monkeypatch.setattr(asr_inference, "ASRTask", ASRTask)
    assert decode(exp / "config.yaml", exp / "model.pth") == baked
