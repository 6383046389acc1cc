"""Fixtures of the NeMo tests: the tiny embedded corpus, its tokenizer, a tiny Conformer config (the
recipe's dense model, nemo_dense, is in tests/conftest.py)."""
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf" / "nemo" / "asr"
PRUNING = REPO / "conf" / "pruning"

# Shrinks the recipe's Conformer to a few thousand weights: seconds per step on one core.
TINY_MODEL = [
    "model.encoder.n_layers=1", "model.encoder.d_model=32", "model.encoder.n_heads=2",
    "model.encoder.subsampling_conv_channels=8", "model.encoder.conv_kernel_size=7",
    "model.train_ds.batch_size=8", "model.validation_ds.batch_size=8",
]
TINY_TRAINER = ["trainer.log_every_n_steps=1", "exp_manager.create_tensorboard_logger=false"]


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """``PINCH_TEST_TINY_CORPUS``: this corpus made elsewhere, at the path it was made at (its
    manifests name absolute paths), on a machine without the synthesizers (bench/gpu/run.sh)."""
    if os.environ.get("PINCH_TEST_TINY_CORPUS"):
        return Path(os.environ["PINCH_TEST_TINY_CORPUS"])
    from pinch.data.embedded import prepare_embedded

    out = tmp_path_factory.mktemp("nemo_corpus") / "data"
    prepare_embedded(out, seed=0, size="tiny", progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_corpus, tmp_path_factory):
    from pinch.nemo.bin.tokenizer import build_tokenizer

    return build_tokenizer([tiny_corpus / "train" / "manifest.json"], tmp_path_factory.mktemp("tok") / "spe", 32)


@pytest.fixture
def tiny_model_cfg(tiny_corpus, tiny_tokenizer):
    """The recipe's model config (conformer_ctc_bpe.yaml), shrunk, without augmentation or dropout."""
    cfg = OmegaConf.load(CONF / "conformer_ctc_bpe.yaml")
    cfg.merge_with_dotlist(TINY_MODEL + [
        f"model.train_ds.manifest_filepath={tiny_corpus / 'train' / 'manifest.json'}",
        f"model.validation_ds.manifest_filepath={tiny_corpus / 'dev' / 'manifest.json'}",
        f"model.tokenizer.dir={tiny_tokenizer}",
        "model.train_ds.shuffle=false", "model.preprocessor.dither=0.0",
        "model.encoder.dropout=0.0", "model.encoder.dropout_pre_encoder=0.0", "model.encoder.dropout_att=0.0",
    ])
    cfg.model.spec_augment = None
    return OmegaConf.create(OmegaConf.to_container(cfg.model, resolve=True))


@pytest.fixture
def sspg_block():
    """The shared sspg preset file as a dict, with overrides."""
    def block(**overrides):
        return {**OmegaConf.to_container(OmegaConf.load(PRUNING / "sspg.yaml")), **overrides}

    return block
