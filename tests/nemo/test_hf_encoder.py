"""A local Hugging Face Wav2Vec2 checkpoint fine-tuned and compressed inside NeMo."""
import re
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import OmegaConf

from pinch.nemo import PinchEncDecCTCModelBPE, bake_nemo_model, save_nemo

CONF = Path(__file__).resolve().parents[2] / "conf" / "nemo" / "asr"

SEED = 0  # unseeded, the sparsity after 3 updates ranged 0.03-0.47 over 11 runs (one failed > 0.1)

PAPER_LINEARS = r".*layers\.\d+\.(attention\.(q|k|v|out)_proj|feed_forward\.(intermediate|output)_dense)\.weight"


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    """A randomly initialised 2-layer Wav2Vec2, saved as a user's local checkpoint would be."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            conv_dim=(16, 16, 16), conv_kernel=(10, 4, 4), conv_stride=(5, 4, 4),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    path = tmp_path_factory.mktemp("hf") / "wav2vec2-tiny"
    torch.manual_seed(SEED)
    Wav2Vec2Model(config).save_pretrained(path)
    return path


def test_hf_encoder_compresses_and_restores(tmp_path, tiny_wav2vec2, tiny_corpus, tiny_tokenizer, sspg_block):
    cfg = OmegaConf.load(CONF / "hf_ssl_ctc_bpe.yaml")
    cfg.merge_with_dotlist([
        f"model.encoder.pretrained_dir={tiny_wav2vec2}", f"model.tokenizer.dir={tiny_tokenizer}",
        f"model.train_ds.manifest_filepath={tiny_corpus / 'train' / 'manifest.json'}",
        f"model.validation_ds.manifest_filepath={tiny_corpus / 'dev' / 'manifest.json'}",
        "model.optim.lr=0.05",
    ])
    model_cfg = OmegaConf.create(OmegaConf.to_container(cfg.model, resolve=True))
    model_cfg.pruning = sspg_block(preset="wav2vec2", target_sparsity=0.5)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=3, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, num_sanity_val_steps=0, limit_val_batches=0,
                         enable_model_summary=False)
    torch.manual_seed(SEED)  # the head's initialisation and the batches' order
    model = PinchEncDecCTCModelBPE(cfg=model_cfg, trainer=trainer)
    trainer.fit(model)

    layers = model.pruner.sparsity().layers
    assert len(layers) == 12 and all(re.fullmatch(PAPER_LINEARS, name) for name in layers)  # 6 per block
    assert not any("feature_extractor" in name for name in layers)  # the CNN is not gated
    gated = model.pruner.sparsity().gated
    # 3 updates toward 0.5 move the gates well off zero: 0.485 with SEED 0 (the same with 1 or 2
    # threads); seeds 0-6 give 0.49, 0.19, 0.45, 0.50, 0.35, 0.46, 0.50 (the 0.190 of one unseeded
    # suite run was another initialisation). A threshold gradient of the wrong sign gives 0.13.
    assert gated > 0.2

    bake_nemo_model(model)
    path = save_nemo(model, tmp_path / "w2v2.nemo")
    from nemo.collections.asr.models import ASRModel

    restored = ASRModel.restore_from(str(path), map_location="cpu")
    weights = {n: p for n, p in restored.named_parameters() if re.fullmatch(PAPER_LINEARS, n)}
    zeros = sum(int((p == 0).sum()) for p in weights.values()) / sum(p.numel() for p in weights.values())
    assert zeros == pytest.approx(gated, abs=1e-6)
    wav = str(next((tiny_corpus / "wav" / "test_clean").glob("*.wav")))
    hyps = restored.transcribe([wav], batch_size=1, verbose=False)
    assert isinstance(hyps[0].text, str)
